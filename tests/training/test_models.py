"""The LightGBM recipe and the bundle: calibrated, explainable, saved as plain files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.registry import FEATURES, max_lookback
from models.bundle import Bundle, BundleMismatch
from models.lgbm import FitSpec, fit_direction, fit_flush
from training.evaluate import EvalSpec
from training.metrics import ece, roc_auc
from training.train import fit_bundle


def _synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows with a known flush probability driven by two of four columns."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    p = 1 / (1 + np.exp(-(-4.5 + 1.2 * X["a"] + 0.8 * X["b"] ** 2)))
    return X, (rng.random(n) < p).astype(float), p.to_numpy()


def test_flush_model_is_calibrated_out_of_sample_despite_downsampling():
    X, y, _ = _synthetic(60_000, seed=0)
    fit, val, test = slice(0, 30_000), slice(30_000, 45_000), slice(45_000, None)
    model = fit_flush(X[fit], y[fit], X[val], y[val], FitSpec())
    p = model.predict(X[test])
    assert roc_auc(y[test], p) > 0.75
    # The booster saw 4 negatives per positive (a ~20 % rate); the calibrator undoes that.
    raw = 1 / (1 + np.exp(-model.booster.predict(X[test], raw_score=True)))
    assert raw.mean() > 2 * y[test].mean()
    assert p.mean() == pytest.approx(y[test].mean(), rel=0.15)
    assert ece(y[test], p) < 0.01
    near = (p > 0.1) & (p < 0.3)
    assert near.sum() > 200
    assert y[test][near].mean() == pytest.approx(p[near].mean(), abs=0.05)


def test_direction_model_needs_enough_one_sided_flushes():
    X, y, _ = _synthetic(2_000, seed=1)
    spec = FitSpec()
    few = slice(0, spec.min_direction_rows - 1)
    assert fit_direction(X[few], y[few], X[few], y[few], spec) is None
    assert fit_direction(X, np.zeros(len(X)), X, np.zeros(len(X)), spec) is None
    long_when_a_high = (X["a"] > 0).astype(float).to_numpy()
    model = fit_direction(
        X[:1500], long_when_a_high[:1500], X[1500:], long_when_a_high[1500:], spec
    )
    assert model is not None
    assert roc_auc(long_when_a_high[1500:], model.predict(X[1500:])) > 0.9


@pytest.fixture(scope="module")
def bundle(small_dataset) -> Bundle:
    return fit_bundle(small_dataset, EvalSpec(horizons=(4, 12), n_boot=0))


def test_bundle_round_trip_and_exact_contributions(bundle, small_dataset, tmp_path):
    rows = small_dataset.table.tail(200)
    loaded = Bundle.load(bundle.save(tmp_path / "bundle"))
    assert not list(tmp_path.glob("bundle/*.tmp"))
    pd.testing.assert_frame_equal(loaded.predict(rows), bundle.predict(rows))
    for h in (4, 12):
        contributions = loaded.contributions(rows, h)
        raw = loaded.horizons[h].flush.booster.predict(loaded.matrix(rows), raw_score=True)
        np.testing.assert_allclose(contributions.sum(axis=1), raw, atol=1e-9)
    predicted = loaded.predict(rows)
    np.testing.assert_allclose(predicted["p_long_flush_4h"] + predicted["p_short_squeeze_4h"], 1)
    assert predicted.filter(like="p_flush").stack().between(0, 1).all()
    assert loaded.training["series"] == small_dataset.series
    assert loaded.label["label_horizons"] == "4,12"


def test_bundle_refuses_feature_code_that_changed(bundle):
    bundle.check_features(FEATURES, max_lookback())  # the code it was trained with: fine
    gone = {k: v for k, v in FEATURES.items() if k != "funding_z_30d"}
    with pytest.raises(BundleMismatch, match="funding_z_30d"):
        bundle.check_features(gone, max_lookback())
    longer = dict(FEATURES)
    longer["oi_change_24h"] = dataclasses.replace(FEATURES["oi_change_24h"], lookback=48)
    with pytest.raises(BundleMismatch, match="oi_change_24h 25->48"):
        bundle.check_features(longer, max_lookback())


def test_unknown_symbol_is_predicted_not_rejected(bundle, small_dataset):
    rows = small_dataset.table.tail(3).copy()
    rows["symbol"] = "NEWCOINUSDT"
    assert bundle.predict(rows).notna().all().all()
