"""The canonical schema rejects what downstream code must never see, and names where it is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.schema import COLUMNS, conform
from flushcast.marketdata.validate import validate

from .synthetic import bars


def test_valid_frame_passes_and_reports_no_gaps():
    report = validate(bars(24))
    assert report.rows == 24
    assert report.gaps == []


def test_conform_adds_missing_optional_columns_as_nan():
    frame = bars(3)[["timestamp", "symbol", "venue", "open", "high", "low", "close"]]
    out = conform(frame)
    assert tuple(out.columns) == COLUMNS
    assert out["oi_usd"].isna().all()
    validate(out)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("close", -1.0, "price must be > 0"),
        ("open", np.nan, "missing or not finite"),
        ("low", 1e9, "low is above"),
        ("high", 1.0, "high is below"),
        ("oi_usd", -5.0, ">= 0"),
        ("liq_long_usd", np.inf, "infinite"),
        ("funding_rate", 0.5, "unit error"),
    ],
)
def test_bad_values_name_column_and_row(column, value, problem):
    frame = bars(10)
    frame.loc[7, column] = value
    with pytest.raises(DataError, match=problem) as err:
        validate(frame)
    assert err.value.column == column
    assert err.value.row == 7


def test_gaps_are_reported_not_filled():
    frame = bars(10).drop(index=[3, 4, 5]).reset_index(drop=True)
    report = validate(frame)
    assert len(report.gaps) == 1
    assert report.gaps[0].missing_bars == 3
    assert report.rows == 7


def test_duplicate_and_unsorted_and_misaligned_timestamps_are_rejected():
    frame = bars(5)
    dup = pd.concat([frame, frame.iloc[[2]]]).sort_values("timestamp", kind="stable")
    with pytest.raises(DataError, match="duplicate bar"):
        validate(dup.reset_index(drop=True))
    with pytest.raises(DataError, match="not sorted"):
        validate(frame.iloc[[0, 2, 1, 3]].reset_index(drop=True))
    shifted = frame.assign(timestamp=frame["timestamp"] + pd.Timedelta("30min"))
    with pytest.raises(DataError, match="not aligned"):
        validate(shifted)


def test_non_utc_timestamps_are_rejected():
    frame = bars(5)
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("Asia/Tokyo")
    with pytest.raises(DataError, match="UTC"):
        validate(frame)


def test_two_series_may_share_timestamps():
    frame = pd.concat([bars(5, symbol="BTCUSDT"), bars(5, symbol="ETHUSDT")], ignore_index=True)
    assert validate(conform(frame)).rows == 10
