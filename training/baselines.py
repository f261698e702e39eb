"""The simple baselines every evaluation runs on the same folds as the candidate models.

A model is only worth its complexity if it beats what a careful skeptic would try first: the
base rate (climatology), alerts at random times (placebo), a transparent stress score a trader
could compute by hand (heuristic), trailing volatility alone (the flush label asks for a move
of a few σ, so volatility says much by itself), the trailing liquidation surprise (flushes
cluster), and a compact logistic regression on price, volatility and funding (the kind of
recipe published for this problem). Each follows `models.learners.Learner`: fitted on a fold's
training rows only, returning a real-valued risk score that the fold's calibrator turns into a
probability. None of them can be inverted by calibration (its slope is positive by
construction), so the heuristic is always scored as the rule it states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from flushcast.models.learners import Learner, Logistic
from flushcast.models.matrix import SYMBOL
from flushcast.models.rules import LiquidationSurprise

HOUR = np.timedelta64(1, "h")

HEURISTIC_GAUGES = {"funding": "funding_z_30d", "leverage": "oi_z_30d", "calm": "rv_ratio_24h_168h"}
"""The heuristic's gauges: |funding z| (crowding either way), OI build-up, and a quiet market
(a low short/long volatility ratio ranks as more stressed)."""
VOLATILITY = ("rv_24h_pct", "rv_72h_pct", "rv_168h_pct")
COMPACT = (
    "rv_24h_pct",
    "rv_72h_pct",
    "rv_168h_pct",
    "rv_ratio_24h_168h",
    "atr_24h_pct",
    "bb_width_pctile_30d",
    "range_compression_24h_168h",
    "hours_since_large_move",
    "return_4h",
    "return_24h",
    "dist_high_7d",
    "dist_low_7d",
    "funding_bp",
    "funding_z_30d",
    "funding_change_24h",
)
"""Fifteen price, volatility and funding features: no OI, no liquidations, no heatmap."""


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _times(t: np.ndarray | None, n: int, name: str) -> np.ndarray:
    if t is None or len(t) != n:
        raise ValueError(f"the {name} baseline needs each row's bar time (t)")
    return np.asarray(t, dtype="datetime64[us]")


class Climatology:
    """The trailing flush rate of the training rows (all symbols): knows only the past rate.

    Its score is already a probability (calibrated as the identity) and is the reference of
    every Brier skill score.
    """

    kind = "climatology"
    calibrated = False

    def __init__(self, window_hours: float | None = 2160) -> None:
        self.window_hours = window_hours
        self.rate = float("nan")

    def fit(self, X: np.ndarray, y: np.ndarray, t: np.ndarray | None = None) -> Climatology:
        y = np.asarray(y, dtype="float64")
        if self.window_hours is not None:
            times = _times(t, len(y), self.kind)
            y = y[times > times.max() - self.window_hours * HOUR]
        self.rate = float(y.mean())
        return self

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        return np.full(len(X), self.rate)


class Placebo:
    """A random score per bar, shared by the symbols at that bar: alerts at random times.

    Its ranking metrics are what chance earns (within a fold its ROC is 0.5 in expectation);
    calibrated, its probabilities sit at the training base rate.
    """

    kind = "placebo"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray, t: np.ndarray | None = None) -> Placebo:
        return self

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        times = _times(t, len(X), self.kind).astype("int64")
        uniques, codes = np.unique(times, return_inverse=True)
        draws = np.random.default_rng([self.seed, len(uniques)]).random(len(uniques))
        return _logit(draws[codes])


class Heuristic:
    """The mean percentile of three stress gauges against the training rows; no label is used.

    A missing gauge ranks in the middle. A gauge the bar size does not build (the 24 h / 168 h
    volatility ratio on daily bars, `features.registry.missing_at`) is left out, which ranks
    the rows as a gauge missing everywhere would. The rule's direction is fixed: calibration
    can only say how much it is worth, never turn it into its opposite.
    """

    kind = "heuristic"

    def __init__(self, columns: Sequence[str], gauges: dict[str, str] = HEURISTIC_GAUGES) -> None:
        present = {name: col for name, col in gauges.items() if col in columns}
        if not present:
            raise KeyError(f"heuristic needs one of the feature columns {list(gauges.values())}")
        self.index = {name: list(columns).index(col) for name, col in present.items()}
        self.reference: dict[str, np.ndarray] = {}

    def _gauges(self, X: np.ndarray) -> dict[str, np.ndarray]:
        values = {name: X[:, i] for name, i in self.index.items()}
        if "funding" in values:
            values["funding"] = np.abs(values["funding"])
        if "calm" in values:
            values["calm"] = -values["calm"]
        return values

    def fit(self, X: np.ndarray, y: np.ndarray, t: np.ndarray | None = None) -> Heuristic:
        self.reference = {name: np.sort(v[np.isfinite(v)]) for name, v in self._gauges(X).items()}
        return self

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        ranks = []
        for name, values in self._gauges(X).items():
            reference = self.reference[name]
            rank = np.searchsorted(reference, values, side="right") / max(len(reference), 1)
            ranks.append(np.where(np.isfinite(values), rank, 0.5))
        # Rounded: equal mean percentiles summed in another order must stay one tie.
        return _logit(np.round(np.mean(ranks, axis=0), 12))


BaselineFactory = Callable[[Sequence[str], float, int], Learner]
"""(model columns, horizon in hours, fold number) -> an unfitted baseline."""


def _subset(columns: Sequence[str], wanted: Sequence[str]) -> list[str]:
    return [c for c in wanted if c in columns and c != SYMBOL]


BASELINES: dict[str, BaselineFactory] = {
    "climatology": lambda columns, h, fold: Climatology(),
    "placebo": lambda columns, h, fold: Placebo(seed=fold),
    "heuristic": lambda columns, h, fold: Heuristic(columns),
    "volatility": lambda columns, h, fold: Logistic(columns, _subset(columns, VOLATILITY), C=1.0),
    "liquidation_surprise": lambda columns, h, fold: LiquidationSurprise(columns, h),
    "compact_logistic": lambda columns, h, fold: Logistic(
        columns, _subset(columns, COMPACT), C=1.0
    ),
}
"""Every baseline by its name in the evaluation JSON."""


def is_calibrated(model: Any) -> bool:
    """Whether a learner's score needs the fold's calibrator (climatology's does not)."""
    return getattr(model, "calibrated", True)
