"""The champion as a weighted sum of its parts' standardised scores, never a pick of one.

Picking one candidate per fold on a handful of out-of-fold episodes is noisy: the pick flips
from fold to fold, and a fixed candidate beats the per-fold winner (issue 20: daily 72 h,
champion lift 1.71 against the logistic's 1.90). A non-negative logistic stack of the inputs'
standardised scores uses all of them, and with few episodes its weights are shrunk toward equal
weights (an average of z-scores, which is never far from the best part when the parts agree).

- **Non-negative weights.** A part can be ignored, never turned into its opposite: the
  combined score increases with every input, and calibration after it is strictly increasing,
  so no ranking is ever reversed.
- **Shares.** Only the direction of the weight vector matters (a calibrator follows), so the
  weights are reported as shares summing to 1: what the champion is made of.
- **Shrinkage.** `share = a · fitted + (1 - a) · equal` with `a = episodes / (episodes + k)`:
  a stack fitted on five flushes is mostly the equal-weight average.

`Stack` is the deployable form: fitted members, their training-score standardisation and the
shares; its score and its exact contributions are the same weighted sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import erfc

from flushcast.models.learners import Explainer, from_state
from flushcast.models.rules import LiquidationSurprise


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def nonnegative_logistic(
    S: np.ndarray,
    y: np.ndarray,
    ridge: float = 1.0,
    blocks: np.ndarray | None = None,
    *,
    balanced: bool = True,
    intercept: bool = True,
) -> np.ndarray:
    """Weights w >= 0 maximising the log-likelihood of y ~ S·w + b (b free).

    Classes are weighted equally (flushes are rare; the pooled fit would otherwise be all
    intercept), with an L2 `ridge` on w per flush-class weight unit. With `blocks`, b is one
    intercept per block (a conditional fit): w then says how the inputs rank flushes against
    the same block's quiet bars, not which block was busy (a level the calibrator sets).
    `balanced=False` weighs every row alike (the ridge then per row) and `intercept=False`
    drops b: the direction stack's inputs are log-odds themselves, its base rate one of them.
    Returns w only.
    """
    S = np.asarray(S, dtype="float64")
    y = np.asarray(y, dtype="float64")
    n, k = S.shape
    codes = np.zeros(n, dtype=np.int64) if blocks is None else pd.factorize(blocks)[0]
    m = (int(codes.max()) + 1 if n else 1) if intercept else 0
    positives = max(y.sum(), 1.0)
    negatives = max(n - y.sum(), 1.0)
    if balanced:
        sample, unit = np.where(y == 1, 0.5 / positives, 0.5 / negatives), positives
    else:
        sample, unit = np.full(n, 1.0 / max(n, 1)), float(max(n, 1))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:k], theta[k:]
        z = S @ w + (b[codes] if intercept else 0.0)
        nll = np.logaddexp(0.0, z) - y * z  # log(1 + e^z) - y z, stably
        residual = (_sigmoid(z) - y) * sample
        # A tiny ridge keeps a block without a flush from sending its intercept to -inf.
        value = np.sum(sample * nll) + 0.5 * (ridge * np.sum(w**2) + 1e-6 * np.sum(b**2)) / unit
        grad_b = (
            np.bincount(codes, weights=residual, minlength=m) + 1e-6 * b / unit if intercept else b
        )
        return float(value), np.r_[S.T @ residual + ridge * w / unit, grad_b]

    start = np.r_[np.full(k, 1.0 / k), np.zeros(m)]
    bounds = [(0.0, None)] * k + [(None, None)] * m
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return np.clip(result.x[:k], 0.0, None)


def shares(
    S: np.ndarray,
    y: np.ndarray,
    episodes: float,
    shrinkage_episodes: float,
    ridge: float = 1.0,
    blocks: np.ndarray | None = None,
    toward: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(shares, fitted shares, weight on the fit): the fit shrunk toward `toward` (shares
    summing to 1; default equal shares).

    With one input, or no flush, or no input with a positive weight, the fit is the target.
    """
    k = S.shape[1]
    target = np.full(k, 1.0 / k) if toward is None else np.asarray(toward, dtype="float64")
    if k == 1 or not 0 < np.sum(y) < len(y):
        return target, target, 0.0
    w = nonnegative_logistic(S, y, ridge, blocks)
    fitted = w / w.sum() if w.sum() > 1e-12 else target
    a = episodes / (episodes + shrinkage_episodes) if shrinkage_episodes > 0 else 1.0
    return a * fitted + (1 - a) * target, fitted, float(a)


