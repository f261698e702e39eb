"""The combined champion: non-negative shares, shrunk toward equal, one rule for folds and train."""

from __future__ import annotations

import numpy as np
import pytest

from flushcast.common.errors import DataError
from flushcast.models.config import CANDIDATES
from flushcast.models.learners import Logistic
from flushcast.models.rules import LiquidationSurprise
from flushcast.models.stacking import (
    Stack,
    load_learner,
    nonnegative_logistic,
    plausibility,
    shares,
)
from flushcast.training.combine import combine, inputs
from flushcast.training.config import TrainingConfig
from flushcast.training.metrics import per_block, roc_auc, within_blocks


def _views(n: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two noisy views of one latent risk, an anti-signal, weekly blocks; ~3 % flushes."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(risk * 1.5 - 4.0)))).astype(float)
    S = np.column_stack(
        [
            risk + rng.normal(scale=1.0, size=n),
            risk + rng.normal(scale=1.3, size=n),
            -risk + rng.normal(scale=1.0, size=n),
        ]
    )
    return S, y, np.arange(n) // 500


def test_the_stack_never_gives_a_part_a_negative_weight():
    S, y, _ = _views()
    w = nonnegative_logistic(S, y)
    assert (w >= 0).all()
    assert w[0] > 0 and w[1] > 0
    assert w[2] == pytest.approx(0.0, abs=1e-6)  # the anti-signal is ignored, never flipped


def test_few_episodes_shrink_toward_equal_shares_many_toward_the_fit():
    S, y, _ = _views()
    few, fitted, a_few = shares(S, y, episodes=1, shrinkage_episodes=30)
    many, _, a_many = shares(S, y, episodes=3000, shrinkage_episodes=30)
    assert few.sum() == pytest.approx(1.0) and many.sum() == pytest.approx(1.0)
    assert a_few < 0.05 < 0.95 < a_many
    assert np.abs(few - 1 / 3).max() < 0.02
    assert np.abs(many - fitted).max() < 0.02


def test_the_stack_ranks_at_least_as_well_as_its_best_part_within_blocks():
    S, y, blocks = _views(seed=1)
    share, _, _ = shares(S, y, episodes=200, shrinkage_episodes=30)
    parts = [within_blocks(y, S[:, i], blocks).roc_auc for i in range(S.shape[1])]
    assert within_blocks(y, S @ share, blocks).roc_auc >= max(parts)


def test_best_is_winner_take_all_and_stack_uses_every_input():
    S, y, blocks = _views(seed=2)
    raw = {"logistic": S[:, 1], "lightgbm": S[:, 0], "liquidation_surprise": S[:, 2]}
    config = TrainingConfig()
    best = combine(raw, y, blocks, 100, config.with_overrides({"combination.method": "best"}))
    assert best.shares == {"logistic": 0.0, "lightgbm": 1.0}  # baselines never win a pick
    assert best.label == "lightgbm"
    np.testing.assert_array_equal(best.score(raw), raw["lightgbm"])
    stack = combine(raw, y, blocks, 100, config)
    assert set(stack.shares) == set(raw) and sum(stack.shares.values()) == pytest.approx(1.0)
    assert stack.label == "stack" and "logistic" in stack.describe()


def test_a_stack_scores_and_explains_as_its_weighted_parts():
    columns = ["rv_24h_pct", "liq_surprise_4h", "symbol"]
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=400), rng.lognormal(size=400), np.zeros(400)])
    y = (X[:, 0] + rng.normal(size=400) > 1).astype(float)
    members = [Logistic(columns).fit(X, y), LiquidationSurprise(columns, 4)]
    stack = Stack(["logistic", "liquidation_surprise"], members, [0.7, 0.3], [0.1, -0.2], [2, 3])
    expected = 0.7 * (members[0].score(X) - 0.1) / 2 + 0.3 * (members[1].score(X) + 0.2) / 3
    np.testing.assert_allclose(stack.score(X), expected)
    np.testing.assert_allclose(stack.contributions(X).sum(axis=1), expected)
    restored = load_learner(stack.state(), columns)
    np.testing.assert_allclose(restored.score(X), expected)
    assert restored.composition() == {"logistic": 0.7, "liquidation_surprise": 0.3}
    with pytest.raises(ValueError, match="shares"):
        Stack(["logistic"], members[:1], [-0.1], [0], [1])


