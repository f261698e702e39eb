"""The direction call: the trees (optionally started from the trivial rules' inputs,
`fit.direction_inputs`), the trivial rules as scorers, and their stack on earlier rows only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from flushcast.models.config import FitConfig, make_direction
from flushcast.models.direction import DirectionCall, load_direction, toward_best_rule, weights
from flushcast.models.learners import GradientBoosting, Logistic
from flushcast.models.rules import DIRECTION_RULES, DirectionRule
from flushcast.models.stacking import load_learner
from flushcast.training.horizon import horizon_data, side_codes
from flushcast.training.labels import DIRECTIONS, LONG_FLUSH, SHORT_SQUEEZE
from flushcast.training.recipe import Refit, fit_direction
from flushcast.training.walkforward import calibrate_and_choose, out_of_fold


def _flushes(n: int = 80, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Few one-sided flushes whose side follows funding and the last 24 h return together
    (crowded longs after a rise flush), among noise columns the trees could overfit."""
    rng = np.random.default_rng(seed)
    columns = ["funding_bp", "return_24h", *[f"noise_{i}" for i in range(20)]]
    X = rng.normal(size=(n, len(columns)))
    is_long = (X[:, 0] + X[:, 1] + 0.5 * rng.normal(size=n) > 0).astype(float)
    return columns, X, is_long


def test_the_direction_model_boosted_from_the_rules_inputs_keeps_what_a_sign_rule_knows():
    columns, X, is_long = _flushes()
    _, X_new, long_new = _flushes(n=2000, seed=1)
    trees = make_direction(columns, FitConfig())
    assert trees.init is None
    ruled = make_direction(columns, FitConfig(direction_inputs=("funding_bp", "return_24h", "oi")))
    assert isinstance(ruled.init, Logistic)
    assert [columns[j] for j in ruled.init.use] == ["funding_bp", "return_24h"]  # "oi": absent
    accuracy = {}
    for name, model in (("trees", trees), ("ruled", ruled)):
        model.fit(X, is_long)
        accuracy[name] = np.mean((model.score(X_new) > 0) == (long_new == 1))
    sign_rule = np.mean((X_new[:, 1] > 0) == (long_new == 1))
    assert accuracy["ruled"] > accuracy["trees"]
    assert accuracy["ruled"] >= sign_rule - 0.03
    restored = load_learner(ruled.state(), columns)
    assert isinstance(restored, GradientBoosting) and restored.init is not None
    np.testing.assert_allclose(restored.score(X_new), ruled.score(X_new))


def test_a_sign_rule_learns_its_orientation_and_falls_back_to_the_majority():
    columns = ["funding_bp", "return_24h"]
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 2))
    is_long = (X[:, 0] < 0).astype(float)  # negative funding went with long flushes
    rule = DirectionRule("funding_sign", columns).fit(X, is_long)
    test = np.array([[1.0, 0.0], [-1.0, 0.0], [np.nan, 0.0]])
    p = 1 / (1 + np.exp(-rule.score(test)))
    assert p[0] < 0.5 < p[1]  # reversed: positive funding calls a short squeeze
    majority = DirectionRule("majority", columns).fit(X, is_long)
    np.testing.assert_allclose(rule.score(test)[2], majority.score(test)[0])
    assert not DirectionRule("return_24h_sign", ["funding_bp"]).usable


def test_the_direction_stack_leans_on_a_rule_the_trees_miss_and_on_the_trees_without_evidence():
    rng = np.random.default_rng(3)
    n = 400
    rule = np.sign(rng.normal(size=n))
    is_long = (rule + 0.8 * rng.normal(size=n) > 0).astype(float)
    trees = rng.normal(size=n)  # the trees' log-odds: noise here
    S = np.column_stack([trees, 1.2 * rule])
    w, fitted, a = weights(S, is_long, episodes=400, shrinkage=30, ridge=1.0)
    assert fitted[1] > 0.3 and fitted[0] < 0.1 and min(fitted) >= 0
    np.testing.assert_allclose(w, a * fitted + (1 - a) * np.array([1.0, 0.0]))
    alone, _, a0 = weights(S, is_long, episodes=0, shrinkage=30, ridge=1.0)
    assert a0 == 0 and alone.tolist() == [1.0, 0.0]


