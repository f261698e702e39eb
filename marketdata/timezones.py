"""Naive local timestamps -> UTC, for exports that write wall-clock times without a zone.

Vendors such as Coinalyze export in the downloader's local time and say nothing about it, so the
zone must come from the user; a wrong or unknown zone is an error, never a silent default.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

import pandas as pd

from flushcast.common.errors import DataError, shorten

_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu"}
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_tz(tz: str, *, file: str | Path | None = None) -> dt.tzinfo:
    """`tz` as an IANA name ("Asia/Almaty", "UTC") or a fixed offset ("+06:00", "UTC+6", "-0330").

    Fixed offsets use the ISO sign (UTC+6 is six hours ahead of UTC), unlike IANA "Etc/GMT+6".
    """
    text = tz.strip()
    if text.upper() in {"UTC", "GMT", "Z"}:
        return dt.UTC
    match = _OFFSET.match(text)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes >= 60:
            raise DataError(
                f"time-zone offset {shorten(tz)} is out of range (at most ±14:00)", file=file
            )
        offset = dt.timedelta(hours=hours, minutes=minutes)
        return dt.timezone(-offset if sign == "-" else offset)
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DataError(
            f"unknown time zone {shorten(tz)}: give an IANA name such as 'Europe/Istanbul' "
            "or a fixed "
            "offset such as '+03:00' or 'UTC+3'",
            file=file,
        ) from None


def naive_to_utc(
    times: pd.Series,
    tz: str | None,
    *,
    file: str | Path | None = None,
    column: str | None = None,
    first_line: int = 1,
) -> pd.Series:
    """Read naive wall-clock `times` as local time in `tz` and return them as UTC (datetime64[us]).

    `tz` is required (None -> DataError naming the file) because guessing UTC shifts every bar by
    the offset, which the tests show misaligns prices by hours. DST gaps and repeats in an IANA zone
    are errors: a repeated hour cannot be placed without knowing which of the two was meant.
    Errors name the file line `times.index + first_line` (a freshly read CSV keeps a 0-based
    index, so `first_line` is 1 without a header and 2 with one).
    """
    if tz is None:
        raise DataError(
            "timestamps carry no time zone: pass tz (an IANA name or an offset like '+06:00')",
            file=file,
            column=column,
        )
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        raise DataError(
            f"timestamps already carry time zone {times.dtype.tz}; tz={shorten(tz)} "
            "would be ambiguous",
            file=file,
            column=column,
        )
    zone = parse_tz(tz, file=file)
    local = times.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    lost = local.isna() & times.notna()
    if lost.any():
        pos = int(lost.to_numpy().nonzero()[0][0])
        raise DataError(
            f"local time {times.iloc[pos]} is skipped or repeated by a daylight-saving change in "
            f"{shorten(tz)}; give the fixed UTC offset the export was written in",
            file=file,
            row=int(times.index[pos]) + first_line,
            column=column,
        )
    return local.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


def require_utc(tz: str | None, file: str | Path) -> None:
    """Reject a `tz` other than UTC for timestamps that say their zone themselves (epoch times,
    ISO times with an offset): applying it would be wrong, ignoring it would hide a mistake."""
    if tz is None:
        return
    zone = parse_tz(tz, file=file)
    if zone.utcoffset(None) != dt.timedelta(0) and getattr(zone, "key", None) not in _UTC_NAMES:
        raise DataError(
            "timestamps in this file are UTC (epoch or with their offset); "
            f"tz={shorten(tz)} does not "
            "apply: leave --tz out",
            file=file,
        )