def test_with_block_intercepts_an_input_that_only_knows_the_busy_block_gets_no_weight():
    """An input constant within each block but higher in busy blocks earns weight in a pooled
    fit (it predicts the level) and none in the per-block fit (it ranks nothing inside one)."""
    rng = np.random.default_rng(3)
    blocks = np.arange(8000) // 500
    busy = rng.normal(size=blocks.max() + 1)
    risk = rng.normal(size=8000)
    logit = -3.5 + 1.0 * busy[blocks] + 1.2 * risk
    y = (rng.random(8000) < 1 / (1 + np.exp(-logit))).astype(float)
    S = np.column_stack([risk + rng.normal(scale=0.5, size=8000), busy[blocks]])
    pooled = nonnegative_logistic(S, y)
    within = nonnegative_logistic(S, y, blocks=blocks)
    assert pooled[1] > 0.3
    assert within[1] < 0.05 * within[0]


def test_only_shippable_models_can_be_inputs():
    with pytest.raises(DataError, match=r"combination\.inputs must be among"):
        TrainingConfig().with_overrides({"combination.inputs": ["logistic", "placebo"]})
    config = TrainingConfig().with_overrides({"evaluation.baselines": ["climatology"]})
    assert inputs(config) == ["logistic", "lightgbm", "lightgbm_on_logistic"]  # not run: skipped


def _dominant(n_blocks: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A part that sees the risk, one that sees half of it, one at chance; weekly blocks."""
    rng = np.random.default_rng(seed)
    n = n_blocks * 500
    risk = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(risk * 2.0 - 4.0)))).astype(float)
    S = np.column_stack(
        [
            risk + rng.normal(scale=0.3, size=n),
            risk + rng.normal(scale=2.0, size=n),
            rng.normal(size=n),
        ]
    )
    return S, y, np.arange(n) // 500


def test_plausibility_is_one_for_the_best_near_zero_for_parts_worse_block_after_block():
    S, y, blocks = _dominant(n_blocks=40)
    each = [per_block(y, S[:, i], blocks) for i in range(3)]
    p = plausibility(np.column_stack([e.roc_auc for e in each]), each[0].events)
    assert p[0] == 1.0
    assert p[1] < 0.01 and p[2] < 0.01
    # No evidence: parts that tie, or a single block, are all plausible.
    tie = per_block(y, S[:, 0], blocks)
    assert (plausibility(np.column_stack([tie.roc_auc] * 3), tie.events) == 1.0).all()
    assert (plausibility(np.column_stack([e.roc_auc[:1] for e in each]), tie.events[:1]) == 1).all()


def test_shrunk_toward_plausible_shares_is_best_with_ample_evidence_equal_with_none():
    """`combination.toward=plausible`: with few episodes the shares follow the evidence of which
    part ranks best within blocks: the dominant part alone when the blocks agree on it, equal
    shares when the parts cannot be told apart."""
    config = TrainingConfig().with_overrides(
        {"combination.toward": "plausible", "combination.inputs": list(CANDIDATES)}
    )
    S, y, blocks = _dominant(n_blocks=40)
    raw = dict(zip(CANDIDATES, S.T, strict=True))
    ample = combine(raw, y, blocks, 0, config)  # no episodes: the fit weighs nothing
    assert ample.shares[CANDIDATES[0]] > 0.99
    assert ample.inputs == [CANDIDATES[0]] or max(list(ample.shares.values())[1:]) < 0.01
    tied = {name: S[:, 0] for name in CANDIDATES}
    none = combine(tied, y, blocks, 0, config)
    np.testing.assert_allclose(list(none.shares.values()), 1 / 3)
    # With ample episodes the fit dominates, as with equal shares as the target.
    fitted = combine(raw, y, blocks, 10**6, config)
    assert fitted.shares == pytest.approx(fitted.fitted, abs=1e-4)


def test_weighing_by_plausibility_leaves_out_a_part_at_chance_and_never_goes_negative():
    S, y, blocks = _dominant(n_blocks=40, seed=5)
    raw = {"logistic": S[:, 0], "lightgbm": S[:, 1], "liquidation_surprise": S[:, 2]}
    config = TrainingConfig().with_overrides({"combination.shrinkage_episodes": 1e12})
    equal = combine(raw, y, blocks, 100, config)
    weighed = combine(
        raw, y, blocks, 100, config.with_overrides({"combination.weigh_by_plausibility": True})
    )
    assert equal.shares["liquidation_surprise"] == pytest.approx(1 / 3)
    assert weighed.shares["liquidation_surprise"] < 0.01
    assert min(weighed.shares.values()) >= 0 and sum(weighed.shares.values()) == pytest.approx(1)
    assert "plausibility" in weighed.reason
    ranks = lambda c: within_blocks(y, c.score(raw), blocks).roc_auc  # noqa: E731
    assert ranks(weighed) > ranks(equal)


RANKED = ["logistic", "lightgbm", "lightgbm_rank"]


def _level_and_order(
    seed: int, n: int = 8000
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Blocks of 400 rows with their own level of risk: two pointwise parts see the level and
    half the row's risk, a level-free part (as `lightgbm_rank`) sees the row's risk only."""
    rng = np.random.default_rng(seed)
    blocks = np.arange(n) // 400
    level = rng.normal(size=blocks.max() + 1)[blocks]
    risk = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * risk + 1.5 * level - 5.0)))).astype(float)
    raw = {
        "logistic": 0.5 * risk + level + rng.normal(size=n),
        "lightgbm": 0.5 * risk + level + rng.normal(size=n),
        "lightgbm_rank": risk + rng.normal(scale=0.6, size=n),
    }
    return raw, y, blocks


