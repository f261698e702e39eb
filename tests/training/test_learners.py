"""The learners: fixed-round trees, a numpy logistic, trees boosted from it, exact reasons."""

from __future__ import annotations

import numpy as np
import pytest
import shap

from flushcast.models.config import FitConfig, make_candidate
from flushcast.models.learners import (
    GradientBoosting,
    Logistic,
    balanced_sample,
    finite_percentiles,
    from_state,
    with_dropout,
)
from flushcast.models.matrix import SYMBOL
from flushcast.training.metrics import roc_auc

COLUMNS = ["a", "b", "c", "d", SYMBOL]


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flush odds driven by `a` (linear) and `b` (squared); two symbols as codes 0 and 1."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=(n, 4)), rng.integers(0, 2, n).astype(float)])
    logit = -3.5 + 1.2 * X[:, 0] + 0.8 * X[:, 1] ** 2
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)


def test_balanced_sample_keeps_flushes_weighs_classes_alike_and_is_bounded():
    y = np.zeros(10_000)
    y[:300] = 1
    rows, w = balanced_sample(y, 4.0, 0, seed=0)
    assert set(np.flatnonzero(y)) <= set(rows) and len(rows) == 300 + 1200
    assert w[y[rows] == 1].sum() == pytest.approx(w[y[rows] == 0].sum())
    capped, _ = balanced_sample(y, 4.0, 0, seed=0, max_rows=500)
    assert len(capped) <= 500 and y[capped].sum() == 100


def test_trees_use_a_fixed_number_of_rounds_whatever_a_tail_says():
    """Defect 4 of issue 15: early stopping on a few weeks of tail stopped at a handful of
    trees. Each fit now grows exactly `rounds` trees, and its quality comes from the data."""
    X, y = _synthetic(20_000, seed=0)
    fit = FitConfig()
    model = make_candidate("lightgbm", COLUMNS, fit, ()).fit(X, y)
    assert model.booster.current_iteration() == fit.lightgbm.rounds
    X_test, y_test = _synthetic(10_000, seed=1)
    assert roc_auc(y_test, model.score(X_test)) > 0.75


def test_tree_contributions_are_exact_treeshap():
    X, y = _synthetic(5_000, seed=2)
    model = make_candidate("lightgbm", COLUMNS, FitConfig(), ()).fit(X, y)
    contributions = model.contributions(X[:200])
    np.testing.assert_allclose(contributions.sum(axis=1), model.score(X[:200]), atol=1e-9)
    explainer = shap.TreeExplainer(model.booster)
    np.testing.assert_allclose(contributions[:, :-1], explainer.shap_values(X[:200]), atol=1e-6)


def test_logistic_is_plain_numpy_and_a_missing_value_contributes_nothing():
    X, y = _synthetic(8_000, seed=3)
    X[::7, 2] = np.nan
    model = Logistic(COLUMNS, ["a", "b", "c"]).fit(X, y)
    contributions = model.contributions(X[:50])
    np.testing.assert_allclose(contributions.sum(axis=1), model.score(X[:50]), atol=1e-12)
    assert (contributions[np.isnan(X[:50, 2]), 2] == 0).all()
    assert (contributions[:, 3:5] == 0).all()  # unused columns
    restored = from_state(model.state(), COLUMNS)
    np.testing.assert_array_equal(restored.score(X), model.score(X))
    with pytest.raises(KeyError, match="unknown"):
        Logistic(COLUMNS, ["unknown"])


def test_trees_boosted_from_the_logistic_score_learn_what_it_misses():
    X, y = _synthetic(30_000, seed=4)
    X_test, y_test = _synthetic(20_000, seed=5)
    fit = FitConfig()
    linear = make_candidate("logistic", COLUMNS, fit, ()).fit(X, y)
    boosted = make_candidate("lightgbm_on_logistic", COLUMNS, fit, ()).fit(X, y)
    assert isinstance(boosted, GradientBoosting) and isinstance(boosted.init, Logistic)
    # The squared term is invisible to the linear model; the trees find it.
    assert roc_auc(y_test, boosted.score(X_test)) > roc_auc(y_test, linear.score(X_test)) + 0.03
    contributions = boosted.contributions(X_test[:100])
    np.testing.assert_allclose(contributions.sum(axis=1), boosted.score(X_test[:100]), atol=1e-9)
    restored = from_state(boosted.state(), COLUMNS)
    np.testing.assert_allclose(restored.score(X_test), boosted.score(X_test))


