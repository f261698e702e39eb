"""The service's "now": wall time, or the clock of the venue a replay runs on.

Staleness is measured against it. Against a real venue that is the wall clock. A replay (the
tests' fake exchange, or the README's live session at 100x) runs its own, faster clock; with
`--clock-url VENUE=URL` the service follows it through the venue's server-time endpoint, the
way the collector does (`marketdata.collect.clock`).
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import aiohttp

from flushcast.common.errors import shorten
from flushcast.marketdata.collect.clock import ExchangeClock
from flushcast.marketdata.collect.collector import VENUES
from flushcast.marketdata.collect.rest import Backoff, JsonClient

SYNC_S = 30.0


def parse(follow: str) -> tuple[str, str]:
    """`binance=http://127.0.0.1:8901` -> ("binance", "http://127.0.0.1:8901")."""
    venue, sep, url = follow.partition("=")
    if not sep or venue not in VENUES or not url.startswith(("http://", "https://")):
        raise ValueError(
            f"clock {shorten(follow)}: expected VENUE=URL with VENUE one of {sorted(VENUES)}, "
            "e.g. binance=http://127.0.0.1:8901"
        )
    return venue, url


class ServiceClock:
    """`now()` for staleness; `sync()` (the live loop calls it) when following a venue."""

    def __init__(self, follow: str | None = None) -> None:
        self.follow = follow
        self._clock: ExchangeClock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if follow is not None:
            self._venue, self._url = parse(follow)
            # Its own loop in its own thread: callers may already be inside an event loop.
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="clock", daemon=True).start()

    def now(self) -> datetime:
        if self._clock is None:
            return datetime.now(UTC)
        return datetime.fromtimestamp(self._clock.now_ms() / 1000, UTC)

    def sync(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._sync(), self._loop).result(timeout=SYNC_S)

    async def _sync(self) -> None:
        if self._clock is None:
            # One session on this clock's own loop, kept for every later sync.
            http = JsonClient(aiohttp.ClientSession(), self._url, Backoff(0.1, attempts=2))
            venue = VENUES[self._venue]()
            self._clock = ExchangeClock(lambda: venue.server_time(http))
        await self._clock.sync()