def test_a_two_part_champion_keeps_the_level_a_level_free_input_dilutes():
    """`combination.level_inputs`: the stack with the level-free part ranks within blocks, the
    stack of the pointwise parts carries which block is busy; the pooled fit of the two keeps
    most of both, judged on fresh rows: pooled ROC above the one stack's, ROC within blocks
    far above the pointwise stack's. The champion is one weighted sum of its inputs, shares
    >= 0 summing to 1, and says what its parts are."""
    config = TrainingConfig().with_overrides(
        {"fit.candidates": RANKED, "combination.inputs": RANKED}
    )
    two_part = config.with_overrides({"combination.level_inputs": RANKED[:2]})
    pointwise = config.with_overrides({"combination.inputs": RANKED[:2]})
    pooled_gain, within_gain = [], []
    for seed in range(5):
        raw, y, blocks = _level_and_order(seed)
        one, two, level = (
            combine(raw, y, blocks, int(y.sum()), c) for c in (config, two_part, pointwise)
        )
        assert two.method == two.label == "two_part" and one.label == "stack"
        for made in (two.shares, two.fitted):
            assert min(made.values()) >= 0 and sum(made.values()) == pytest.approx(1)
        assert "order" in two.reason and "level" in two.reason
        fresh, y_fresh, b_fresh = _level_and_order(seed + 100)
        pooled_gain.append(roc_auc(y_fresh, two.score(fresh)) - roc_auc(y_fresh, one.score(fresh)))
        within_gain.append(
            within_blocks(y_fresh, two.score(fresh), b_fresh).roc_auc
            - within_blocks(y_fresh, level.score(fresh), b_fresh).roc_auc
        )
    assert np.mean(pooled_gain) > 0.01 and min(pooled_gain) > -0.005
    assert np.mean(within_gain) > 0.05


def test_a_two_part_champion_without_its_level_free_input_is_the_stack():
    """Level inputs that are the order's inputs once those not run are skipped (a recipe
    without `lightgbm_rank`): no second part, the one stack is the champion."""
    raw, y, blocks = _level_and_order(0)
    config = TrainingConfig().with_overrides(
        {"fit.candidates": RANKED[:2], "combination.inputs": RANKED}
    )
    alone = combine(raw, y, blocks, int(y.sum()), config)
    both = config.with_overrides({"combination.level_inputs": RANKED[:2]})
    assert combine(raw, y, blocks, int(y.sum()), both) == alone
    assert alone.label == "stack" and set(alone.shares) == set(RANKED[:2])


def test_a_two_part_champion_runs_its_level_inputs_and_names_only_shippable_ones():
    config = TrainingConfig().with_overrides(
        {
            "combination.inputs": ["logistic", "lightgbm"],
            "combination.level_inputs": ["lightgbm", "liquidation_surprise"],
        }
    )
    # `train` runs every model `inputs` names: the level part's baseline too.
    assert inputs(config) == ["logistic", "lightgbm", "liquidation_surprise"]
    assert inputs(config, "level") == ["lightgbm", "liquidation_surprise"]
    with pytest.raises(DataError, match=r"combination\.level_inputs must be among"):
        TrainingConfig().with_overrides({"combination.level_inputs": ["placebo"]})
