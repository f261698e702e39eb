"""Purged, embargoed, expanding walk-forward splits over pooled multi-symbol rows.

A label at bar t looks at t+1 … t+H, so a training row within H bars of a test block has already
"seen" part of the test period: those rows are purged, and an embargo of at least H further bars
keeps serially correlated features from leaking across the boundary. The same rule separates the
fit rows from the time-ordered validation tail used for early stopping and calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketdata.schema import BAR


@dataclass(frozen=True)
class SplitSpec:
    """Walk-forward parameters, all in bars (hours); recorded with each run.

    `embargo=None` means `horizon`. A test block is `retrain_every` bars: the model is retrained
    before each block on everything that ends, purge and embargo included, before it.
    `validation_fraction` of the training span (in bars) is held back, in time order, as the
    validation tail; 0 disables it.
    """

    horizon: int
    retrain_every: int = 168
    min_train: int = 720
    embargo: int | None = None
    validation_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.retrain_every < 1 or self.min_train < 1:
            raise ValueError("horizon, retrain_every and min_train must be at least one bar")
        if self.embargo is not None and self.embargo < self.horizon:
            raise ValueError(f"embargo must be at least the horizon ({self.horizon} bars)")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in [0, 1)")

    @property
    def gap(self) -> int:
        """Bars between the last usable training row and the first bar it must not see."""
        return self.horizon + (self.horizon if self.embargo is None else self.embargo)


@dataclass(frozen=True)
class Fold:
    """One retraining: row positions (in time order) into the array given to `walk_forward`."""

    number: int
    fit: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    """Exclusive: the test block is [test_start, test_end)."""

    @property
    def train(self) -> np.ndarray:
        """Fit and validation rows together (everything the fold may learn from)."""
        return np.concatenate([self.fit, self.validation])


def _bar_numbers(
    timestamps: pd.Series | pd.DatetimeIndex | np.ndarray,
) -> tuple[np.ndarray, pd.Timestamp]:
    stamps = pd.DatetimeIndex(timestamps)
    if len(stamps) == 0:
        raise ValueError("no rows to split")
    if stamps.hasnans:
        raise ValueError("timestamps must not be missing")
    origin = stamps.min()
    offsets = stamps - origin
    if np.any(offsets % BAR != pd.Timedelta(0)):
        raise ValueError("timestamps must be on the bar grid")
    return np.asarray(offsets // BAR, dtype=np.int64), origin


def walk_forward(
    timestamps: pd.Series | pd.DatetimeIndex | np.ndarray, spec: SplitSpec
) -> list[Fold]:
    """Expanding-window folds over rows keyed by bar-open timestamp (symbols pooled).

    Row t may train for a test block starting at bar s only if t + gap < s, i.e. its label window
    t+1 … t+H ends `embargo` bars before s. Test blocks tile the time after `min_train` bars.
    Blocks with no rows, or with nothing to fit on before them, are skipped (so the result can be
    empty when the data is short).
    """
    bars, origin = _bar_numbers(timestamps)
    order = np.argsort(bars, kind="stable")
    sorted_bars = bars[order]
    last = int(sorted_bars[-1])

    def rows(lo: int, hi: int) -> np.ndarray:
        """Positions of rows with lo <= bar < hi, in time order."""
        a, b = np.searchsorted(sorted_bars, [lo, hi], side="left")
        return order[a:b]

    folds: list[Fold] = []
    for start in range(spec.min_train, last + 1, spec.retrain_every):
        end = min(start + spec.retrain_every, last + 1)
        train_end = start - spec.gap  # exclusive
        if train_end <= 0:
            continue
        n_val = int(np.ceil(train_end * spec.validation_fraction))
        val_start = train_end - n_val
        fit_end = val_start - spec.gap if n_val else train_end
        fit, test = rows(0, max(fit_end, 0)), rows(start, end)
        if len(fit) == 0 or len(test) == 0:
            continue  # nothing to learn from yet, or a hole in the data: no fold to evaluate
        folds.append(
            Fold(
                number=len(folds),
                fit=fit,
                validation=rows(val_start, train_end) if n_val else rows(0, 0),
                test=test,
                test_start=origin + start * BAR,
                test_end=origin + end * BAR,
            )
        )
    return folds


def final_split(
    timestamps: pd.Series | pd.DatetimeIndex | np.ndarray, spec: SplitSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Fit and validation rows for the model trained on everything (`flushcast train`).

    The same rule as a walk-forward fold whose test block starts after the last bar: the last
    `validation_fraction` of the span is the validation tail (early stopping, calibration) and
    fit rows end a purge-and-embargo gap before it.
    """
    bars, _ = _bar_numbers(timestamps)
    end = int(bars.max()) + 1
    n_val = int(np.ceil(end * spec.validation_fraction))
    val_start = end - n_val
    fit_end = val_start - spec.gap if n_val else end
    fit = np.flatnonzero(bars < fit_end)
    validation = np.flatnonzero(bars >= val_start) if n_val else np.array([], dtype=np.int64)
    if len(fit) == 0:
        raise ValueError("too little data: no fit rows before the validation tail")
    return fit[np.argsort(bars[fit], kind="stable")], validation[
        np.argsort(bars[validation], kind="stable")
    ]