def test_the_trees_are_shrunk_toward_a_rule_only_when_it_beat_them_block_after_block():
    rng = np.random.default_rng(4)
    blocks = np.repeat(np.arange(12), 40)
    is_long = rng.integers(0, 2, size=len(blocks)).astype(float)
    right = np.where(is_long == 1, 1.0, -1.0)
    rule = np.where(rng.random(len(blocks)) < 0.8, right, -right)  # right 80 % of the time
    trees = np.where(rng.random(len(blocks)) < 0.55, right, -right)  # right 55 %
    w, a = toward_best_rule(np.column_stack([trees, 0 * rule, rule]), is_long, blocks)
    assert a < 0.05 and w[2] == pytest.approx(1 - a) and w[1] == 0
    w, a = toward_best_rule(np.column_stack([rule, trees]), is_long, blocks)
    assert a == 1.0 and w.tolist() == [1.0, 0.0]  # the trees call best: they keep the call
    w, a = toward_best_rule(np.column_stack([trees, rule])[:40], is_long[:40], blocks[:40])
    assert a == 1.0  # one block: no evidence either way


@pytest.mark.parametrize("method", ["stack", "plausible"])
def test_the_direction_call_uses_only_earlier_rows(small_dataset, small_config, method):
    """Flipping the sides of one fold's test flushes changes nothing in that fold's calls (nor
    in any earlier fold's), and changes later folds' calls (the flip is seen once known)."""
    config = small_config.with_overrides(
        {
            "fit.direction.rounds": 10,
            "fit.min_direction_rows": 5,
            "combination.direction": method,
            "combination.direction_shrinkage": 0.0,
            "calibration.min_episodes": 1,
        }
    )
    data = horizon_data(small_dataset, 4)
    folds = data.folds(config)
    names = ["liquidation_surprise"]

    def calls(d):
        walk = calibrate_and_choose(d, folds, out_of_fold(d, folds, config, names), config)
        return walk.frame.set_index(["fold", "timestamp", "symbol"])["p_long"]

    before = calls(data)
    scored = before.index.get_level_values("fold").unique()
    f = int(scored[len(scored) // 2])
    flipped = data.direction.copy()
    test = folds[f].test
    flipped[test] = np.where(
        data.direction[test] == LONG_FLUSH,
        SHORT_SQUEEZE,
        np.where(data.direction[test] == SHORT_SQUEEZE, LONG_FLUSH, data.direction[test]),
    )
    assert (flipped != data.direction).sum() >= 5
    after = calls(dataclasses.replace(data, direction=flipped))
    folds_of = before.index.get_level_values("fold")
    upto = folds_of <= f
    pd.testing.assert_series_equal(before[upto], after[upto])
    assert not np.allclose(before[~upto], after[~upto])


def test_a_direction_call_round_trips_and_refuses_a_bad_state():
    columns, X, is_long = _flushes()
    trees = make_direction(columns, FitConfig()).fit(X, is_long)
    rules = [DirectionRule(n, columns).fit(X, is_long) for n in DIRECTION_RULES]
    call = DirectionCall(trees, rules, {"model": 0.7, "majority": 0.1, "funding_sign": 0.4,
                                        "return_24h_sign": 0.0})  # fmt: skip
    restored = load_direction(call.state(), columns)
    assert isinstance(restored, DirectionCall)
    np.testing.assert_allclose(restored.score(X), call.score(X))
    np.testing.assert_allclose(
        call.score(X), 0.7 * trees.score(X) + 0.1 * rules[0].score(X) + 0.4 * rules[1].score(X)
    )
    bad = [
        {**call.state(), "weights": {**call.weights, "funding_sign": -0.1}},
        {**call.state(), "weights": {"model": 1.0}},
        {**call.state(), "rules": [{"kind": "direction_rule", "name": "moon_phase"}]},
        {k: v for k, v in call.state().items() if k != "rules"},
    ]
    for state in bad:
        with pytest.raises(ValueError):
            load_direction(state, columns)


def _opposite(sides: np.ndarray) -> np.ndarray:
    """Long flushes called short squeezes and the reverse (mixed and unknown kept)."""
    return np.where(
        sides == LONG_FLUSH, SHORT_SQUEEZE, np.where(sides == SHORT_SQUEEZE, LONG_FLUSH, sides)
    )


def _opposite_codes(codes: np.ndarray) -> np.ndarray:
    """`_opposite` on sides coded as `HorizonData.move_side` codes them."""
    sides = np.array((*DIRECTIONS, None), dtype=object)[codes]  # code -1: the last, None
    return side_codes(_opposite(sides))


def test_the_direction_models_move_rows_come_from_its_training_rows_only(
    small_dataset, small_config
):
    """With `fit.direction.move_weight`, a fold's direction trees also learn from quiet
    training rows that moved far on one side: flipping the test rows' labels, directions and
    moves changes nothing in that fold's trees, while flipping its training rows' moves
    does (and does nothing without the setting)."""
    moves = {"fit.direction.rounds": 10, "fit.min_direction_rows": 5}
    config = small_config.with_overrides(
        {**moves, "fit.direction.move_weight": 0.5, "fit.direction.move_threshold": 0.5}
    )
    flushes_only = small_config.with_overrides(moves)
    data = horizon_data(small_dataset, 4)
    assert not [c for c in data.columns if c.startswith("move_")]  # labels, never inputs
    folds = data.folds(config)
    fold = folds[len(folds) // 2]
    refit = Refit.of_fold(fold)
    moved, _ = data.moved(0.5)
    assert moved[refit.train].sum() > 2 * data.sided()[0][refit.train].sum()  # more rows

    def scores(d, c):
        return fit_direction(d, refit, c).score(data.X[fold.test])

    before = scores(data, config)
    test = fold.test
    y, side, ratio, direction = (a.copy() for a in (data.y, data.move_side, data.move_ratio,
                                                    data.direction))  # fmt: skip
    y[test] = 1 - y[test]
    side[test], direction[test] = _opposite_codes(side[test]), _opposite(direction[test])
    ratio[test] = ratio[test][::-1]
    flipped = dataclasses.replace(data, y=y, move_side=side, move_ratio=ratio, direction=direction)
    np.testing.assert_array_equal(scores(flipped, config), before)

    side = data.move_side.copy()
    side[refit.train] = _opposite_codes(side[refit.train])
    trained = dataclasses.replace(data, move_side=side)
    assert not np.allclose(scores(trained, config), before)
    np.testing.assert_array_equal(scores(trained, flushes_only), scores(data, flushes_only))


def test_a_pass_one_cached_before_the_move_labels_gets_the_same_ones_from_its_store(
    sim_store, small_dataset, small_config
):
    """`benchmarks.combination_study.with_moves` gives cached rows the move labels a fresh
    build gives, and refuses a cache whose labels are not the store's."""
    from benchmarks.combination_study import with_moves

    data = horizon_data(small_dataset, 12)
    old = dataclasses.replace(data, move_side=None, move_ratio=None)
    plans = {12: (old, [])}
    with_moves(plans, [sim_store], small_config)
    np.testing.assert_array_equal(old.move_side, data.move_side)
    np.testing.assert_array_equal(old.move_ratio, data.move_ratio)
    flipped = dataclasses.replace(data, move_side=None, direction=_opposite(data.direction))
    with pytest.raises(SystemExit, match="differ"):
        with_moves({12: (flipped, [])}, [sim_store], small_config)


def test_with_move_rows_the_direction_trees_start_from_a_logistic_fitted_on_flushes_alone(
    small_dataset, small_config
):
    """The logistic start (`fit.direction_inputs`) is the flushes' own: the move rows only
    reach the trees boosted from it."""
    sets = {"fit.direction.rounds": 5, "fit.min_direction_rows": 5}
    sets["fit.direction_inputs"] = ("funding_bp", "return_24h")
    data = horizon_data(small_dataset, 4)
    refit = Refit.of_fold(data.folds(small_config)[-1])
    flushes = fit_direction(data, refit, small_config.with_overrides(sets))
    sets |= {"fit.direction.move_weight": 0.5, "fit.direction.move_threshold": 0.5}
    moved = fit_direction(data, refit, small_config.with_overrides(sets))
    assert flushes is not None and moved is not None
    assert flushes.init is not None and moved.init is not None
    np.testing.assert_array_equal(moved.init.coef, flushes.init.coef)
    assert not np.allclose(moved.score(data.X), flushes.score(data.X))


def test_move_rows_count_toward_the_rows_a_direction_model_needs_at_their_weight(
    small_dataset, small_config
):
    """Too few flushes for a direction model alone, enough with the move rows at their
    weight: where flushes are few, the extra rows are what make a model at all."""
    data = horizon_data(small_dataset, 4)
    refit = Refit.of_fold(data.folds(small_config)[0])
    flushes = int(data.sided()[0][refit.train].sum())
    extra = int(data.moved(0.5)[0][refit.train].sum())
    assert extra >= 10
    sets = {"fit.direction.rounds": 5, "fit.min_direction_rows": flushes + 5}
    assert fit_direction(data, refit, small_config.with_overrides(sets)) is None
    sets |= {"fit.direction.move_threshold": 0.5, "fit.direction.move_weight": 0.5}
    assert fit_direction(data, refit, small_config.with_overrides(sets)) is not None
    sets["fit.min_direction_rows"] = flushes + extra // 2 + 1
    assert fit_direction(data, refit, small_config.with_overrides(sets)) is None
