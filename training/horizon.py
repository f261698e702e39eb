"""One horizon's labelled rows as the walk-forward and `train` read them: keys, model matrix,
targets, episode starts and which rows are tested, in time order."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from flushcast.models.matrix import columns as model_columns
from flushcast.models.matrix import model_matrix
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import Dataset
from flushcast.training.labels import LONG_FLUSH, SHORT_SQUEEZE, direction_column, flush_column
from flushcast.training.splits import Fold


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

    def folds(self, config: TrainingConfig) -> list[Fold]:
        """The walk-forward folds of these rows (test rows only where `tested`)."""
        return config.walk_forward.folds(
            self.keys["timestamp"], self.horizon, self.bar, tested=self.tested
        )


def horizon_data(dataset: Dataset, horizon: int) -> HorizonData:
    """The labelled rows at `horizon`, sorted by time then symbol and venue."""
    rows = dataset.labelled(horizon)
    features, symbols = dataset.features, dataset.symbols()
    y = rows[flush_column(horizon)].to_numpy(dtype="float64")
    return HorizonData(
        horizon=horizon,
        keys=rows[["timestamp", "symbol", "venue"]],
        X=model_matrix(rows, features, symbols),
        y=y,
        direction=rows[direction_column(horizon)].astype(object).to_numpy(),
        columns=model_columns(features),
        symbols=list(symbols),
        episode_start=episode_starts(rows, y, dataset.bar),
        tested=dataset.tested(rows),
        bar=dataset.split_bar,
    )


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
