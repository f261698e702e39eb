"""The bundle: the walk-forward's choice and calibration, applied, saved as plain files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from flushcast.features.registry import FEATURES, max_lookback
from flushcast.models.bundle import Bundle, BundleMismatch
from flushcast.training.config import TrainingConfig
from flushcast.training.train import fit_bundle


@pytest.fixture(scope="module")
def fitted(small_dataset, small_config, small_evaluation):
    return fit_bundle(small_dataset, small_config, small_evaluation), small_evaluation


def test_the_bundle_deploys_what_the_walk_forward_chose(fitted):
    bundle, evaluation = fitted
    for h, model in bundle.horizons.items():
        inputs = TrainingConfig().combination.inputs
        assert model.choice["method"] == "stack" and set(model.choice["shares"]) == set(inputs)
        assert model.learner.kind == "stack"
        assert model.learner.composition() == {
            n: s for n, s in model.choice["shares"].items() if s > 0
        }
        assert sum(model.choice["shares"].values()) == pytest.approx(1.0)
        assert {m.kind for m in model.learners()} <= {"logistic", "lightgbm", *inputs}
        shares = bundle.evaluation["horizons"][str(h)]["champion_shares"]
        assert sum(shares.values()) == pytest.approx(1.0)
        assert 0 < model.base_rate < 1
        assert bundle.evaluation["horizons"][str(h)]["best_baseline"] is not None
    assert bundle.evaluation["fingerprint"] == evaluation.record.fingerprint


def test_round_trip_exact_contributions_and_probabilities(fitted, small_dataset, tmp_path):
    bundle, _ = fitted
    rows = small_dataset.table.tail(200)
    loaded = Bundle.load(bundle.save(tmp_path / "bundle"))
    assert not list(tmp_path.glob("bundle/*.tmp"))
    manifest = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert "tree" not in json.dumps(manifest)  # model text lives in its own files
    pd.testing.assert_frame_equal(loaded.predict(rows), bundle.predict(rows))
    for h in bundle.horizons:
        contributions = loaded.contributions(rows, h)
        log_odds = loaded.horizons[h].log_odds(loaded.matrix(rows))
        np.testing.assert_allclose(contributions.sum(axis=1), log_odds, atol=1e-9)
    predicted = loaded.predict(rows)
    np.testing.assert_allclose(predicted["p_long_flush_4h"] + predicted["p_short_squeeze_4h"], 1)
    assert predicted.filter(like="p_flush").stack().between(0, 1).all()
    assert loaded.training["series"] == small_dataset.series
    assert loaded.label["label_horizons"] == "4,12"


def test_a_higher_log_odds_is_always_a_higher_probability(fitted, small_dataset):
    bundle, _ = fitted
    X = bundle.matrix(small_dataset.table)
    for model in bundle.horizons.values():
        order = np.argsort(model.log_odds(X), kind="stable")
        assert np.all(np.diff(model.p_flush(X)[order]) >= 0)


def test_bundle_refuses_feature_code_that_changed(fitted):
    bundle, _ = fitted
    bundle.check_features(FEATURES, max_lookback())  # the code it was trained with: fine
    gone = {k: v for k, v in FEATURES.items() if k != "funding_z_30d"}
    with pytest.raises(BundleMismatch, match="funding_z_30d"):
        bundle.check_features(gone, max_lookback())
    longer = dict(FEATURES)
    longer["oi_change_24h"] = dataclasses.replace(FEATURES["oi_change_24h"], lookback=48)
    with pytest.raises(BundleMismatch, match="oi_change_24h 25->48"):
        bundle.check_features(longer, max_lookback())


def test_a_model_listing_features_its_bar_does_not_build_is_not_served(fitted):
    """A bundle of an older registry (a daily model that learnt `oi_change_4h` as the day's
    change) would now get NaN there: the service refuses it rather than answer differently."""
    from flushcast.forecast.identity import ModelIdentity
    from flushcast.forecast.predictor import Predictor

    bundle, _ = fitted
    daily = dataclasses.replace(bundle, bar_hours=24.0)
    identity = ModelIdentity(model_name="m", model_version="1", run_id="r")
    with pytest.raises(BundleMismatch, match=r"no longer built: \[.*'oi_change_4h'.*Retrain"):
        Predictor(daily, identity)


def test_unknown_symbol_is_predicted_not_rejected(fitted, small_dataset):
    bundle, _ = fitted
    rows = small_dataset.table.tail(3).copy()
    rows["symbol"] = "NEWCOINUSDT"
    assert bundle.predict(rows).notna().all().all()
