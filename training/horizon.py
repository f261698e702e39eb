"""One horizon's labelled rows as the walk-forward and `train` read them: keys, model matrix,
targets, episode starts and which rows are tested, in time order."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from flushcast.models.matrix import columns as model_columns
from flushcast.models.matrix import model_matrix
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import Dataset
from flushcast.training.labels import (
    DIRECTIONS,
    LONG_FLUSH,
    SHORT_SQUEEZE,
    direction_column,
    flush_column,
    move_ratio_column,
    move_side_column,
)
from flushcast.training.splits import Fold, WalkForward


@dataclass
class HorizonData:
    """One horizon's labelled rows in time order, their model matrix and targets."""

    horizon: int
    keys: pd.DataFrame
    """`timestamp`, `symbol`, `venue` of each row."""
    X: np.ndarray
    y: np.ndarray
    direction: np.ndarray
    columns: list[str]
    symbols: list[str]
    episode_start: np.ndarray
    """True on the first bar of each flush episode (a run of flush bars of one series)."""
    tested: np.ndarray
    """True on rows the walk-forward scores (False: a training-only store's series)."""
    bar: pd.Timedelta
    """The folds' time grid: the finest bar of any row (`Dataset.split_bar`)."""
    move_side: np.ndarray | None = None
    """Each row's move side (`training.labels`: the direction label's rule on every window,
    flush or not) as its code in `DIRECTIONS` (-1: none), one byte a row (the rows travel to
    every worker); None: not made (rows cached before it existed)."""
    move_ratio: np.ndarray | None = None
    """Each row's forward move over the move a flush needs (k·σ·√H)."""
    _folds: dict[WalkForward, list[Fold]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __getstate__(self) -> dict[str, Any]:
        """What travels to a worker: the rows, not the folds made of them (see `folds`)."""
        return {**self.__dict__, "_folds": {}}

    @cached_property
    def t(self) -> np.ndarray:
        """Each row's bar-open time (computed once: every refit and every fold reads it)."""
        return self.keys["timestamp"].to_numpy(dtype="datetime64[us]")

    def sided(self) -> tuple[np.ndarray, np.ndarray]:
        """(one-sided flush mask, 1.0 for a long flush); computed once (comparing every row's
        direction string cost every fold 20 ms)."""
        return self._sided

    @cached_property
    def _sided(self) -> tuple[np.ndarray, np.ndarray]:
        sided = (self.direction == LONG_FLUSH) | (self.direction == SHORT_SQUEEZE)
        return sided, (self.direction == LONG_FLUSH).astype("float64")

    def moved(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(mask of the quiet rows whose forward move was one-sided and at least `threshold`
        times the move a flush needs, 1.0 where that side was the longs'): the direction
        model's extra rows (`fit.direction.move_weight`)."""
        quiet, is_long = self._moves
        with np.errstate(invalid="ignore"):
            return quiet & (self.move_ratio >= threshold), is_long

    @cached_property
    def _moves(self) -> tuple[np.ndarray, np.ndarray]:
        if self.move_side is None or self.move_ratio is None:
            raise ValueError("these rows carry no move labels (made before they existed)")
        long, short = DIRECTIONS.index(LONG_FLUSH), DIRECTIONS.index(SHORT_SQUEEZE)
        one_sided = (self.move_side == long) | (self.move_side == short)
        return one_sided & (self.y == 0), (self.move_side == long).astype("float64")

    def folds(self, config: TrainingConfig) -> list[Fold]:
        """The walk-forward folds of these rows (test rows only where `tested`), made once per
        walk-forward setting wherever the rows are.

        A fold's training rows are a slice of one array of positions, so the folds of one copy
        of the rows cost one row's worth of positions; sent with the rows, each fold's slice
        travelled, and was kept, as its own array: three quarters of the matrix's size at 97
        folds and 68 inputs. So the rows travel alone and each worker makes the folds."""
        setting = config.walk_forward
        if setting not in self._folds:
            self._folds[setting] = setting.folds(
                self.keys["timestamp"], self.horizon, self.bar, tested=self.tested
            )
        return self._folds[setting]


def horizon_data(dataset: Dataset, horizon: int) -> HorizonData:
    """The labelled rows at `horizon`, sorted by time then symbol and venue.

    Each column is taken from the table at the rows' positions straight into its array: the
    matrix is the only copy of the feature values made (copying the labelled rows first, every
    column of the table, more than doubled a large store's peak)."""
    table, rows = dataset.table, dataset.labelled_rows(horizon)
    features, symbols = dataset.features, dataset.symbols()
    keys = table[["timestamp", "symbol", "venue"]].take(rows).reset_index(drop=True)
    y = table[flush_column(horizon)].to_numpy(dtype="float64")[rows]
    return HorizonData(
        horizon=horizon,
        keys=keys,
        X=model_matrix(table, features, symbols, rows=rows),
        y=y,
        direction=table[direction_column(horizon)].astype(object).to_numpy()[rows],
        move_side=side_codes(table[move_side_column(horizon)].to_numpy()[rows]),
        move_ratio=table[move_ratio_column(horizon)].to_numpy(dtype="float64")[rows],
        columns=model_columns(features),
        symbols=list(symbols),
        episode_start=episode_starts(keys, y, dataset.bar),
        tested=dataset.tested(keys),
        bar=dataset.split_bar,
    )


def side_codes(sides: np.ndarray) -> np.ndarray:
    """Each side's code in `DIRECTIONS` (int8; -1 where there is none)."""
    return pd.Categorical(sides, categories=list(DIRECTIONS)).codes.astype(np.int8)


def episode_starts(keys: pd.DataFrame, y: np.ndarray, bar: pd.Timedelta) -> np.ndarray:
    """True where a flush bar follows a bar of the same series that was not one (or a gap)."""
    series = keys["symbol"].astype(str) + "@" + keys["venue"].astype(str)
    stamps = pd.DatetimeIndex(keys["timestamp"])
    order = np.lexsort((stamps.asi8, pd.factorize(series)[0]))
    same = np.r_[False, series.to_numpy()[order][1:] == series.to_numpy()[order][:-1]]
    step = np.r_[0, np.diff(stamps.asi8[order])]
    follows = same & (step == bar // pd.Timedelta("1us"))
    positive = y[order] == 1
    start_sorted = positive & ~(follows & np.r_[False, positive[:-1]])
    out = np.zeros(len(y), dtype=bool)
    out[order] = start_sorted
    return out
