"""Validation of the canonical market frame: types, ranges, UTC, uniqueness, bar alignment.

Errors name the column and the first offending row, so a user can find it; gaps are not errors
(real exports have them) but are reported, and never filled with invented prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from marketdata.errors import DataError
from marketdata.schema import (
    BAR,
    COLUMNS,
    NON_NEGATIVE_COLUMNS,
    OPTIONAL_COLUMNS,
    PRICE_COLUMNS,
)

MAX_ABS_FUNDING = 0.05
"""Per 8 h. No venue clamps above 3 %; a larger value is a unit error (percent vs fraction)."""


@dataclass(frozen=True)
class Gap:
    """A run of missing bars between two present ones."""

    symbol: str
    venue: str
    after: pd.Timestamp
    before: pd.Timestamp

    @property
    def missing_bars(self) -> int:
        return int((self.before - self.after) / BAR) - 1


@dataclass
class ValidationReport:
    """What a valid frame looks like: its size and its gaps."""

    rows: int
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)


def _describe(frame: pd.DataFrame, pos: int) -> str:
    row = frame.iloc[pos]
    return f"{row['symbol']} {row['venue']} at {row['timestamp']}"


def _fail(frame: pd.DataFrame, bad: np.ndarray, column: str, problem: str, file: str | None):
    pos = int(np.flatnonzero(bad)[0])
    count = int(bad.sum())
    more = f" ({count} rows in all)" if count > 1 else ""
    raise DataError(f"{problem} ({_describe(frame, pos)}){more}", file=file, row=pos, column=column)


def validate(
    frame: pd.DataFrame, *, bar: pd.Timedelta = BAR, file: str | None = None
) -> ValidationReport:
    """Check `frame` against the canonical schema; raise DataError on the first violation.

    The frame must be sorted by (symbol, venue, timestamp), as `MarketStore` keeps it.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}", file=file, column=missing[0])
    extra = [c for c in frame.columns if c not in COLUMNS]
    if extra:
        raise DataError(f"unknown column(s) {extra}", file=file, column=extra[0])
    if len(frame) == 0:
        return ValidationReport(rows=0)

    ts = frame["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype) or str(ts.dt.tz) != "UTC":
        raise DataError(
            f"timestamps must be tz-aware UTC, got {ts.dtype}", file=file, column="timestamp"
        )
    if ts.isna().any():
        _fail(frame, ts.isna().to_numpy(), "timestamp", "missing timestamp", file)
    for col in ("symbol", "venue"):
        text = frame[col].astype("string")
        bad = (text.isna() | (text.str.strip() == "")).to_numpy()
        if bad.any():
            _fail(frame, bad, col, f"empty {col}", file)

    for col in PRICE_COLUMNS:
        values = frame[col].to_numpy(dtype="float64")
        if (bad := ~np.isfinite(values)).any():
            _fail(frame, bad, col, "price is missing or not finite", file)
        if (bad := values <= 0).any():
            _fail(frame, bad, col, "price must be > 0", file)
    o, h, low, c = (frame[col].to_numpy(dtype="float64") for col in PRICE_COLUMNS)
    if (bad := low > np.minimum(o, c)).any():
        _fail(frame, bad, "low", "low is above open or close", file)
    if (bad := h < np.maximum(o, c)).any():
        _fail(frame, bad, "high", "high is below open or close", file)

    for col in OPTIONAL_COLUMNS:
        values = frame[col].to_numpy(dtype="float64")
        if (bad := np.isinf(values)).any():
            _fail(frame, bad, col, "value is infinite", file)
        if col in NON_NEGATIVE_COLUMNS and (bad := values < 0).any():
            _fail(frame, bad, col, "value must be >= 0", file)
    funding = frame["funding_rate"].to_numpy(dtype="float64")
    if (bad := np.abs(funding) > MAX_ABS_FUNDING).any():
        _fail(
            frame,
            bad,
            "funding_rate",
            f"|funding| > {MAX_ABS_FUNDING} per 8 h: a unit error?",
            file,
        )

    ns = ts.astype("int64").to_numpy()  # microseconds
    if (bad := ns % (bar // pd.Timedelta("1us")) != 0).any():
        _fail(frame, bad, "timestamp", f"timestamp is not aligned to the {bar} bar", file)

    keys = frame["symbol"].astype(str) + "\x00" + frame["venue"].astype(str)
    same_series = (keys == keys.shift()).to_numpy()
    step = np.diff(ns, prepend=ns[0])
    if (bad := same_series & (step == 0)).any():
        _fail(frame, bad, "timestamp", "duplicate bar for this symbol and venue", file)
    if (bad := same_series & (step < 0)).any():
        _fail(frame, bad, "timestamp", "timestamps are not sorted", file)
    if keys.duplicated().to_numpy()[~same_series].any():
        raise DataError(
            "rows of one symbol and venue are not contiguous", file=file, column="symbol"
        )

    bar_us = bar // pd.Timedelta("1us")
    gap_at = np.flatnonzero(same_series & (step > bar_us))
    gaps = [
        Gap(
            symbol=str(frame["symbol"].iat[i]),
            venue=str(frame["venue"].iat[i]),
            after=ts.iat[i - 1],
            before=ts.iat[i],
        )
        for i in gap_at
    ]
    return ValidationReport(rows=len(frame), gaps=gaps)
