"""The venue's clock, followed rather than assumed.

Bars close on the venue's time, not this machine's: a skewed local clock would ask for a bar
before the venue has closed it. `ExchangeClock` syncs with the venue's server-time endpoint and
extrapolates between syncs at the rate it measured, so a replay running at 100x (the tests' fake
exchange) is followed exactly as the real venue at 1x is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

MAX_REAL_STEP_S = 30.0
"""Longest real sleep between syncs while waiting for a time."""


class ExchangeClock:
    """`now_ms()` on the venue's clock; `sync()` asks the venue."""

    def __init__(self, fetch_ms: Callable[[], Awaitable[int]]) -> None:
        self._fetch = fetch_ms
        self._anchor: tuple[float, int] | None = None
        """(local monotonic s, venue ms) of the first sync: the rate is measured against it."""
        self._last: tuple[float, int] = (time.monotonic(), 0)
        self.rate = 1.0
        """Venue seconds per local second (1 for a real venue)."""

    async def sync(self) -> int:
        sent = time.monotonic()
        venue_ms = await self._fetch()
        local = (sent + time.monotonic()) / 2  # the answer was made half a round trip ago
        if self._anchor is None:
            self._anchor = (local, venue_ms)
        else:
            elapsed = local - self._anchor[0]
            if elapsed > 0.05:
                self.rate = max((venue_ms - self._anchor[1]) / 1000 / elapsed, 1e-3)
        self._last = (local, venue_ms)
        return venue_ms

    async def measure_rate(self, probe_s: float = 0.2) -> None:
        """A second sync `probe_s` after the first, so the rate is known before a long wait."""
        await asyncio.sleep(probe_s)
        await self.sync()

    def now_ms(self) -> int:
        local, venue_ms = self._last
        return int(venue_ms + (time.monotonic() - local) * self.rate * 1000)

    async def sleep_until(self, target_ms: int, stop: asyncio.Event | None = None) -> bool:
        """Wait until the venue's clock reaches `target_ms`; False if `stop` was set first."""
        while (remaining := target_ms - self.now_ms()) > 0:
            step = min(remaining / 1000 / self.rate, MAX_REAL_STEP_S)
            if stop is None:
                await asyncio.sleep(step)
            else:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=step)
                    return False
                except TimeoutError:
                    pass
            await self.sync()
        return True
