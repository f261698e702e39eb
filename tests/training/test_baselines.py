"""Baselines: fitted on training rows only, honest probabilities, the signal they should find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.baselines import Climatology, HeuristicRank, Logistic, RandomPlacebo
from training.metrics import ece, roc_auc


def _market(n_hours: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Two symbols; flush odds rise with |funding|, OI build-up and calm (compression)."""
    rng = np.random.default_rng(seed)
    n = 2 * n_hours
    X = pd.DataFrame(
        {
            "timestamp": np.tile(
                pd.date_range("2024-01-01", periods=n_hours, freq="h", tz="UTC"), 2
            ),
            "symbol": np.repeat(["BTCUSDT", "ETHUSDT"], n_hours),
            "funding_z": rng.normal(0, 1, n),
            "oi_change": rng.normal(0, 1, n),
            "calm": rng.normal(0, 1, n),
            "noise": rng.normal(0, 1, n),
        }
    )
    logit = -3.5 + 0.8 * np.abs(X["funding_z"]) + 0.8 * X["oi_change"] + 0.8 * X["calm"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return X, y


def test_climatology_is_the_training_rate():
    X, y = _market(1000, 0)
    assert Climatology().fit(X, y).predict_proba(X[:5]) == pytest.approx(np.full(5, y.mean()))
    recent = X["timestamp"] > X["timestamp"].max() - pd.Timedelta(hours=100)
    trailing = Climatology(window_bars=100).fit(X, y).predict_proba(X[:1])
    assert trailing[0] == pytest.approx(y[recent.to_numpy()].mean())


def test_placebo_ranks_at_chance_with_base_rate_probabilities():
    X, y = _market(3000, 1)
    fit, test = slice(0, 4000), slice(4000, None)
    placebo = RandomPlacebo(seed=3).fit(X[fit], y[fit])
    p = placebo.predict_proba(X[test])
    assert roc_auc(y[test], p) == pytest.approx(0.5, abs=0.06)
    assert p.mean() == pytest.approx(y[fit].mean(), abs=0.01)
    assert np.array_equal(p, RandomPlacebo(seed=3).fit(X[fit], y[fit]).predict_proba(X[test]))
    # Random *times*: both symbols get the same draw at the same bar.
    both = X[test].assign(p=p).groupby("timestamp")["p"].nunique()
    assert (both == 1).all()


def test_heuristic_finds_the_stress_gauges_and_ranks_against_training_only():
    X, y = _market(4000, 2)
    fit, test = slice(0, 5000), slice(5000, None)
    heuristic = HeuristicRank("funding_z", "oi_change", "calm").fit(X[fit], y[fit])
    p = heuristic.predict_proba(X[test])
    assert roc_auc(y[test], p) > 0.7
    assert ece(y[test], p) < 0.03
    # A test row's score does not depend on which other test rows are scored with it.
    np.testing.assert_allclose(heuristic.predict_proba(X[test][:10]), p[:10])
    # A compression column where lower means calmer, declared as such, scores the same.
    flipped = X.assign(calm=-X["calm"])
    other = HeuristicRank("funding_z", "oi_change", "calm", compression_higher_is_calmer=False)
    np.testing.assert_allclose(
        other.fit(flipped[fit], y[fit]).score(flipped[test]), heuristic.score(X[test])
    )
    with pytest.raises(KeyError, match="missing_column"):
        HeuristicRank("missing_column", "oi_change", "calm").fit(X, y)


def test_logistic_regression_on_features_with_gaps():
    X, y = _market(4000, 3)
    X.loc[X.sample(frac=0.05, random_state=0).index, "oi_change"] = np.nan
    X.loc[3, "calm"] = np.inf
    fit, test = slice(0, 5000), slice(5000, None)
    features = ["funding_z", "oi_change", "calm", "noise"]
    p = Logistic(features).fit(X[fit], y[fit]).predict_proba(X[test])
    assert np.isfinite(p).all()
    # Linear in funding_z, it misses the |funding| effect but finds OI and calm.
    assert roc_auc(y[test], p) > 0.65
    assert p.mean() == pytest.approx(y[test].mean(), abs=0.02)
    only_zeros = Logistic(features).fit(X[:50], np.zeros(50)).predict_proba(X[test])
    assert (only_zeros == 0).all()
