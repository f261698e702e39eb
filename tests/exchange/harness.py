"""Run a collector against the fake exchange, and what it should have stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.marketdata.collect.collector import VENUES, Collector, CollectorConfig, CollectReport
from flushcast.marketdata.collect.rest import Backoff
from tests.exchange.recording import Recording
from tests.exchange.server import FakeExchange, Faults, Stats

SPEED = 7200.0
"""Virtual seconds per real second: an hour in half a second."""


async def collect(
    recording: Recording,
    start: str,
    store: Path,
    *,
    faults: Faults | None = None,
    symbols: list[str] | None = None,
    speed: float = SPEED,
    **config,
) -> tuple[CollectReport, Stats]:
    """One collector run against a fake exchange: backfill, then `max_bars` (4) live bars."""
    async with FakeExchange(recording, start, speed, faults) as exchange:
        settings = {
            "backfill_days": 75,
            "settle_s": 120.0,
            "max_bars": 4,
            "rest_backoff": Backoff(first_s=0.01),
            "reconnect": Backoff(first_s=0.01),
            **config,
        }
        collector = Collector(
            VENUES[recording.venue](),
            CollectorConfig(
                symbols=symbols or list(recording.markets),
                store=store,
                rest_url=exchange.url,
                **settings,
            ),
        )
        report = await collector.run()
        return report, exchange.stats


def run(coroutine):
    """Run `coroutine` on a loop of its own. Unlike `asyncio.run` it leaves the main thread's
    event-loop state as it found it: later tests (BentoML's `to_sync`) rely on that state."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def sent_usd(qty: float, price: float) -> float:
    """The notional as the fake exchange transmits it (6 and 2 decimals)."""
    return float(f"{qty:.6f}") * float(f"{price:.2f}")


def hourly_totals(recording: Recording, symbol: str) -> pd.DataFrame:
    """Per bar open (UTC): liq_long_usd, liq_short_usd of every recorded event, as sent."""
    from flushcast.marketdata.liquidations import LONG_LIQUIDATED_SIDE

    events = recording.markets[symbol].liquidations
    table = LONG_LIQUIDATED_SIDE[recording.venue]
    usd = np.array([sent_usd(q, p) for q, p in zip(events["qty"], events["price"], strict=True)])
    is_long = events["side"].map(table).to_numpy(dtype=bool)
    bar = pd.to_datetime(events["time_ms"] // 3_600_000 * 3_600_000, unit="ms", utc=True)
    frame = pd.DataFrame(
        {
            "timestamp": bar,
            "liq_long_usd": np.where(is_long, usd, 0.0),
            "liq_short_usd": np.where(is_long, 0.0, usd),
        }
    )
    return frame.groupby("timestamp").sum()


def delayed_events(venue: str, stats: Stats) -> list:
    """The liquidations in the messages the fake exchange held back."""
    parser = VENUES[venue]()
    return [event for text in stats.held for event in parser.parse(text)]
