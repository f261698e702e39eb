"""Aggregating finer source bars (5 min, 1 h) into the coarser bar a series is stored at.

A bar is built only from a complete set of sub-bars: an hour with a missing 5-minute bar would
understate its volume and liquidations and might miss its true high, so it becomes a reported
gap instead of an invented value. Bars are never split: a 4-hour source cannot become hourly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError
from flushcast.marketdata.schema import AGGREGATION, BAR, bar_name

LINE = "line"
"""Optional column of a source's rows: the 1-based line (or record) of the file it came from.
A resampled bar keeps the line of its first sub-bar, so errors still point into the file."""


def infer_bar(timestamps: pd.Series, *, file: str | None = None) -> pd.Timedelta:
    """The source's bar size: the most common spacing between consecutive distinct timestamps."""
    us = pd.DatetimeIndex(timestamps).as_unit("us").asi8
    us = np.sort(us[us != np.iinfo(np.int64).min])  # NaT dropped
    steps = np.diff(us)
    steps = steps[steps > 0]
    if not len(steps):
        return BAR
    values, counts = np.unique(steps, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), "us")


def to_bar(
    data: pd.DataFrame,
    *,
    bar: pd.Timedelta = BAR,
    source_bar: pd.Timedelta | None = None,
    file: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """Aggregate one source's rows (`timestamp` + value columns [+ `line`]) to `bar`.

    `source_bar` is the source's own bar when it is declared (else inferred from the spacing).
    Returns the aggregated rows and how many incomplete target bars were dropped. Rows already at
    `bar` pass through unchanged.
    """
    if source_bar is None:
        source_bar = infer_bar(data["timestamp"], file=file)
    if source_bar == bar:
        return data, 0
    if source_bar > bar:
        raise DataError(
            f"the source's {bar_name(source_bar)} bars cannot be aggregated into {bar_name(bar)} "
            "bars: bars are never split into finer ones (store the series at "
            f"{bar_name(source_bar)} or coarser)",
            file=file,
            column="timestamp",
        )
    if bar % source_bar != pd.Timedelta(0):
        raise DataError(
            f"the source's {bar_name(source_bar)} bars cannot be aggregated into "
            f"{bar_name(bar)} bars (it must be a whole fraction of it)",
            file=file,
            column="timestamp",
        )
    per_bar = int(bar / source_bar)
    values = [c for c in data.columns if c not in ("timestamp", LINE)]
    unknown = [c for c in values if c not in AGGREGATION]
    if unknown:
        raise DataError(
            f"no aggregation rule for column(s) {unknown}", file=file, column=unknown[0]
        )
    rules = {c: AGGREGATION[c] for c in values}
    if LINE in data.columns:
        rules[LINE] = "first"
    bucket = data["timestamp"].dt.floor(bar)
    grouped = data.groupby(bucket, sort=True)
    out = grouped.agg(rules)
    # `first`/`last` skip NaN in pandas; an all-NaN column must stay NaN, which they do.
    complete = grouped.size().to_numpy() == per_bar
    out = out[complete].rename_axis("timestamp").reset_index()
    return out, int((~complete).sum())
