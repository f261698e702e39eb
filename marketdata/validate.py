"""Validation of the canonical market frame: types, ranges, UTC, uniqueness, bar alignment.

Errors name the column and the first offending row, so a user can find it; gaps are not errors
(real exports have them) but are reported, and never filled with invented prices. The per-cell
rules (`check_values`) also run on one source's columns before they are merged, so a bad row is
refused even where a stored value would otherwise cover it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError
from flushcast.marketdata.schema import (
    BAR,
    COLUMNS,
    NON_NEGATIVE_COLUMNS,
    OPTIONAL_COLUMNS,
    PRICE_COLUMNS,
    bar_name,
)

MAX_ABS_FUNDING = 0.05
"""Per 8 h. No venue clamps above 3 %; a larger value is a unit error (percent vs fraction)."""

EARLIEST = pd.Timestamp("2009-01-01", tz="UTC")
"""No crypto market traded before Bitcoin's first block (2009-01-03): an earlier timestamp is a
sentinel (0001-01-01, 1970-01-01, pandas' 1677-09-21) or a unit error, never a bar."""
AHEAD = pd.Timedelta("1D")
"""How far past the wall clock a bar may open (clock skew, a venue's day boundary); further is a
sentinel (2200-01-01) or a unit error. Both bounds keep a series' span, and so the work of every
later step that walks it bar by bar, within the years crypto markets have existed."""

Locate = Callable[[int, str], tuple[str | None, int | None]]
"""Maps (position in the frame, column) to (file, 1-based line) for an error message."""


@dataclass(frozen=True)
class Gap:
    """A run of missing bars between two present ones."""

    symbol: str
    venue: str
    after: pd.Timestamp
    before: pd.Timestamp
    bar: pd.Timedelta = BAR

    @property
    def missing_bars(self) -> int:
        return int((self.before - self.after) / self.bar) - 1


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
    if "symbol" in frame.columns:
        return f"{row['symbol']} {row['venue']} at {row['timestamp']}"
    return f"bar {row['timestamp']}" if "timestamp" in frame.columns else f"row {pos}"


class _Checker:
    """Raises the first violation as a DataError located by `locate` (default: the position)."""

    def __init__(self, frame: pd.DataFrame, file: str | None, locate: Locate | None) -> None:
        self.frame = frame
        self.locate = locate or (lambda pos, column: (file, pos))

    def fail(self, bad: np.ndarray, column: str, problem: str) -> None:
        pos = int(np.flatnonzero(bad)[0])
        count = int(bad.sum())
        more = f" ({count} rows in all)" if count > 1 else ""
        where, line = self.locate(pos, column)
        raise DataError(
            f"{problem} ({_describe(self.frame, pos)}){more}", file=where, row=line, column=column
        )

    def check(self, bad: np.ndarray, column: str, problem: str) -> None:
        if bad.any():
            self.fail(bad, column, problem)


def check_values(
    frame: pd.DataFrame,
    *,
    bar: pd.Timedelta = BAR,
    file: str | None = None,
    locate: Locate | None = None,
) -> None:
    """The per-cell rules on whichever canonical columns `frame` has.

    Timestamps must be UTC, present and on the `bar` grid; a price present must be finite and
    > 0 and consistent with the other prices present (low <= open, close <= high); optional
    columns must be finite where present, non-negative where they are amounts, and funding must
    look like a fraction per 8 h.
    """
    checker = _Checker(frame, file, locate)
    if "timestamp" in frame.columns:
        ts = frame["timestamp"]
        if not isinstance(ts.dtype, pd.DatetimeTZDtype) or str(ts.dt.tz) != "UTC":
            where, _ = checker.locate(0, "timestamp")
            raise DataError(
                f"timestamps must be tz-aware UTC, got {ts.dtype}", file=where, column="timestamp"
            )
        checker.check(ts.isna().to_numpy(), "timestamp", "missing timestamp")
        us = ts.astype("int64").to_numpy()  # microseconds
        checker.check(
            us < EARLIEST.value // 1000,
            "timestamp",
            f"timestamp before {EARLIEST:%Y-%m-%d}, when no crypto market traded "
            "(a placeholder date in the export?)",
        )
        latest = pd.Timestamp.now(tz="UTC") + AHEAD
        checker.check(
            us > latest.value // 1000,
            "timestamp",
            f"timestamp more than {AHEAD.days} day after now (a placeholder date in the export?)",
        )
        checker.check(
            us % (bar // pd.Timedelta("1us")) != 0,
            "timestamp",
            f"timestamp is not aligned to the {bar_name(bar)} bar",
        )

    prices = {c: frame[c].to_numpy(dtype="float64") for c in PRICE_COLUMNS if c in frame.columns}
    for col, values in prices.items():
        checker.check(~np.isfinite(values), col, "price is missing or not finite")
        checker.check(values <= 0, col, "price must be > 0")
    nan = np.full(len(frame), np.nan)
    o, h, low, c = (prices.get(col, nan) for col in PRICE_COLUMNS)
    with np.errstate(invalid="ignore"):
        checker.check(low > np.fmin(o, c), "low", "low is above open or close")
        checker.check(h < np.fmax(o, c), "high", "high is below open or close")
        checker.check(h < low, "high", "high is below low")

    for col in OPTIONAL_COLUMNS:
        if col not in frame.columns:
            continue
        values = frame[col].to_numpy(dtype="float64")
        checker.check(np.isinf(values), col, "value is infinite")
        if col in NON_NEGATIVE_COLUMNS:
            checker.check(values < 0, col, "value must be >= 0")
    if "funding_rate" in frame.columns:
        funding = frame["funding_rate"].to_numpy(dtype="float64")
        checker.check(
            np.abs(funding) > MAX_ABS_FUNDING,
            "funding_rate",
            f"|funding| > {MAX_ABS_FUNDING} per 8 h: a unit error?",
        )


def validate(
    frame: pd.DataFrame,
    *,
    bar: pd.Timedelta = BAR,
    file: str | None = None,
    locate: Locate | None = None,
) -> ValidationReport:
    """Check `frame` against the canonical schema; raise DataError on the first violation.

    The frame must be sorted by (symbol, venue, timestamp), as `MarketStore` keeps it. `locate`
    turns a position into the file and line it came from (the ingest knows them).
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}", file=file, column=missing[0])
    extra = [c for c in frame.columns if c not in COLUMNS]
    if extra:
        raise DataError(f"unknown column(s) {extra}", file=file, column=extra[0])
    if len(frame) == 0:
        return ValidationReport(rows=0)

    checker = _Checker(frame, file, locate)
    codes = {}
    for col in ("symbol", "venue"):
        # Factorized: a category column has its codes already, and names are checked once each.
        codes[col], names = pd.factorize(frame[col], use_na_sentinel=True)
        blank = np.array([not str(n).strip() for n in names] + [True])
        checker.check(blank[codes[col]], col, f"empty {col}")
    check_values(frame, bar=bar, file=file, locate=locate)

    ts = frame["timestamp"]
    us = ts.astype("int64").to_numpy()
    keys = pd.Series(codes["symbol"].astype(np.int64) * (codes["venue"].max() + 1) + codes["venue"])
    same_series = np.r_[False, keys.to_numpy()[1:] == keys.to_numpy()[:-1]]
    step = np.diff(us, prepend=us[0])
    checker.check(same_series & (step == 0), "timestamp", "duplicate bar for this symbol and venue")
    checker.check(same_series & (step < 0), "timestamp", "timestamps are not sorted")
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
            bar=bar,
        )
        for i in gap_at
    ]
    return ValidationReport(rows=len(frame), gaps=gaps)
