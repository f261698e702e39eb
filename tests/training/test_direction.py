"""The direction model can start from its trivial rules' inputs (`fit.direction_inputs`)."""

from __future__ import annotations

import numpy as np

from flushcast.models.config import FitConfig, make_direction
from flushcast.models.learners import GradientBoosting, Logistic
from flushcast.models.stacking import load_learner


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
