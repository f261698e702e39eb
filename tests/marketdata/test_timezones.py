"""Naive local timestamps become UTC only with an explicit, valid zone."""

from __future__ import annotations

import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.timezones import naive_to_utc, parse_tz

NAIVE = pd.Series(pd.to_datetime(["2024-08-05 06:00", "2024-08-05 07:00"]))


@pytest.mark.parametrize(
    ("tz", "utc_hour"),
    [("+06:00", 0), ("UTC+6", 0), ("+0600", 0), ("UTC-3", 9), ("GMT+3", 3), ("UTC", 6)],
)
def test_fixed_offsets_use_iso_sign(tz: str, utc_hour: int) -> None:
    out = naive_to_utc(NAIVE, tz)
    assert str(out.dtype) == "datetime64[us, UTC]"
    assert out.iloc[0] == pd.Timestamp(f"2024-08-05 {utc_hour:02d}:00", tz="UTC")


def test_half_hour_offset_and_iana_name() -> None:
    assert naive_to_utc(NAIVE, "+05:30").iloc[0] == pd.Timestamp("2024-08-05 00:30", tz="UTC")
    # Istanbul is UTC+3 all year since 2016.
    assert naive_to_utc(NAIVE, "Europe/Istanbul").iloc[0] == pd.Timestamp(
        "2024-08-05 03:00", tz="UTC"
    )


def test_missing_tz_names_the_file() -> None:
    with pytest.raises(DataError, match=r"file x\.csv, column 't'.*pass tz"):
        naive_to_utc(NAIVE, None, file="x.csv", column="t")


@pytest.mark.parametrize("tz", ["Mars/Olympus", "UTC+25", "+6h", ""])
def test_unknown_tz_is_a_data_error(tz: str) -> None:
    with pytest.raises(DataError, match=r"time zone|offset"):
        parse_tz(tz, file="x.csv")


def test_dst_gap_names_the_line() -> None:
    # 02:30 on 2024-03-31 does not exist in Berlin (clocks jump 02:00 -> 03:00).
    times = pd.Series(pd.to_datetime(["2024-03-31 01:30", "2024-03-31 02:30"]))
    with pytest.raises(DataError, match=r"file x\.csv, row 2, column 't'.*daylight-saving"):
        naive_to_utc(times, "Europe/Berlin", file="x.csv", column="t")


def test_already_zoned_times_are_refused() -> None:
    with pytest.raises(DataError, match="already carry"):
        naive_to_utc(NAIVE.dt.tz_localize("UTC"), "+03:00")