def test_dropout_copies_blank_whole_groups():
    X = np.arange(40, dtype=float).reshape(10, 4)
    y, w = np.zeros(10), np.ones(10)
    X2, y2, w2 = with_dropout(X, y, w, [[0, 1], [3]], 0.5, seed=0)
    assert len(X2) == 15 and len(y2) == len(w2) == 15
    copies = X2[10:]
    blanked = np.isnan(copies)
    assert all(row[[0, 1]].all() or row[3] for row in blanked)
    assert np.all(w2[10:] == 0.5)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def test_a_missing_group_is_learned_as_unknown_not_read_as_zero():
    """Trees trained with dropout treat a blanked group as "unknown" (the average risk), not as
    a zero, which for a liquidation feed would mean "no liquidations at all": the lowest risk."""
    rng = np.random.default_rng(6)
    n = 40_000
    X = np.column_stack([rng.exponential(size=(n, 1)), rng.normal(size=(n, 3)), np.zeros(n)])
    y = (rng.random(n) < _sigmoid(-4.0 + 1.5 * X[:, 0] + 0.5 * X[:, 1])).astype(float)
    test = X[: n // 4]
    blank, zero = test.copy(), test.copy()
    blank[:, 0], zero[:, 0] = np.nan, 0.0
    # Scores are on the balanced scale (classes weigh the same): shift back to the base rate.
    shift = np.log(y.mean() / (1 - y.mean()))
    risk = {}
    for name, share in (("plain", 0.0), ("learned", 0.3)):
        model = make_candidate("lightgbm", COLUMNS, FitConfig(dropout_share=share), [[0]])
        model.fit(X, y)
        risk[name] = {
            k: _sigmoid(model.score(v) + shift).mean()
            for k, v in (("full", test), ("blank", blank), ("zero", zero))
        }
    # Without dropout, NaN follows the zero branch: "missing" reads as "none at all".
    assert risk["plain"]["blank"] == pytest.approx(risk["plain"]["zero"])
    assert risk["plain"]["blank"] < 0.6 * risk["plain"]["full"]
    # With it, a missing feed keeps the average risk.
    assert risk["learned"]["blank"] == pytest.approx(risk["learned"]["full"], rel=0.15)
    assert risk["learned"]["zero"] < 0.6 * risk["learned"]["blank"]


def test_finite_percentiles_are_numpys_nanpercentile():
    """The logistic model's winsor bounds, vectorised over complete columns: numpy's numbers,
    missing and infinite values, all-missing columns and ties included."""
    import warnings

    rng = np.random.default_rng(3)
    for trial in range(40):
        Z = rng.standard_normal((int(rng.integers(1, 4000)), 6)) * 10.0 ** rng.integers(-3, 6)
        Z = np.round(Z, 1) if trial % 2 else Z
        Z[rng.random(Z.shape) < (0.0, 0.05, 0.5)[trial % 3]] = np.nan
        Z[rng.random(Z.shape) < 0.01 * (trial % 4 == 0)] = np.inf
        Z[:, 0] = np.nan if trial % 5 == 0 else Z[:, 0]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanpercentile(np.where(np.isfinite(Z), Z, np.nan), [1, 99], axis=0)
        assert np.array_equal(finite_percentiles(Z, (1, 99)), expected, equal_nan=True)


HOUR = np.timedelta64(1, "h")


def _blocks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows every 15 minutes with weekly blocks whose flush rate is set by `c` (the same value
    all week: the level) and, within a week, by `a` (the order)."""
    rng = np.random.default_rng(seed)
    t = np.datetime64("2024-01-01T00", "us") + np.arange(n) * np.timedelta64(15, "m")
    block = ((t - t[0]) // (168 * HOUR)).astype(int)
    level = rng.normal(size=block.max() + 1)[block]
    X = np.column_stack(
        [rng.normal(size=(n, 2)), level, rng.normal(size=n), rng.integers(0, 2, n).astype(float)]
    )
    y = (rng.random(n) < _sigmoid(-3.5 + 1.0 * X[:, 0] + 1.5 * level)).astype(float)
    return X, y, t, block


@pytest.mark.parametrize("objective", ["rank_xendcg", "lambdarank", "binary"])
def test_ranking_trees_learn_the_order_within_blocks_not_which_block_is_busy(objective):
    """`lightgbm_rank` ranks each training block's rows against each other: a feature that
    only says which week is busy (the same value all week) carries nothing it can learn
    first-hand, while the pointwise trees lean on it most."""
    from flushcast.training.metrics import within_blocks

    X, y, t, _ = _blocks(20_000, seed=7)
    X_test, y_test, _, block_test = _blocks(20_000, seed=8)
    fit = FitConfig.model_validate({"rank": {"objective": objective}})
    ranked = make_candidate("lightgbm_rank", COLUMNS, fit, ()).fit(X, y, t)
    pointwise = make_candidate("lightgbm", COLUMNS, fit, ()).fit(X, y, t)
    assert ranked.booster.params["objective"] == objective
    share = {}
    for name, model in (("ranked", ranked), ("pointwise", pointwise)):
        gain = model.booster.feature_importance("gain")
        share[name] = gain[2] / gain.sum()
    assert share["pointwise"] > 0.3 and share["ranked"] < 0.1
    assert within_blocks(y_test, ranked.score(X_test), block_test).roc_auc > 0.65


def test_ranking_groups_are_calendar_blocks_of_the_rows_being_fitted():
    """Blocks are counted from the earliest row fitted on (a training span's own rows: rows
    after it cannot move a group), per symbol on request; without times there is no group."""
    fit = FitConfig.model_validate({"rank": {"block_hours": 24, "per_symbol": False}})
    model = make_candidate("lightgbm_rank", COLUMNS, fit, ())
    t = np.datetime64("2024-03-01T06", "us") + np.arange(0, 96, 6) * HOUR
    X = np.zeros((len(t), len(COLUMNS)))
    X[:, -1] = np.arange(len(t)) % 2
    np.testing.assert_array_equal(model.queries(X, t), np.arange(len(t)) // 4)
    later = np.concatenate([t, t[-1] + np.arange(1, 9) * 6 * HOUR])
    X_later = np.vstack([X, np.zeros((8, len(COLUMNS)))])
    np.testing.assert_array_equal(model.queries(X_later, later)[: len(t)], model.queries(X, t))
    per_symbol = FitConfig.model_validate({"rank": {"block_hours": 24, "per_symbol": True}})
    by_symbol = make_candidate("lightgbm_rank", COLUMNS, per_symbol, ()).queries(X, t)
    np.testing.assert_array_equal(by_symbol, np.arange(len(t)) // 4 * 2 + np.arange(len(t)) % 2)
    walk = make_candidate("lightgbm_rank", COLUMNS, FitConfig(), (), block_hours=48)
    assert walk.group_hours == 48  # the walk-forward's test block unless set
    with pytest.raises(ValueError, match="time"):
        model.fit(X, (np.arange(len(t)) % 3 == 0).astype(float))


def test_ranking_trees_with_dropout_copies_give_exact_reasons_and_round_trip():
    """Dropout copies stay in their rows' blocks; the booster's scores split exactly into
    TreeSHAP contributions and come back from the bundle's plain-number state."""
    X, y, t, _ = _blocks(8_000, seed=9)
    model = make_candidate("lightgbm_rank", COLUMNS, FitConfig(), [[1], [3]]).fit(X, y, t)
    contributions = model.contributions(X[:200])
    np.testing.assert_allclose(contributions.sum(axis=1), model.score(X[:200]), atol=1e-9)
    explainer = shap.TreeExplainer(model.booster)
    np.testing.assert_allclose(contributions[:, :-1], explainer.shap_values(X[:200]), atol=1e-6)
    restored = from_state(model.state(), COLUMNS)
    np.testing.assert_array_equal(restored.score(X), model.score(X))
    np.testing.assert_array_equal(restored.score(X[:1]), model.score(X[:1]))  # one-row path


def test_equal_blocks_give_every_training_block_the_same_weight(monkeypatch):
    """`fit.rank.equal_blocks`: a busy block (every flush kept by the sampling) weighs no more
    than a quiet one; without it, weights follow the rows."""
    import lightgbm as lgb

    seen = []
    init = lgb.Dataset.__init__
    monkeypatch.setattr(
        lgb.Dataset, "__init__", lambda self, *a, **k: seen.append(k) or init(self, *a, **k)
    )
    X, y, t, _ = _blocks(8_000, seed=10)
    for equal in (True, False):
        fit = FitConfig.model_validate({"rank": {"equal_blocks": equal}})
        make_candidate("lightgbm_rank", COLUMNS, fit, ()).fit(X, y, t)
        made = seen[-1]
        group = np.repeat(np.arange(len(made["group"])), made["group"])
        totals = np.bincount(group, made["weight"])
        assert np.allclose(totals, totals.mean()) == equal


def test_logistic_copies_only_its_columns_of_the_sampled_rows(monkeypatch):
    """A baseline on some of a wide matrix's columns fits exactly what it fits on those columns
    alone (the same numbers to the last bit: the copy keeps the column-major layout the fit's
    products were summed in), without a copy of every column of its rows."""
    import tracemalloc

    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    X = rng.normal(size=(12_000, 300))
    y = (X[:, 3] + 0.3 * X[:, 60] + rng.normal(size=len(X)) > 2.0).astype(float)
    columns = [f"c{j}" for j in range(X.shape[1])]
    used = list(range(0, 120, 3))
    narrow = Logistic([columns[j] for j in used]).fit(X[:, used], y)
    layouts = []
    fit = LogisticRegression.fit
    monkeypatch.setattr(
        LogisticRegression,
        "fit",
        lambda self, Z, *a, **k: layouts.append(Z.flags.f_contiguous) or fit(self, Z, *a, **k),
    )
    tracemalloc.start()
    try:
        wide = Logistic(columns, [columns[j] for j in used]).fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert layouts == [True]  # column-major, as `X[rows][:, use]` made it
    # Its ~9,000 sampled rows of every column alone would be larger than all it allocates.
    assert peak < X[:9000].nbytes
    assert wide.state() | {"use": None} == narrow.state() | {"use": None}
