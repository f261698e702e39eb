"""Collectors replaying recorded real data from ../shared through the fake exchange.

The stored liquidation totals are checked against the project's own file adapter reading the
same recorded events (`liquidation-events`), so the stream path (venue format, side convention,
per-bar sums, coverage) must agree with the batch path bar by bar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.marketdata.adapters import liquidation_events
from flushcast.marketdata.store import MarketStore
from tests.exchange.harness import collect, run
from tests.exchange.recording import as_binance, binance_2025, bybit_2024
from tests.exchange.server import Faults

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
BUSIEST_DAY = "2024-03-05T00:40:00Z"
"""1,660 recorded Bybit liquidations that day, the most of the 72 days."""
LIQUIDATIONS = ["liq_long_usd", "liq_short_usd"]
TAPE = "Roflkemper__chat-bot-v2/data/historical/bybit_liquidations_2024.parquet"


def covered(frame: pd.DataFrame, stream_from: pd.Timestamp) -> pd.DatetimeIndex:
    return frame.index[frame.index >= stream_from.ceil("1h")]


def test_bybit_stream_totals_equal_the_file_adapter_on_the_same_recorded_events(
    real_data: Path, tmp_path: Path
) -> None:
    faults = Faults(duplicate_every=4, delay_every=5, delay_s=3, malformed_every=9)
    report, _ = run(collect(bybit_2024(real_data), BUSIEST_DAY, tmp_path, faults=faults))
    (adapted,) = liquidation_events.read(real_data / TAPE)
    expected = adapted.data.set_index("timestamp")[LIQUIDATIONS]

    frame = MarketStore(tmp_path).read(["BTCUSDT"], "bybit").set_index("timestamp")
    bars = covered(frame, report.stream_from)
    assert len(bars) >= 3 and report.events > 100 and report.duplicates > 0
    np.testing.assert_allclose(frame.loc[bars, LIQUIDATIONS], expected.loc[bars], rtol=1e-12)
    assert (frame.loc[bars, "liq_long_usd"] > 0).all()


def test_binance_form_of_the_tape_keeps_binance_sides_and_one_order_per_second(
    real_data: Path, tmp_path: Path
) -> None:
    """A liquidated long arrives as a SELL order and is stored as liq_long_usd; what the
    one-per-second stream drops is missing from the totals (they are lower bounds)."""
    tape = pd.read_parquet(real_data / TAPE)
    report, _ = run(collect(as_binance(bybit_2024(real_data)), BUSIEST_DAY, tmp_path))

    frame = MarketStore(tmp_path).read(["BTCUSDT"], "binance").set_index("timestamp")
    bars = covered(frame, report.stream_from)
    kept = tape[~(tape["ts_ms"] // 1000).duplicated(keep="last")]
    for events, bound in ((kept, "equal"), (tape, "upper")):
        bar = pd.to_datetime(events["ts_ms"] // 3_600_000 * 3_600_000, unit="ms", utc=True)
        usd = events["qty"] * events["price"]
        longs = usd.where(events["side"] == "Buy", 0.0).groupby(bar).sum().reindex(bars)
        shorts = usd.where(events["side"] == "Sell", 0.0).groupby(bar).sum().reindex(bars)
        if bound == "equal":
            np.testing.assert_allclose(frame.loc[bars, "liq_long_usd"], longs, rtol=1e-12)
            np.testing.assert_allclose(frame.loc[bars, "liq_short_usd"], shorts, rtol=1e-12)
        else:
            assert (frame.loc[bars, "liq_long_usd"] <= longs + 1e-6).all()
            assert (frame.loc[bars, LIQUIDATIONS].sum(axis=1) < longs + shorts).any()


def test_binance_klines_and_funding_are_stored_as_recorded(real_data: Path, tmp_path: Path) -> None:
    recording = binance_2025(real_data, coins=("BTC",))
    report, _ = run(collect(recording, "2025-08-01T00:40:00Z", tmp_path, max_bars=2))
    frame = MarketStore(tmp_path).read(["BTCUSDT"], "binance").set_index("timestamp")
    market = recording.markets["BTCUSDT"]

    klines = market.klines.set_index("timestamp").loc[frame.index]
    np.testing.assert_allclose(
        frame[["open", "high", "low", "close"]], klines[["open", "high", "low", "close"]]
    )
    assert report.bars["BTCUSDT"] == len(frame) >= 75 * 24
    # The rate in force at each bar's close: the last settlement at or before it.
    settled = market.funding["timestamp"]
    closes = frame.index + pd.Timedelta("1h")
    last = np.searchsorted(settled.to_numpy(), closes.to_numpy(), side="right") - 1
    known = frame["funding_rate"].notna().to_numpy()
    assert known.mean() > 0.99
    np.testing.assert_allclose(
        frame["funding_rate"].to_numpy()[known],
        market.funding["rate"].to_numpy()[last[known]],
        rtol=0,
        atol=1e-8,
    )
