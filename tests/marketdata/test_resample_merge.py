"""Finer bars aggregate correctly; sources merge without silent averaging; funding is in force
from its settlement on, never earlier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.merge import BarMerger, funding_on_bars
from flushcast.marketdata.resample import infer_bar, to_bar

from .synthetic import bars


def _values(frame):
    return frame.drop(columns=["symbol", "venue"])


def test_five_minute_bars_aggregate_to_the_hour():
    fine = _values(bars(24, freq="5min"))
    hourly, dropped = to_bar(fine)
    assert dropped == 0
    assert len(hourly) == 2
    first = fine.iloc[:12]
    row = hourly.iloc[0]
    assert row["timestamp"] == fine["timestamp"].iat[0]
    assert row["open"] == first["open"].iat[0]
    assert row["high"] == first["high"].max()
    assert row["low"] == first["low"].min()
    assert row["close"] == first["close"].iat[-1]
    assert row["volume_usd"] == pytest.approx(first["volume_usd"].sum())
    assert row["liq_long_usd"] == pytest.approx(first["liq_long_usd"].sum())
    assert row["oi_usd"] == first["oi_usd"].iat[-1]  # OI is a level: the last snapshot


def test_incomplete_hours_become_gaps_not_invented_bars():
    fine = _values(bars(36, freq="5min")).drop(index=[15]).reset_index(drop=True)
    hourly, dropped = to_bar(fine)
    assert dropped == 1
    assert list(hourly["timestamp"].dt.hour) == [0, 2]


def test_infer_bar_and_reject_coarser_sources():
    assert infer_bar(bars(5, freq="30min")["timestamp"]) == pd.Timedelta("30min")
    with pytest.raises(DataError, match="cannot be aggregated"):
        to_bar(_values(bars(5, freq="1D")))


def test_merge_fills_columns_from_named_sources():
    frame = _values(bars(10))
    prices = frame[["timestamp", "open", "high", "low", "close"]]
    liqs = frame[["timestamp", "liq_long_usd", "liq_short_usd"]].iloc[2:]
    merger = BarMerger()
    merger.add("ohlcv.csv", prices)
    merger.add("liq.csv", liqs)
    out = merger.bars
    assert len(out) == 10
    assert out["liq_long_usd"].isna().sum() == 2
    assert merger.sources == {
        "open": ["ohlcv.csv"],
        "high": ["ohlcv.csv"],
        "low": ["ohlcv.csv"],
        "close": ["ohlcv.csv"],
        "liq_long_usd": ["liq.csv"],
        "liq_short_usd": ["liq.csv"],
    }


def test_conflicting_prices_name_both_sources_and_the_bar():
    frame = _values(bars(10))
    shifted = frame.assign(timestamp=frame["timestamp"] + pd.Timedelta("3h"))
    merger = BarMerger()
    merger.add("a.csv", frame[["timestamp", "close"]])
    with pytest.raises(DataError, match=r"a\.csv has .* b\.csv has") as err:
        merger.add("b.csv", shifted[["timestamp", "close"]])
    assert err.value.column == "close"


def test_agreeing_sources_merge_idempotently():
    frame = _values(bars(10))
    merger = BarMerger()
    merger.add("a", frame)
    merger.add("a", frame)
    pd.testing.assert_frame_equal(merger.bars, frame)


def test_funding_is_in_force_from_settlement_at_bar_close():
    opens = pd.Series(pd.date_range("2024-01-01", periods=20, freq="1h", tz="UTC"))
    settlements = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 08:00"], utc=True),
            "funding_rate": [1e-4, -2e-4],
        }
    )
    rate = funding_on_bars(settlements, opens)
    # The 07:00 bar closes at 08:00, the settlement instant: the new rate is in force then.
    assert rate.iloc[6] == 1e-4
    assert rate.iloc[7] == -2e-4
    assert (rate.iloc[7:] == -2e-4).all()
    # Appending a future settlement never changes earlier bars.
    later = pd.concat(
        [
            settlements,
            pd.DataFrame(
                {"timestamp": [opens.iat[-1] + pd.Timedelta("1h")], "funding_rate": [5e-4]}
            ),
        ]
    )
    again = funding_on_bars(later, opens)
    np.testing.assert_array_equal(again.iloc[:-1], rate.iloc[:-1])


def test_funding_goes_stale_after_missed_settlements():
    opens = pd.Series(pd.date_range("2024-01-01", periods=40, freq="1h", tz="UTC"))
    settlements = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2023-12-31 16:00", "2024-01-01 00:00"], utc=True),
            "funding_rate": [1e-4, 1e-4],
        }
    )
    rate = funding_on_bars(settlements, opens)
    assert rate.iloc[:23].notna().all()
    assert rate.iloc[24:].isna().all()
