"""The one entry point for features: batch training and the live endpoint both call this.

`build_features` lays each (symbol, venue) series on its full bar grid, runs every family on
it, keeps the rows the input had, then adds the cross-series features (funding spread across
venues, BTC context, market breadth, each symbol against the others). `build_latest` is the
same computation on a lookback window, returning only each series' last bar, so serving cannot
drift from training.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import nullcontext
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError
from flushcast.common.progress import ticker
from flushcast.features import breadth, context, demean, funding, heatmap, relative
from flushcast.features.grid import to_grid
from flushcast.features.registry import FAMILIES, FEATURES, missing_at, names
from flushcast.marketdata.schema import BAR, COLUMNS, conform
from flushcast.marketdata.validate import validate

if TYPE_CHECKING:
    from flushcast.common.engine import Engine

SORT_KEYS = ["symbol", "venue", "timestamp"]
"""Feature tables are sorted series by series (the store's order), not by time."""


def _canonical(frame: pd.DataFrame, bar: pd.Timedelta) -> pd.DataFrame:
    missing = [
        c
        for c in ("timestamp", "symbol", "venue", "open", "high", "low", "close")
        if c not in frame.columns
    ]
    if missing:
        raise DataError(f"not a market frame: missing column(s) {missing}", column=missing[0])
    if list(frame.columns) != list(COLUMNS):
        frame = conform(frame)
    frame = frame.sort_values(SORT_KEYS, kind="stable").reset_index(drop=True)
    validate(frame, bar=bar)
    return frame


def build_features(
    frame: pd.DataFrame,
    *,
    bar: pd.Timedelta = BAR,
    config: heatmap.HeatmapConfig = heatmap.DEFAULT_CONFIG,
    show_progress: bool = False,
    runner: Engine | None = None,
    needed: Collection[str] | None = None,
) -> pd.DataFrame:
    """Feature table: one row per (symbol, venue, timestamp) of `frame`, sorted that way.

    `frame` is a canonical market frame (any number of symbols and venues, gaps allowed). Each
    series is one task on `runner` (default: in this process; the service's windows are small).
    Columns: `timestamp`, `symbol` and `venue` (category), then `registry.names()` (float64;
    NaN where inputs are missing or the history is too short, and in every row of the features
    that do not exist at this bar size, `registry.missing_at(bar)`). Raises DataError on a
    frame that fails validation.

    `needed` (the service passes its model's features) lets the market-breadth, relative and
    demean families be left out (their columns NaN) when no needed feature is one of their own:
    nothing else reads those columns, and on a request's window breadth is about a third of the
    build.
    """

    def wanted(family: str) -> bool:
        return needed is None or any(
            name in FEATURES and FEATURES[name].family == family for name in needed
        )

    frame = _canonical(frame, bar)
    series = [part for _, part in frame.groupby(["symbol", "venue"], observed=True, sort=True)]
    calls = [(part, bar, config, wanted(demean.FAMILY)) for part in series]
    columns = names()
    # Each series' part is copied into the table's values as it comes and let go: gathering
    # every part, then concatenating them, held every value twice (the peak of a large store's
    # feature build, README "On a cluster"); the table is `values` itself, not a copy.
    values = np.empty((len(frame), len(columns)))
    parts = (
        runner.each(_series_features, calls)
        if runner is not None
        # the service's path: no engine, no thread-limit switching per request
        else (_series_features(*call) for call in calls)
    )
    done = 0
    with ticker("building features", len(calls)) if show_progress else nullcontext() as tick:
        for part in parts:
            values[done : done + len(part)] = part
            done += len(part)
            del part
            if tick:
                tick()
    table = pd.DataFrame(values, columns=columns, copy=False)
    table.insert(0, "timestamp", frame["timestamp"].array)
    table.insert(1, "symbol", pd.Categorical(frame["symbol"].astype(str)))
    table.insert(2, "venue", pd.Categorical(frame["venue"].astype(str)))
    funding.add_cross_venue_spread(table)
    context.add_btc_context(table)
    for family, add in (
        (breadth.FAMILY, breadth.add_breadth),
        (relative.FAMILY, relative.add_relative),
    ):
        if wanted(family):
            add(table)
    # Last: the cross-series features above read some of these (oi_change_24h on daily bars).
    for name in missing_at(bar):
        table[name] = np.nan
    return table


def _series_features(part: pd.DataFrame, bar: pd.Timedelta, config, demeaned: bool) -> np.ndarray:
    grid = to_grid(part, bar)
    computed: dict[str, np.ndarray] = {}
    for family in FAMILIES:
        if family is heatmap:
            computed.update(heatmap.compute(grid, config))
        else:
            computed.update(family.compute(grid))
    if demeaned:  # after every family: the demeaned columns read the series' own values
        demean.add_demeaned(computed, grid)
    columns = names()
    out = np.full((int(grid.present.sum()), len(columns)), np.nan)
    for i, name in enumerate(columns):
        if name in computed:
            out[:, i] = computed[name][grid.present]
    return out


def build_latest(
    window_frame: pd.DataFrame,
    *,
    bar: pd.Timedelta = BAR,
    config: heatmap.HeatmapConfig = heatmap.DEFAULT_CONFIG,
) -> pd.DataFrame:
    """Features of each (symbol, venue)'s last bar in `window_frame`, one row per series.

    Give it at least `registry.max_lookback(bar)` bars per series ending at the bar to predict;
    the values then equal `build_features` on the full history at that bar.
    """
    table = build_features(window_frame, bar=bar, config=config)
    return (
        table.groupby(["symbol", "venue"], observed=True, sort=True).tail(1).reset_index(drop=True)
    )
