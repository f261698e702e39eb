"""The combined champion: non-negative shares, shrunk toward equal, one rule for folds and train."""

from __future__ import annotations

import numpy as np
import pytest

from flushcast.common.errors import DataError
from flushcast.models.learners import Logistic
from flushcast.models.rules import LiquidationSurprise
from flushcast.models.stacking import Stack, load_learner, nonnegative_logistic, shares
from flushcast.training.combine import combine, inputs
from flushcast.training.config import TrainingConfig
from flushcast.training.metrics import within_blocks


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
