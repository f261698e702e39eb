"""Liquidation events to per-bar totals, with how much of each bar the stream actually saw.

A stream cannot tell "no liquidations" from "not listening", so every bar carries its coverage:
the share of it during which the websocket was connected. The collector stores totals only for
bars covered (almost) in full; the rest stay unknown. Each bar is closed once, in time order;
an event for a closed bar is late (counted, dropped: the stored total is final) and an event
seen twice is a duplicate (counted once). Only bars not yet closed are held, so memory stays
flat however long the collector runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from flushcast.marketdata.collect.events import Liquidation

HOUR_MS = 3_600_000

Outcome = Literal["counted", "duplicate", "late"]


@dataclass
class BarTotals:
    """One symbol's liquidations in one bar, as far as the stream saw them."""

    open_ms: int
    long_usd: float = 0.0
    short_usd: float = 0.0
    events: int = 0
    coverage: float = 0.0
    """Share of the bar during which the stream was connected (0 to 1)."""
    keys: set[tuple] = field(default_factory=set, repr=False)


class LiquidationBook:
    """Open bars per symbol, and the spans during which the stream was connected."""

    def __init__(self, bar_ms: int = HOUR_MS) -> None:
        self.bar_ms = bar_ms
        self._bars: dict[tuple[str, int], BarTotals] = {}
        self._closed_through: dict[str, int] = {}
        self._spans: list[list[int | None]] = []
        self.duplicates = 0
        self.late = 0
        self.last_connected: int | None = None

    def connected(self, now_ms: int) -> None:
        if not self._spans or self._spans[-1][1] is not None:
            self._spans.append([now_ms, None])
            self.last_connected = now_ms

    def disconnected(self, now_ms: int) -> None:
        if self._spans and self._spans[-1][1] is None:
            self._spans[-1][1] = now_ms

    def bar_of(self, time_ms: int) -> int:
        return time_ms - time_ms % self.bar_ms

    def add(self, event: Liquidation) -> Outcome:
        opened = self.bar_of(event.time_ms)
        if opened < self._closed_through.get(event.symbol, opened):
            self.late += 1
            return "late"
        totals = self._bars.setdefault((event.symbol, opened), BarTotals(opened))
        if event.key in totals.keys:
            self.duplicates += 1
            return "duplicate"
        totals.keys.add(event.key)
        totals.events += 1
        if event.is_long:
            totals.long_usd += event.usd
        else:
            totals.short_usd += event.usd
        return "counted"

    def coverage(self, open_ms: int, now_ms: int) -> float:
        """Share of the bar [open, open + bar) the stream was connected, as of `now_ms`."""
        end = open_ms + self.bar_ms
        seen = 0
        for start, stop in self._spans:
            stop = now_ms if stop is None else stop
            seen += max(0, min(stop, end) - max(start, open_ms))
        return seen / self.bar_ms

    def close(self, symbol: str, open_ms: int, now_ms: int) -> BarTotals:
        """The bar's totals and coverage; later events for it (or an earlier bar) are late."""
        totals = self._bars.pop((symbol, open_ms), None) or BarTotals(open_ms)
        totals.coverage = self.coverage(open_ms, now_ms)
        totals.keys = set()
        self._closed_through[symbol] = max(
            self._closed_through.get(symbol, 0), open_ms + self.bar_ms
        )
        for key in [k for k in self._bars if k[0] == symbol and k[1] < open_ms]:
            del self._bars[key]  # bars the collector skipped (it never writes them)
        self._trim()
        return totals

    def _trim(self) -> None:
        """Forget connection spans that ended before every symbol's oldest open bar."""
        if not self._closed_through:
            return
        oldest = min(self._closed_through.values())
        self._spans = [s for s in self._spans if s[1] is None or s[1] > oldest]

    @property
    def open_bars(self) -> int:
        return len(self._bars)
