"""Aggregating finer source bars (5 min, 30 min) into the canonical bar.

A canonical bar is built only from a complete set of sub-bars: an hour with a missing 5-minute
bar would understate its volume and liquidations and might miss its true high, so it becomes a
reported gap instead of an invented value.
"""

from __future__ import annotations

import pandas as pd

from marketdata.errors import DataError
from marketdata.schema import AGGREGATION, BAR


def infer_bar(timestamps: pd.Series, *, file: str | None = None) -> pd.Timedelta:
    """The source's bar size: the most common spacing between consecutive distinct timestamps."""
    ts = pd.Series(timestamps.unique()).sort_values()
    steps = ts.diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        return BAR
    bar = steps.mode().iloc[0]
    if bar <= pd.Timedelta(0):
        raise DataError(
            "cannot infer the bar size from the timestamps", file=file, column="timestamp"
        )
    return bar


def to_bar(
    data: pd.DataFrame, *, bar: pd.Timedelta = BAR, file: str | None = None
) -> tuple[pd.DataFrame, int]:
    """Aggregate one source's rows (`timestamp` + value columns) to `bar`.

    Returns the aggregated rows and how many incomplete target bars were dropped. Rows already at
    `bar` pass through unchanged.
    """
    source_bar = infer_bar(data["timestamp"], file=file)
    if source_bar == bar:
        return data, 0
    if source_bar > bar or bar % source_bar != pd.Timedelta(0):
        raise DataError(
            f"source bar {source_bar} cannot be aggregated into the {bar} bar "
            "(it must be a whole fraction of it)",
            file=file,
            column="timestamp",
        )
    per_bar = int(bar / source_bar)
    values = [c for c in data.columns if c != "timestamp"]
    unknown = [c for c in values if c not in AGGREGATION]
    if unknown:
        raise DataError(
            f"no aggregation rule for column(s) {unknown}", file=file, column=unknown[0]
        )
    bucket = data["timestamp"].dt.floor(bar)
    grouped = data.groupby(bucket, sort=True)
    out = grouped.agg({c: AGGREGATION[c] for c in values})
    # `first`/`last` skip NaN in pandas; an all-NaN column must stay NaN, which they do.
    complete = grouped.size().to_numpy() == per_bar
    out = out[complete].rename_axis("timestamp").reset_index()
    return out, int((~complete).sum())
