"""Liquidation events: layouts, USD totals, day coverage, and side conventions checked on prices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.adapters import liquidation_events

BYBIT = "Roflkemper__chat-bot-v2/data/historical/bybit_liquidations_2024.parquet"
HYPERLIQUID = "0xknxwledge__group-m-finm33150-final/_git_history/fadd49d/data/liquidations.parquet"
SPOT_2024 = "Roflkemper__chat-bot-v2/state/pattern_memory_BTCUSDT_1h_2024.csv"


def test_bybit_totals_coverage_and_side_against_price(real_data: Path) -> None:
    (frame,) = liquidation_events.read(real_data / BYBIT)
    assert (frame.symbol, frame.venue, frame.kind) == ("BTCUSDT", "bybit", "bars")
    bars = frame.data
    raw = pd.read_parquet(real_data / BYBIT)
    usd = raw["qty"] * raw["price"]
    assert np.isclose(bars["liq_long_usd"].sum(), usd[raw["side"] == "Buy"].sum())
    assert np.isclose(bars["liq_short_usd"].sum(), usd[raw["side"] == "Sell"].sum())
    # Every UTC day with an event is covered hour by hour; days without events are absent.
    days = pd.to_datetime(raw["ts_ms"], unit="ms", utc=True).dt.floor("1D").nunique()
    assert len(bars) == 24 * days and bars["timestamp"].is_unique

    # Side convention: hours dominated by liquidated longs fall (independent spot prices).
    spot = pd.read_csv(real_data / SPOT_2024, usecols=["open_time", "open", "close"])
    spot.index = pd.to_datetime(spot["open_time"], utc=True)
    returns = (spot["close"] / spot["open"] - 1).rename("ret")
    hours = bars.set_index("timestamp").join(returns, how="inner")
    total = hours["liq_long_usd"] + hours["liq_short_usd"]
    busy = hours[total > total.quantile(0.5)]
    imbalance = (busy["liq_long_usd"] - busy["liq_short_usd"]) / (
        busy["liq_long_usd"] + busy["liq_short_usd"]
    )
    assert imbalance.corr(busy["ret"]) < -0.3  # measured -0.60 (README: -0.40)
    long_heavy = busy[imbalance > 0.8]["ret"]
    short_heavy = busy[imbalance < -0.8]["ret"]
    assert long_heavy.median() < 0 < short_heavy.median()


def test_hyperliquid_events_by_coin(real_data: Path) -> None:
    frames = liquidation_events.read(real_data / HYPERLIQUID)
    assert {f.symbol for f in frames} == {"BTC", "ETH", "SOL", "DOGE", "HYPE"}
    assert {f.venue for f in frames} == {"hyperliquid"}
    raw = pd.read_parquet(real_data / HYPERLIQUID)
    total = sum(f.data["liq_long_usd"].sum() for f in frames)
    assert np.isclose(total, raw["size_usd"].sum())
    # "S" is the only label (a liquidation sell closing a long): prices within bursts of
    # events fall more often than they rise.
    raw = raw.sort_values(["coin", "timestamp"])
    gap = raw.groupby("coin")["timestamp"].diff().dt.total_seconds()
    move = raw.groupby("coin")["price"].pct_change()
    burst = move[(gap > 0) & (gap <= 10)]
    assert len(burst) > 200
    assert (burst < 0).mean() > (burst > 0).mean() + 0.1


# --- plain CSV layout ---------------------------------------------------------------------------


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "events.csv"
    path.write_text("time,side,qty,price\n" + "\n".join(rows) + "\n")
    return path


ROWS = [
    "1704067200000,SELL,0.5,42000",  # 2024-01-01 00:00 UTC
    "1704069000000,BUY,0.1,42500",  # 00:30
    "1704078000000,SELL,1,41000",  # 03:00
]


def test_csv_uses_the_given_venue_convention(tmp_path: Path) -> None:
    path = _csv(tmp_path, ROWS)
    (binance,) = liquidation_events.read(path, venue="binance", symbol="BTCUSDT")
    hours = binance.data.set_index("timestamp")
    first = hours.loc[pd.Timestamp("2024-01-01 00:00", tz="UTC")]
    assert (first["liq_long_usd"], first["liq_short_usd"]) == (21000.0, 4250.0)
    assert len(hours) == 24 and hours.loc["2024-01-01 05:00", "liq_long_usd"].item() == 0.0
    with pytest.raises(DataError, match=r"row 2, column 'side': side 'SELL' is not one of"):
        liquidation_events.read(path, venue="bybit", symbol="BTCUSDT")


def test_csv_iso_times_naive_need_tz(tmp_path: Path) -> None:
    zoned = _csv(tmp_path, ["2024-01-01T03:10:00+03:00,Buy,2,100"])
    (frame,) = liquidation_events.read(zoned, venue="bybit", symbol="X")
    assert frame.data.set_index("timestamp").loc["2024-01-01 00:00", "liq_long_usd"].item() == 200
    naive = _csv(tmp_path, ["2024-01-01 03:10:00,Buy,2,100"])
    with pytest.raises(DataError, match=r"events\.csv, column 'time'.*pass tz"):
        liquidation_events.read(naive, venue="bybit", symbol="X")
    (local,) = liquidation_events.read(naive, venue="bybit", symbol="X", tz="+03:00")
    assert local.data.equals(frame.data)


def test_csv_needs_venue_and_locates_bad_values(tmp_path: Path) -> None:
    path = _csv(tmp_path, ROWS)
    with pytest.raises(DataError, match="pass both"):
        liquidation_events.read(path, symbol="BTCUSDT")
    bad = _csv(tmp_path, [ROWS[0], "1704069000000,BUY,0.1x,42500"])
    with pytest.raises(DataError, match=r"events\.csv, row 3, column 'qty': cannot parse '0\.1x'"):
        liquidation_events.read(bad, venue="binance", symbol="BTCUSDT")
    wrong = tmp_path / "other.csv"
    wrong.write_text("time,side,amount\n1,SELL,2\n")
    with pytest.raises(DataError, match=r"other\.csv, row 1: expected header time,side,qty,price"):
        liquidation_events.read(wrong, venue="binance", symbol="BTCUSDT")


def test_unknown_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pd.DataFrame({"when": [1], "amount": [2.0]}).to_parquet(path)
    with pytest.raises(DataError, match=r"x\.parquet: unrecognised liquidation columns"):
        liquidation_events.read(path)
