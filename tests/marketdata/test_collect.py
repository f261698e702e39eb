"""Collectors against the loopback fake exchange replaying a simulated market (no ../shared).

Each run backfills 75 days over REST and then follows four live bars at 7,200x (an hour in half
a second of real time). Where the backfill ends depends on how fast this machine is, so the
checks are stated per bar: bars wholly after the stream connected carry exactly the
liquidations the venue sent; earlier ones are unknown. Faults come from the fake: duplicated,
held-back and malformed messages, failing REST calls, dropped streams, a kline never published.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.marketdata.collect.collector import CollectReport
from flushcast.marketdata.collect.rest import Backoff
from flushcast.marketdata.store import MarketStore
from flushcast.marketdata.validate import validate
from tests.exchange.harness import SPEED, collect, delayed_events, hourly_totals, run
from tests.exchange.recording import Recording, simulated
from tests.exchange.server import Faults

pytestmark = pytest.mark.slow

START = "2024-03-20T00:40:00Z"
HOUR = pd.Timedelta("1h")
KLINES = ["open", "high", "low", "close", "volume_usd"]
LIQUIDATIONS = ["liq_long_usd", "liq_short_usd"]


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    from flushcast.simulator import simulate

    return simulate("default", ["BTCUSDT", "ETHUSDT"], days=90, seed=3).frame


def recording(market: pd.DataFrame, venue: str) -> Recording:
    return simulated(venue, market=market)


def stored(store: Path, venue: str, symbol: str) -> pd.DataFrame:
    return MarketStore(store).read([symbol], venue).set_index("timestamp")


def watched(frame: pd.DataFrame, report: CollectReport) -> pd.DatetimeIndex:
    """Stored bars that opened after the stream first connected."""
    assert report.stream_from is not None
    return frame.index[frame.index >= report.stream_from.ceil("1h")]


def assert_sent_totals(frame: pd.DataFrame, rec: Recording, symbol: str, bars) -> None:
    expected = hourly_totals(rec, symbol).reindex(bars, fill_value=0.0)
    np.testing.assert_allclose(frame.loc[bars, LIQUIDATIONS], expected, rtol=1e-9)


@pytest.mark.parametrize("venue", ["binance", "bybit"])
def test_backfill_and_live_bars_equal_what_the_venue_published(
    market: pd.DataFrame, venue: str, tmp_path: Path
) -> None:
    """Duplicates counted once, messages held back a few seconds put in their own bar,
    malformed ones skipped, failing REST calls retried: the store equals the recording."""
    rec = recording(market, venue)
    faults = Faults(duplicate_every=3, delay_every=4, delay_s=5, malformed_every=5, rest_failures=3)
    report, stats = run(collect(rec, START, tmp_path, faults=faults))

    # At least the four asked for: a slow machine may store two closed bars in one write.
    assert set(report.live_bars) == {"BTCUSDT", "ETHUSDT"} and min(report.live_bars.values()) >= 4
    assert report.duplicates > 0 and report.malformed > 0 and report.rest_retries >= 3
    assert report.late == 0 and stats.delayed and not report.gaps
    for symbol in ("BTCUSDT", "ETHUSDT"):
        frame = stored(tmp_path, venue, symbol)
        span = frame.index[-1] - frame.index[0]
        assert span >= 75 * 24 * HOUR and len(frame) == span / HOUR + 1  # contiguous
        assert not validate(frame.reset_index()).gaps
        truth = rec.markets[symbol].klines.set_index("timestamp").loc[frame.index]
        np.testing.assert_allclose(frame[KLINES], truth[KLINES], rtol=1e-12)
        sim = market[market["symbol"] == symbol].set_index("timestamp").loc[frame.index]
        has_oi = frame["oi_usd"].notna()
        if venue == "binance":  # it serves 30 days of open-interest history, Bybit all of it
            assert has_oi[frame.index > frame.index[-1] - 29 * 24 * HOUR].all()
            assert not has_oi[frame.index < frame.index[-1] - 30 * 24 * HOUR].any()
        else:
            assert has_oi.all()
        np.testing.assert_allclose(frame.loc[has_oi, "oi_usd"], sim.loc[has_oi, "oi_usd"], 1e-4)
        known = frame["funding_rate"].notna()
        assert known.mean() > 0.99
        np.testing.assert_allclose(  # venues send rates with 8 decimals
            frame.loc[known, "funding_rate"], sim.loc[known, "funding_rate"], rtol=0, atol=1e-8
        )
        bars = watched(frame, report)
        assert len(bars) >= 3
        assert_sent_totals(frame, rec, symbol, bars)
        assert frame.loc[frame.index < bars[0], "liq_long_usd"].isna().all()
    assert all(bar < report.stream_from for _, bar, _ in report.unknown_liquidations)


def test_binance_provenance_says_liquidations_are_lower_bounds(
    market: pd.DataFrame, tmp_path: Path
) -> None:
    run(collect(recording(market, "binance"), START, tmp_path, max_bars=2))
    columns = MarketStore(tmp_path).provenance("BTCUSDT", "binance")["columns"]
    (source,) = columns["liq_long_usd"]
    assert "at most 1 order/s per symbol" in source and "lower bounds" in source
    assert columns["close"] == ["binance REST /fapi/v1/klines"]


def test_a_dropped_stream_is_reconnected_and_the_bar_it_cut_is_unknown_not_zero(
    market: pd.DataFrame, tmp_path: Path
) -> None:
    rec = recording(market, "bybit")
    faults = Faults(disconnect_at=[pd.Timestamp("2024-03-20T02:30Z")])
    # A quarter of the usual speed, and a first retry of 0.1 s (three virtual minutes, 5 % of a
    # bar): the outage is long against the 1 % a bar may miss and still count as seen, and short
    # against the event-loop lag of a loaded machine (0.15 s was 18 virtual minutes at 7,200x).
    report, stats = run(
        collect(
            rec, START, tmp_path, faults=faults, speed=SPEED / 4, reconnect=Backoff(first_s=0.1)
        )
    )

    assert report.reconnects == 1 and stats.connections == 2
    # Dropped at 02:30, or later on a machine slow to backfill. The collector saw the drop and
    # its return on the venue's clock, later than they happened by its event loop's lag: the
    # bars its outage overlaps, and only those, are unknown; every other bar is whole.
    ((down, back),) = report.outages
    assert len(stats.dropped_at) == 1
    assert back >= pd.Timestamp(stats.connected_at[-1], unit="ms", tz="UTC") > down
    overlapped = set(pd.date_range(down.floor("1h"), back.floor("1h"), freq="1h"))
    unknown = [(s, bar) for s, bar, _ in report.unknown_liquidations if bar >= report.stream_from]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        bars = [bar for s, bar in unknown if s == symbol]
        assert bars and set(bars) <= overlapped
        frame = stored(tmp_path, "bybit", symbol)
        assert frame.loc[bars, LIQUIDATIONS].isna().all().all()
        whole = watched(frame, report).drop(bars)
        assert len(whole) >= 2 and whole[-1] > down
        assert_sent_totals(frame, rec, symbol, whole)


def test_messages_arriving_after_their_bar_was_stored_are_late_and_change_nothing(
    market: pd.DataFrame, tmp_path: Path
) -> None:
    rec = recording(market, "binance")
    faults = Faults(delay_every=6, delay_s=2 * 3600)  # two hours: always after the bar's write
    report, stats = run(collect(rec, START, tmp_path, faults=faults, symbols=["BTCUSDT"]))

    held = delayed_events("binance", stats)
    assert 0 < report.late <= stats.delayed <= len(held)
    frame = stored(tmp_path, "binance", "BTCUSDT")
    bars = watched(frame, report)
    expected = hourly_totals(rec, "BTCUSDT").reindex(bars, fill_value=0.0)
    for event in held:
        bar = pd.Timestamp(event.time_ms - event.time_ms % 3_600_000, unit="ms", tz="UTC")
        if bar in expected.index:
            expected.loc[bar, "liq_long_usd" if event.is_long else "liq_short_usd"] -= event.usd
    np.testing.assert_allclose(frame.loc[bars, LIQUIDATIONS], expected, rtol=1e-9)


@pytest.mark.slow
def test_a_restart_resumes_from_the_last_stored_bar_and_reports_an_unpublished_bar(
    market: pd.DataFrame, tmp_path: Path
) -> None:
    rec = recording(market, "bybit")
    first, _ = run(collect(rec, START, tmp_path, max_bars=2))
    last = stored(tmp_path, "bybit", "BTCUSDT").index[-1]

    # Down for hours; back at 08:40. The venue never publishes the 10:00 kline.
    missing = pd.Timestamp("2024-03-20T10:00Z")
    restart = "2024-03-20T08:40:00Z"
    faults = Faults(missing_bars=[missing])
    second, _ = run(collect(rec, restart, tmp_path, faults=faults, max_bars=3))
    assert second.stream_from is not None and second.stream_from > pd.Timestamp(restart)
    assert [(g.symbol, g.after, g.before) for g in second.gaps] == [
        (s, missing - HOUR, missing + HOUR) for s in ("BTCUSDT", "ETHUSDT")
    ]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        frame = stored(tmp_path, "bybit", symbol)
        assert frame.index.is_unique and frame.index.is_monotonic_increasing
        (gap,) = validate(frame.reset_index()).gaps
        assert (gap.after, gap.missing_bars) == (missing - HOUR, 1)
        new = frame.index[frame.index > last]
        assert new[0] == last + HOUR  # resumed right after the last stored bar
        assert second.bars[symbol] == len(new)
        truth = rec.markets[symbol].klines.set_index("timestamp").loc[frame.index]
        np.testing.assert_allclose(frame[KLINES], truth[KLINES], rtol=1e-12)
        # Every bar from the last stored one to the restart's (seen in part) was missed while
        # down: stored, liquidations unknown. How many depends on how far the first run's clock
        # got, which is the machine's speed, not the code's.
        missed = pd.date_range(last + HOUR, pd.Timestamp(restart).floor("1h"), freq="1h")
        down = new[new < second.stream_from.floor("1h")]
        assert len(missed) >= 2 and missed.isin(frame.index).all()
        assert frame.loc[missed.union(down), LIQUIDATIONS].isna().all().all()
        assert_sent_totals(
            frame, rec, symbol, watched(frame, first).intersection(frame.index[frame.index <= last])
        )
        assert_sent_totals(frame, rec, symbol, watched(frame, second))


def test_an_unpublished_bar_inside_one_fetch_is_kept_as_a_gap_not_a_bar_without_prices(
    market: pd.DataFrame, tmp_path: Path
) -> None:
    """A restart after the 10:00 kline was skipped backfills 09:00-12:00 in one request: the
    hole is a gap in the store, as when the bars arrive one by one (it was a row of NaN prices
    that stopped the collector)."""
    rec = recording(market, "bybit")
    missing = pd.Timestamp("2024-03-20T10:00Z")
    report, _ = run(
        collect(
            rec, "2024-03-20T12:40:00Z", tmp_path, faults=Faults(missing_bars=[missing]), max_bars=1
        )
    )
    assert [(g.symbol, g.after, g.before) for g in report.gaps] == [
        (s, missing - HOUR, missing + HOUR) for s in ("BTCUSDT", "ETHUSDT")
    ]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        frame = stored(tmp_path, "bybit", symbol)
        assert missing not in frame.index and missing + HOUR in frame.index
        assert frame[KLINES].notna().all().all()
