"""The canonical market frame: one row per (symbol, bar), the only thing downstream code reads.

Everything after ingestion (features, labels, models, serving) relies on these names, units and
dtypes, so they are declared once here.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from flushcast.common.errors import shorten

BAR = pd.Timedelta("1h")
"""Default bar size. Timestamps are bar open times, UTC."""

STORED_BARS: tuple[pd.Timedelta, ...] = (BAR, pd.Timedelta("4h"), pd.Timedelta("1D"))
"""Bar sizes a stored series may have. Finer source bars (1 min, 5 min, 30 min) are resampled
into one of these on ingest; a series is never stored finer than an hour."""

_BAR_TEXT = re.compile(r"^\s*(\d+)\s*(m|min|h|d)\s*$", re.IGNORECASE)
_UNIT = {"m": "min", "min": "min", "h": "h", "d": "D"}


def parse_bar(text: str) -> pd.Timedelta:
    """A bar size written as the CLI and mappings take it: "1h", "4h", "1d", or a finer source
    bar such as "1m", "5m", "30m" (minutes). Raises ValueError for anything else."""
    match = _BAR_TEXT.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"bar {shorten(text)} is not a bar size such as 1h, 4h, 1d or 5m")
    return pd.Timedelta(int(match.group(1)), _UNIT[match.group(2).lower()])


def bar_name(bar: pd.Timedelta) -> str:
    """The short name of a bar size: "1h", "4h", "1d", "5m" (inverse of `parse_bar`)."""
    minutes = int(bar / pd.Timedelta("1min"))
    if minutes <= 0 or bar % pd.Timedelta("1min") != pd.Timedelta(0):
        raise ValueError(f"{bar} is not a whole number of minutes")
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NAME_MAX = 64
"""A symbol or venue: 1 to 64 ASCII letters, digits, `.`, `_` or `-`, starting with a letter or
digit (BTCUSDT, BTC-PERP, BTCUSDT_PERP.A, 1000PEPEUSDT). The one rule for every name that enters:
ingest (it becomes a file name in the store), HTTP requests and alert rules. Nothing else is
allowed, so no name can hide as another (bidirectional controls, look-alike letters), climb out
of a folder or exceed a file name."""
_NAME = re.compile(NAME_PATTERN)


def name_problem(text: object, what: str = "symbol") -> str | None:
    """Why `text` is not a valid symbol or venue name (None: it is)."""
    if not isinstance(text, str) or not text:
        return f"{what} is empty"
    if len(text) > NAME_MAX:
        return f"{what} {shorten(text)} is longer than {NAME_MAX} characters"
    if _NAME.match(text) is None:
        return (
            f"{what} {shorten(text)} has characters outside A-Z, a-z, 0-9, '.', '_', '-' "
            "(or does not start with a letter or digit)"
        )
    return None


KEY_COLUMNS: tuple[str, ...] = ("timestamp", "symbol", "venue")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "volume_usd",
    "oi_usd",
    "funding_rate",
    "liq_long_usd",
    "liq_short_usd",
    "taker_buy_volume_usd",
    "long_short_ratio",
)
VALUE_COLUMNS: tuple[str, ...] = PRICE_COLUMNS + OPTIONAL_COLUMNS
COLUMNS: tuple[str, ...] = KEY_COLUMNS + VALUE_COLUMNS

NON_NEGATIVE_COLUMNS: tuple[str, ...] = (
    "volume_usd",
    "oi_usd",
    "liq_long_usd",
    "liq_short_usd",
    "taker_buy_volume_usd",
    "long_short_ratio",
)

FUNDING_INTERVAL_HOURS = 8
"""`funding_rate` is a fraction per 8 hours (0.0001 = 1 bp); other intervals are rescaled."""

# How a finer bar aggregates into a coarser one (see marketdata.resample).
AGGREGATION: dict[str, str] = {
    "open": "first",
    "high": "max",
    "low": "min",
    "close": "last",
    "volume_usd": "sum",
    "oi_usd": "last",
    "funding_rate": "last",
    "liq_long_usd": "sum",
    "liq_short_usd": "sum",
    "taker_buy_volume_usd": "sum",
    "long_short_ratio": "last",
}

COLUMN_UNITS: dict[str, str] = {
    "timestamp": "bar open time, UTC",
    "open": "quote currency",
    "high": "quote currency",
    "low": "quote currency",
    "close": "quote currency",
    "volume_usd": "USD traded in the bar",
    "oi_usd": "USD open interest at bar close",
    "funding_rate": "fraction per 8 h, in force at bar close",
    "liq_long_usd": "USD of longs liquidated in the bar",
    "liq_short_usd": "USD of shorts liquidated in the bar",
    "taker_buy_volume_usd": "USD bought by takers in the bar",
    "long_short_ratio": "accounts long / accounts short",
}


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Return `frame` with exactly the canonical columns, in order, with canonical dtypes.

    Missing optional columns are added as NaN (a source that lacks them says so by NaN, never by
    a missing column). Unknown columns are dropped. Row order is kept.
    """
    out = pd.DataFrame(index=frame.index)
    ts = frame["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise TypeError("timestamp must be timezone-aware (UTC)")
    out["timestamp"] = ts.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    out["symbol"] = frame["symbol"].astype(str).astype("category")
    out["venue"] = frame["venue"].astype(str).astype("category")
    for col in VALUE_COLUMNS:
        if col in frame:
            out[col] = pd.to_numeric(frame[col]).astype("float64")
        else:
            out[col] = np.nan
    return out.reset_index(drop=True)


def empty_frame() -> pd.DataFrame:
    """A canonical frame with no rows (dtypes as in any other frame)."""
    frame = pd.DataFrame(
        {"timestamp": pd.Series([], dtype="datetime64[us, UTC]"), "symbol": [], "venue": []}
    )
    return conform(frame)
