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
