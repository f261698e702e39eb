"""Baselines: fitted on training rows only, the rule they state, never its opposite."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.models.calibration import Calibrator
from flushcast.models.matrix import SYMBOL
from flushcast.training.baselines import (
    BASELINES,
    COMPACT,
    Climatology,
    Heuristic,
    LiquidationSurprise,
    Placebo,
)
from flushcast.training.metrics import roc_auc, within_blocks

GAUGES = ["funding_z_30d", "oi_z_30d", "rv_ratio_24h_168h"]


def _times(n_hours: int, symbols: int = 2) -> np.ndarray:
    hours = pd.date_range("2024-01-01", periods=n_hours, freq="h")
    return np.tile(hours.to_numpy(dtype="datetime64[us]"), symbols)


def _stress(n_hours: int, seed: int, sign: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Two symbols; flush odds rise (sign=+1) or fall (sign=-1) with the heuristic's gauges."""
    rng = np.random.default_rng(seed)
    n = 2 * n_hours
    X = np.column_stack([rng.normal(size=(n, 3)), np.repeat([0.0, 1.0], n_hours)])
    stress = np.abs(X[:, 0]) + X[:, 1] - X[:, 2]
    logit = -3.5 + sign * 0.8 * stress
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)


def test_climatology_is_the_trailing_training_rate():
    y = np.zeros(2000)
    y[1500:] = 1.0  # the last 250 hours of both symbols... only of symbol 2
    t = _times(1000)
    assert Climatology(None).fit(np.zeros((2000, 1)), y, t).rate == pytest.approx(0.25)
    trailing = Climatology(window_hours=250).fit(np.zeros((2000, 1)), y, t)
    assert trailing.rate == pytest.approx(0.5)
    assert not Climatology.calibrated


def test_placebo_is_chance_within_every_block_and_shared_by_symbols():
    """Issue 15: the placebo scores ~0.5 within folds by construction."""
    n_hours = 168 * 30
    t = _times(n_hours)
    rng = np.random.default_rng(1)
    y = (rng.random(len(t)) < 0.05).astype(float)
    scores = Placebo(seed=3).fit(np.zeros((len(t), 1)), y, t).score(np.zeros((len(t), 1)), t)
    weeks = np.tile(np.arange(n_hours) // 168, 2)
    assert within_blocks(y, scores, weeks).roc_auc == pytest.approx(0.5, abs=0.03)
    same_bar = pd.Series(scores).groupby(t).nunique()
    assert (same_bar == 1).all()  # random *times*: both symbols get the bar's draw
    again = Placebo(seed=3).score(np.zeros((len(t), 1)), t)
    np.testing.assert_array_equal(scores, again)


def test_heuristic_ranks_by_its_gauges_against_training_rows_only():
    X, y = _stress(4000, 2)
    columns = [*GAUGES, SYMBOL]
    fit, test = slice(0, 5000), slice(5000, None)
    heuristic = Heuristic(columns).fit(X[fit], y[fit])
    assert roc_auc(y[test], heuristic.score(X[test])) > 0.7
    # A test row's score does not depend on which other rows are scored with it.
    np.testing.assert_allclose(heuristic.score(X[test][:10]), heuristic.score(X[test])[:10])
    with pytest.raises(KeyError, match="oi_z_30d"):
        Heuristic(["return_24h", SYMBOL])


def test_a_gauge_the_bar_does_not_build_ranks_as_one_missing_everywhere():
    """On daily bars the volatility ratio is not a model column (`missing_at`): the heuristic
    ranks on the other two gauges exactly as if that one were missing in every row."""
    X, y = _stress(2000, 2)
    calm = [*GAUGES].index("rv_ratio_24h_168h")
    unknown = X.copy()
    unknown[:, calm] = np.nan
    full = Heuristic([*GAUGES, SYMBOL]).fit(unknown, y)
    columns = [c for c in [*GAUGES, SYMBOL] if c != "rv_ratio_24h_168h"]
    without = Heuristic(columns).fit(np.delete(X, calm, axis=1), y)
    a, b = full.score(unknown), without.score(np.delete(X, calm, axis=1))
    np.testing.assert_array_equal(np.argsort(a, kind="stable"), np.argsort(b, kind="stable"))
    assert roc_auc(y, b) > 0.6


def test_an_inverted_market_scores_the_heuristic_as_the_rule_it_states():
    """Defect 3 of issue 15: calibrating with a free sign scored the rule's opposite on real
    data. Calibrated, the heuristic now keeps its own order and its (poor) ranking shows."""
    X, y = _stress(6000, 3, sign=-1.0)
    columns = [*GAUGES, SYMBOL]
    fit, test = slice(0, 8000), slice(8000, None)
    heuristic = Heuristic(columns).fit(X[fit], y[fit])
    calibrator = Calibrator.fit(heuristic.score(X[fit]), y[fit])
    p = calibrator.predict(heuristic.score(X[test]))
    assert roc_auc(y[test], p) == pytest.approx(roc_auc(y[test], heuristic.score(X[test])))
    assert roc_auc(y[test], p) < 0.35  # the rule is wrong here, and the evaluation says so


def test_liquidation_surprise_uses_the_window_nearest_the_horizon():
    columns = ["liq_surprise_4h", "liq_surprise_12h", "liq_surprise_24h", SYMBOL]
    assert LiquidationSurprise(columns, 4).column == 0
    assert LiquidationSurprise(columns, 12).column == 1
    assert LiquidationSurprise(columns, 72).column == 2
    X = np.array([[np.nan, 3.0, 0.5, 0.0], [1.0, np.nan, 2.0, 0.0]])
    scores = LiquidationSurprise(columns, 12).score(X)
    assert scores[0] > scores[1]  # 3× the usual beats "unknown" (read as usual)
    with pytest.raises(KeyError, match="liq_surprise"):
        LiquidationSurprise(["a", SYMBOL], 4)


def test_compact_logistic_sees_price_volatility_and_funding_only():
    from flushcast.features.registry import names

    columns = [*names(), SYMBOL]
    model = BASELINES["compact_logistic"](columns, 12, 0)
    used = [columns[i] for i in model.use]
    assert used == list(COMPACT) and len(used) == 15
    assert not [c for c in used if c.startswith(("oi_", "liq_", "heat_"))]
    volatility = BASELINES["volatility"](columns, 12, 0)
    assert [columns[i] for i in volatility.use] == ["rv_24h_pct", "rv_72h_pct", "rv_168h_pct"]
