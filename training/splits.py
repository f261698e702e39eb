"""Purged, embargoed, expanding walk-forward splits over pooled multi-symbol rows, in hours.

A label at bar t looks at t+1 … t+H, so a training row within H of a test period has already
"seen" part of it: those rows are purged, and an embargo of at least H more keeps serially
correlated features from leaking across the boundary. Every length is given in hours and turned
into bars of the dataset's bar size, so a split means the same at 1 h, 4 h and daily bars.

Retraining and scoring are separate: a model is refitted every `retrain_every_hours` and
predicts until the next refit (a *fold*); ranking is judged within *test blocks* of
`test_block_hours` (by default one fold), so a week's flushes are ranked against the same
week's quiet bars, not against another regime's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from flushcast.marketdata.schema import BAR
from flushcast.training.labels import bar_text, whole_bars


class WalkForward(BaseModel):
    """Walk-forward parameters in hours; recorded with every run."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    retrain_every_hours: int = Field(168, ge=1)
    test_block_hours: int | None = Field(None, ge=1)
    """Ranking is measured within blocks this long; None: one block per fold."""
    min_train_hours: int = Field(720, ge=1)
    embargo_hours: int | None = Field(None, ge=0)
    """Gap after the purge, at least the horizon; None: the horizon."""

    @model_validator(mode="after")
    def _blocks_hold_whole_folds(self) -> WalkForward:
        block = self.test_block_hours
        if block is not None and block % self.retrain_every_hours:
            raise ValueError("test_block_hours must be a multiple of retrain_every_hours")
        return self

    def gap_bars(self, horizon_hours: int, bar: pd.Timedelta) -> int:
        """Bars between the last usable training row and the first bar it must not see."""
        horizon = whole_bars(horizon_hours, bar, "horizon")
        embargo = self.embargo_hours or 0
        embargo_bars = whole_bars(embargo, bar, "embargo") if embargo else 0
        return horizon + max(embargo_bars, horizon)

    def folds(
        self,
        timestamps: pd.Series | pd.DatetimeIndex | np.ndarray,
        horizon_hours: int,
        bar: pd.Timedelta = BAR,
        tested: np.ndarray | None = None,
    ) -> list[Fold]:
        """Expanding-window folds over rows keyed by bar-open time (symbols pooled).

        Row t may train for a fold starting at bar s only if t + gap < s: its label window
        ends an embargo before s. Folds tile the time after `min_train_hours`; a fold with no
        rows or nothing to train on before it is skipped (so the result can be empty).
        `tested` (one flag per row) limits the test rows and sets where the folds start; every
        row may train.
        """
        bars, origin = bar_numbers(timestamps, bar)
        if tested is not None and tested.any() and bars[tested].min() > 0:
            # Training-only rows older than every tested row: the folds are the tested rows'
            # own (first test block `min_train_hours` after their first bar); the older rows
            # only add to every fold's training span.
            shift = int(bars[tested].min())
            bars, origin = bars - shift, origin + shift * bar
        gap = self.gap_bars(horizon_hours, bar)
        every = whole_bars(self.retrain_every_hours, bar, "retrain every")
        first = whole_bars(self.min_train_hours, bar, "min train")
        block = whole_bars(self.test_block_hours or self.retrain_every_hours, bar, "test block")
        order = np.argsort(bars, kind="stable")
        sorted_bars = bars[order]
        last = int(sorted_bars[-1])

        def rows(lo: int, hi: int) -> np.ndarray:
            a, b = np.searchsorted(sorted_bars, [lo, hi], side="left")
            return order[a:b]

        folds: list[Fold] = []
        for start in range(first, last + 1, every):
            end = min(start + every, last + 1)
            train_end = start - gap
            train, test = rows(int(sorted_bars[0]), train_end), rows(start, end)
            if tested is not None:
                test = test[tested[test]]
            if len(train) == 0 or len(test) == 0:
                continue
            folds.append(
                Fold(
                    number=len(folds),
                    train=train,
                    test=test,
                    block=(start - first) // block,
                    train_end=origin + train_end * bar,
                    test_start=origin + start * bar,
                    test_end=origin + end * bar,
                )
            )
        return folds


@dataclass(frozen=True)
class Fold:
    """One refit: row positions (in time order) into the array given to `WalkForward.folds`."""

    number: int
    train: np.ndarray
    test: np.ndarray
    block: int
    """The test block the fold's rows are ranked in."""
    train_end: pd.Timestamp
    """Exclusive: training rows open before this bar."""
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    """Exclusive: the fold predicts [test_start, test_end)."""


def bar_numbers(
    timestamps: pd.Series | pd.DatetimeIndex | np.ndarray, bar: pd.Timedelta = BAR
) -> tuple[np.ndarray, pd.Timestamp]:
    """Bar index of each timestamp from the first one, checking the bar grid."""
    stamps = pd.DatetimeIndex(timestamps)
    if len(stamps) == 0:
        raise ValueError("no rows to split")
    if stamps.hasnans:
        raise ValueError("timestamps must not be missing")
    origin = stamps.min()
    offsets = stamps - origin
    if np.any(offsets % bar != pd.Timedelta(0)):
        raise ValueError(f"timestamps must be on the {bar_text(bar)} bar grid")
    return np.asarray(offsets // bar, dtype=np.int64), origin