def plausibility(per_block: np.ndarray, events: np.ndarray) -> np.ndarray:
    """How plausible it is that each input (a column of `per_block`: its ranking metric in each
    block, rows = blocks) ranks within blocks as well as the best input: 2Φ(-z), z its
    event-weighted mean deficit to the best over the blocks where every input is defined,
    divided by that mean's standard error (paired: the inputs share blocks and rows).

    1 for the best input; near 1 for every input when the blocks are few or the inputs tie
    (no evidence); near 0 for an input that ranks worse block after block (ample evidence).
    Blocks weigh by their flush count, as in `training.metrics.within_blocks`.
    """
    values = np.asarray(per_block, dtype="float64")
    k = values.shape[1]
    keep = np.isfinite(values).all(axis=1)
    values, w = values[keep], np.asarray(events, dtype="float64")[keep]
    if len(values) < 2 or w.sum() <= 0:
        return np.ones(k)
    w = w / w.sum()
    best = int(np.argmax(w @ values))
    deficit = values[:, [best]] - values
    mean = w @ deficit
    se = np.sqrt(np.sum((w[:, None] * (deficit - mean)) ** 2, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 1e-12, mean / se, np.where(mean > 1e-12, np.inf, 0.0))
    return np.minimum(1.0, erfc(np.maximum(z, 0.0) / np.sqrt(2.0)))


class Stack:
    """Deployable combined champion: Σ share_i · (score_i - loc_i) / scale_i over its members."""

    kind = "stack"

    def __init__(
        self,
        names: Sequence[str],
        members: Sequence[Explainer],
        shares: Sequence[float],
        loc: Sequence[float],
        scale: Sequence[float],
    ) -> None:
        if not len(names) == len(members) == len(shares) == len(loc) == len(scale) > 0:
            raise ValueError("a stack needs one name, member, share, loc and scale per input")
        if min(shares) < 0 or min(scale) <= 0:
            raise ValueError("a stack's shares must be >= 0 and its scales > 0")
        self.names = list(names)
        self.members = list(members)
        self.shares = np.asarray(shares, dtype="float64")
        self.loc = np.asarray(loc, dtype="float64")
        self.scale = np.asarray(scale, dtype="float64")
        self._terms = list(
            zip(
                self.members,
                self.shares.tolist(),
                self.loc.tolist(),
                self.scale.tolist(),
                strict=True,
            )
        )
        """Each member with its share, loc and scale as Python floats: the same double
        arithmetic as numpy scalars, without their overhead on a served row's one-element
        arrays."""

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        out = np.zeros(len(X))
        for m, share, loc, scale in self._terms:
            out += share * (m.score(X) - loc) / scale
        return out

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """The members' exact contributions, weighted alike; the locs go to the base value."""
        out: np.ndarray | None = None
        for m, share, loc, scale in self._terms:
            part = m.contributions(X) * (share / scale)
            part[:, -1] -= share * loc / scale
            out = part if out is None else out + part
        assert out is not None
        return out

    def composition(self) -> dict[str, float]:
        """Each input's share of the champion (sums to 1)."""
        return {n: float(s) for n, s in zip(self.names, self.shares, strict=True)}

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "names": self.names,
            "shares": self.shares.tolist(),
            "loc": self.loc.tolist(),
            "scale": self.scale.tolist(),
            "members": [m.state() for m in self.members],
        }


def load_learner(state: dict[str, Any], columns: Sequence[str]) -> Any:
    """Any deployable scorer back from its state: a learner, a rule or a stack of them."""
    kind = state.get("kind")
    if kind == Stack.kind:
        members = [load_learner(s, columns) for s in state["members"]]
        return Stack(state["names"], members, state["shares"], state["loc"], state["scale"])
    if kind == LiquidationSurprise.kind:
        return LiquidationSurprise.from_state(state, columns)
    return from_state(state, columns)
