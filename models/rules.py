"""Rules a champion may combine with its learners: fixed formulas on one input, no fit.

They live here, below `training`, because a combined champion (`models.stacking`) can carry one
into a bundle, and a bundle is rebuilt from plain numbers without importing training code.
`training.baselines` scores the same class as a baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SURPRISE_PREFIX = "liq_surprise_"


class LiquidationSurprise:
    """Recent liquidations over their own trailing median: flushes come in clusters.

    Uses the surprise feature whose window is nearest the horizon; unknown values score as
    "usual" (a ratio of 1). Its score is its own exact reason: all of it on that one column.
    """

    kind = "liquidation_surprise"

    def __init__(self, columns: Sequence[str], horizon_hours: float) -> None:
        windows = {
            int(c.removeprefix(SURPRISE_PREFIX).removesuffix("h")): i
            for i, c in enumerate(columns)
            if c.startswith(SURPRISE_PREFIX) and c.endswith("h")
        }
        if not windows:
            raise KeyError("the liquidation-surprise rule needs a liq_surprise_<H>h feature")
        nearest = min(windows, key=lambda w: (abs(np.log(w / horizon_hours)), w))
        self.columns = list(columns)
        self.column = windows[nearest]

    def fit(self, X: np.ndarray, y: np.ndarray, t: np.ndarray | None = None) -> LiquidationSurprise:
        return self

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        ratio = X[:, self.column]
        return np.log(np.where(np.isfinite(ratio), ratio, 1.0) + 1e-3)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """The whole score on the surprise column; a zero base value."""
        out = np.zeros((len(X), len(self.columns) + 1))
        out[:, self.column] = self.score(X)
        return out

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "column": self.columns[self.column]}

    @classmethod
    def from_state(cls, state: dict[str, Any], columns: Sequence[str]) -> LiquidationSurprise:
        name = str(state["column"])
        if name not in columns or not name.startswith(SURPRISE_PREFIX):
            raise ValueError(f"liquidation-surprise rule on unknown column {name!r}")
        hours = float(name.removeprefix(SURPRISE_PREFIX).removesuffix("h"))
        rule = cls(columns, hours)
        rule.column = list(columns).index(name)
        return rule


DIRECTION_RULES: dict[str, str | None] = {
    "majority": None,
    "funding_sign": "funding_bp",
    "return_24h_sign": "return_24h",
}
"""The trivial direction rules and the feature whose sign each reads (majority: none)."""


TIE = 1e-9
"""A sign rule's log-odds when its sign was right exactly half the time: no evidence, but
the call keeps following the sign (as the rule is defined)."""


def _log_odds(hits: float, n: float) -> float:
    """Log-odds of a rate with one pseudo-count per side: finite on a handful of flushes."""
    return float(np.log((hits + 1.0) / (n - hits + 1.0)))


class DirectionRule:
    """A trivial direction rule that learns only its orientation from one-sided flushes.

    majority (no column): the training flushes' long share. A sign rule calls the side that the
    sign of its column went with more often among those flushes (positive funding: crowded
    longs flushed, or not); where the column is missing or zero it falls back to the majority.
    Its score is the log-odds of a long flush it stands for: for a sign, that of its own hit
    rate on the training flushes (so a rule right 55 % of the time says little), for the
    majority that of the long share. Its call, sigmoid(score), is on the same side as the
    rule's bare call, so its accuracy is the rule's; a direction stack (`models.direction`)
    reads the scores as inputs.
    """

    kind = "direction_rule"

    def __init__(self, name: str, columns: Sequence[str]) -> None:
        if name not in DIRECTION_RULES:
            raise ValueError(f"unknown direction rule {name!r}")
        self.name = name
        self.columns = list(columns)
        column = DIRECTION_RULES[name]
        self.column = self.columns.index(column) if column in self.columns else None
        self.prior = 0.0
        """Log-odds of a long flush among the training flushes (the majority's)."""
        self.signed = 0.0
        """Log-odds of the sign rule's call being right, times its orientation (+: a positive
        value calls a long flush)."""

    @property
    def usable(self) -> bool:
        """Whether the rule reads what it needs (a sign rule without its column scores NaN)."""
        return DIRECTION_RULES[self.name] is None or self.column is not None

    def fit(self, X: np.ndarray, is_long: np.ndarray) -> DirectionRule:
        """Learn the orientation from one-sided flush rows (`is_long`: 1.0 for a long flush)."""
        n = len(is_long)
        self.prior = _log_odds(float(np.sum(is_long)), n) if n else 0.0
        if self.column is not None:
            sign = np.sign(np.nan_to_num(X[:, self.column]))
            known = sign != 0
            hits = float(np.sum((sign[known] > 0) == (is_long[known] == 1)))
            count = int(known.sum())
            # Oriented the way it was right at least half the time; a tie (or no known sign)
            # reads the sign as is, with a log-odds just above 0 so that its call still
            # follows the sign.
            if count and 2 * hits < count:
                self.signed = -_log_odds(count - hits, count)
            else:
                self.signed = max(_log_odds(hits, count) if count else 0.0, TIE)
        return self

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        """Log-odds of a long flush given a flush, per row."""
        if DIRECTION_RULES[self.name] is None:
            return np.full(len(X), self.prior)
        if self.column is None:
            return np.full(len(X), np.nan)
        sign = np.sign(np.nan_to_num(X[:, self.column]))
        return np.where(sign == 0, self.prior, sign * self.signed)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "prior": self.prior, "signed": self.signed}

    @classmethod
    def from_state(cls, state: dict[str, Any], columns: Sequence[str]) -> DirectionRule:
        rule = cls(str(state["name"]), columns)
        if not rule.usable:
            raise ValueError(f"direction rule {rule.name!r} needs a column the bundle lacks")
        rule.prior, rule.signed = float(state["prior"]), float(state["signed"])
        if not np.isfinite([rule.prior, rule.signed]).all():
            raise ValueError(f"direction rule {rule.name!r}: a log-odds is not finite")
        return rule
