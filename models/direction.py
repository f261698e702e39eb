"""The direction call: the direction model alone, or stacked with its trivial rules.

On few one-sided flushes the direction trees can trail a one-line rule (the 4 h set at 24 h:
.48 against the 24 h return's sign, .63). As the flush champion combines its parts
(`models.stacking`), the call can combine the trees' log-odds with the rules' (each rule's log-odds
is what its own training hit rate says, `models.rules.DirectionRule`): a non-negative logistic
regression without an intercept (the majority's log-odds is the base rate), fitted on earlier
out-of-fold one-sided flushes only and shrunk toward the trees alone when those are few:

    weights = a · fitted + (1 - a) · (1 on the model, 0 on each rule),  a = n / (n + k)

with n the one-sided flush episodes of the evidence and k `combination.direction_shrinkage`.
Non-negative: a rule can be ignored, never reversed. With no evidence the call is the trees'.

`DirectionCall` is the deployable form (the bundle's direction): the fitted trees (or none,
when too few training flushes: their log-odds is then 0), the fitted rules and the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from flushcast.models.learners import GradientBoosting, from_state
from flushcast.models.rules import DirectionRule
from flushcast.models.stacking import nonnegative_logistic, plausibility

MODEL = "model"
"""The direction trees' name among the call's inputs."""


def weights(
    S: np.ndarray, is_long: np.ndarray, episodes: float, shrinkage: float, ridge: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """(weights, fitted weights, weight on the fit) of the inputs (columns of `S`, log-odds,
    the model's first) on these one-sided flushes (`is_long`: 1.0 for a long flush).

    With no flush, or flushes of one side only, the fit is the model alone.
    """
    target = np.zeros(S.shape[1])
    target[0] = 1.0
    if not 0 < np.sum(is_long) < len(is_long):
        return target, target, 0.0
    fitted = nonnegative_logistic(S, is_long, ridge, balanced=False, intercept=False)
    a = episodes / (episodes + shrinkage) if shrinkage > 0 else 1.0
    return a * fitted + (1 - a) * target, fitted, float(a)


def toward_best_rule(
    S: np.ndarray, is_long: np.ndarray, blocks: np.ndarray
) -> tuple[np.ndarray, float]:
    """(weights, a): a on the model, 1 - a on the rule calling best on these one-sided
    flushes, with a the model's plausibility of calling as well as the best input there
    (`models.stacking.plausibility` of the accuracies in each block, blocks weighed by their
    flushes): 1 while the model is the best or the evidence is thin, near 0 when a rule beat
    it block after block. Mixed on the log-odds scale, a confident model keeps its call."""
    k = S.shape[1]
    out = np.zeros(k)
    out[0] = 1.0
    if k == 1 or not len(is_long):
        return out, 1.0
    correct = ((S >= 0) == (is_long[:, None] == 1)).astype("float64")
    codes = pd.factorize(blocks)[0]
    counts = np.bincount(codes).astype("float64")
    hits = np.column_stack([np.bincount(codes, weights=c) for c in correct.T])
    per_block = hits / counts[:, None]
    a = float(plausibility(per_block, counts)[0])
    best = 1 + int(np.argmax(counts @ per_block[:, 1:]))
    out[0], out[best] = a, 1.0 - a
    return out, a


def input_log_odds(
    model: GradientBoosting | None, rules: Sequence[DirectionRule], X: np.ndarray
) -> dict[str, np.ndarray]:
    """Each input's log-odds of a long flush on `X`: the trees' (0 without trees) and each
    rule's. One home for the walk-forward's out-of-fold inputs and a shipped call's."""
    trees = np.zeros(len(X)) if model is None else model.score(X)
    return {MODEL: trees, **{r.name: r.score(X) for r in rules}}


def call_log_odds(weights: dict[str, float], inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The call's log-odds of a long flush: Σ weight · input log-odds (inputs of weight 0 are
    not read). One home for the walk-forward's pass 2 and a shipped call."""
    z = np.zeros(len(inputs[MODEL]))
    for name, w in weights.items():
        if w:
            z = z + w * inputs[name]
    return z


def made_of(weights: dict[str, float]) -> str:
    """`model 0.81 + return_24h_sign 0.42`: what a call is made of ("" with no weight), as the
    CLI and the report print it."""
    return " + ".join(f"{name} {w:.2f}" for name, w in weights.items() if w > 0)


class DirectionCall:
    """P(long flush | flush) as sigmoid(Σ weight · input log-odds): trees and rules."""

    kind = "direction_call"

    def __init__(
        self,
        model: GradientBoosting | None,
        rules: Sequence[DirectionRule],
        weights: dict[str, float],
    ) -> None:
        names = [MODEL, *(r.name for r in rules)]
        if set(weights) != set(names) or min(weights.values()) < 0:
            raise ValueError(f"a direction call needs one weight >= 0 for each of {names}")
        self.model = model
        self.rules = list(rules)
        self.weights = {n: float(weights[n]) for n in names}

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        """The call's log-odds of a long flush."""
        return call_log_odds(self.weights, input_log_odds(self.model, self.rules, X))

    def state(self) -> dict[str, Any]:
        trees = {} if self.model is None else self.model.state()
        return {
            "kind": self.kind,
            "weights": self.weights,
            "model": trees.get("model"),
            "init": trees.get("init"),
            "rules": [r.state() for r in self.rules],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], columns: Sequence[str]) -> DirectionCall:
        try:
            model = None
            if state.get("model") is not None:
                trees = {"kind": GradientBoosting.kind, "model": state["model"]}
                model = from_state({**trees, "init": state.get("init")}, columns)
            rules = [DirectionRule.from_state(s, columns) for s in state["rules"]]
            weights = {str(k): float(v) for k, v in state["weights"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"direction call state: missing or malformed {exc}") from None
        if not np.isfinite(list(weights.values())).all():
            raise ValueError("a direction call's weight is not finite")
        return cls(model, rules, weights)  # type: ignore[arg-type]


def load_direction(
    state: dict[str, Any], columns: Sequence[str]
) -> GradientBoosting | DirectionCall:
    """A bundle's direction back from its state: the trees alone, or a call stacking them."""
    if state.get("kind") == DirectionCall.kind:
        return DirectionCall.from_state(state, columns)
    model = from_state(state, columns)
    if not isinstance(model, GradientBoosting):
        raise ValueError("a direction model must be LightGBM")
    return model
