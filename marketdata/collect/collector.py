"""The collector loop: backfill over REST, follow the liquidation stream, write each closed bar.

One asyncio task reads the websocket (reconnecting with backoff) into a `LiquidationBook`; the
main task waits on the venue's clock for each bar close (plus `settle_s`, the venue's delay in
publishing a closed bar), fetches the closed klines, open interest and funding, takes the bar's
liquidation totals from the book and writes all symbols in one store write. Every loop is
bounded by `stop`, `max_bars` or `until_ms`, so tests and benchmarks end on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd

from flushcast.common.errors import DataError
from flushcast.marketdata.collect.binance import BinanceUSDM
from flushcast.marketdata.collect.book import HOUR_MS, LiquidationBook
from flushcast.marketdata.collect.bybit import Bybit
from flushcast.marketdata.collect.clock import ExchangeClock
from flushcast.marketdata.collect.events import MessageError
from flushcast.marketdata.collect.rest import Backoff, JsonClient, VenueError
from flushcast.marketdata.collect.venue import KLINE_COLUMNS, Venue, millis_of, stamps
from flushcast.marketdata.ingest import ingest_frames
from flushcast.marketdata.merge import funding_on_bars
from flushcast.marketdata.schema import FUNDING_INTERVAL_HOURS
from flushcast.marketdata.sources import SourceFrame
from flushcast.marketdata.store import MarketStore
from flushcast.marketdata.validate import Gap

VENUES: dict[str, Callable[[], Venue]] = {"binance": BinanceUSDM, "bybit": Bybit}

FUNDING_LOOKBACK_MS = 48 * HOUR_MS
"""Settlements fetched before the first new bar: the rate in force at its close, and enough
settlements to read the venue's funding interval from their spacing."""
FUNDING_REFILL_BARS = 24
"""Stored bars whose funding is (re)supplied each write: those left unknown while a
settlement was due get it once the venue has published it."""
OI_PENDING_BARS = 6
"""Bars whose open interest was not yet published when written are retried this long."""
FUTURE_TOLERANCE_MS = HOUR_MS
"""An event stamped further ahead of the venue's clock than this is malformed (a bogus time
would otherwise open bars that never close)."""
HANDSHAKE_S = 20.0
"""Seconds a stream's websocket handshake may take. The session bounds connecting, not the
answer: a venue (or proxy) that accepts the connection and never answers would otherwise hold
the stream forever, never reconnecting; past this it is a lost connection like any other."""
LOGGED_PROBLEMS = 20
"""Malformed or late messages logged one by one; after that every 100th."""

log = logging.getLogger("flushcast.collect")


@dataclass
class CollectorConfig:
    symbols: list[str]
    store: Path
    rest_url: str | None = None
    ws_url: str | None = None
    """Default: the venue's public endpoints; with only `rest_url` given, the same host."""
    backfill_days: int = 75
    """History fetched for a symbol the store does not hold (the model needs 60 days)."""
    settle_s: float = 20.0
    """Venue seconds after a bar closes before it is fetched."""
    min_coverage: float = 0.99
    """Share of a bar the stream must have seen for its liquidation totals to be stored."""
    max_bars: int | None = None
    """Stop after this many live bars per symbol (tests, benchmarks); None runs until stopped."""
    until_ms: int | None = None
    """Stop once the venue's clock passes this time."""
    rest_backoff: Backoff = field(default_factory=Backoff)
    reconnect: Backoff = field(default_factory=lambda: Backoff(first_s=0.5, cap_s=30.0))
    stable_s: float = 60.0
    """A connection that lasted this long (real seconds) resets the reconnect backoff."""


@dataclass
class CollectReport:
    bars: dict[str, int] = field(default_factory=dict)
    """Bars written per symbol, backfill included."""
    live_bars: dict[str, int] = field(default_factory=dict)
    """Bars written after the backfill, while the stream ran."""
    events: int = 0
    duplicates: int = 0
    late: int = 0
    malformed: int = 0
    reconnects: int = 0
    rest_retries: int = 0
    gaps: list[Gap] = field(default_factory=list)
    """Runs of bars the venue published no kline for, among the bars this run wrote."""
    unknown_liquidations: list[tuple[str, pd.Timestamp, float]] = field(default_factory=list)
    """(symbol, bar, coverage) of bars stored without liquidation totals since the stream began."""
    stream_from: pd.Timestamp | None = None
    """When the stream first connected (venue time): no earlier bar has liquidation totals."""
    outages: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    """(from, to) of each time the stream was down, on the venue's clock as this collector saw
    it: from noticing the drop to being subscribed again. Bars overlapping one are the ones that
    may be stored without liquidation totals."""


def _ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)


def _stamp(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def _when(ms: int) -> str:
    return f"{_stamp(ms):%Y-%m-%d %H:%M}"


class Collector:
    """Keeps `config.symbols` of one venue current in `config.store`."""

    def __init__(self, venue: Venue, config: CollectorConfig) -> None:
        self.venue = venue
        self.config = config
        self.store = MarketStore(config.store)
        self.book = LiquidationBook()
        self.report = CollectReport()
        self.stop = asyncio.Event()
        self._last: dict[str, int | None] = {}
        self._stream_from: int | None = None
        self._symbols = set(config.symbols)
        self._pending_oi: dict[str, dict[int, float]] = {s: {} for s in config.symbols}
        """Per symbol: bar open -> close price of stored bars still lacking open interest."""
        self._http: JsonClient
        self._clock: ExchangeClock

    @property
    def rest_url(self) -> str:
        return self.config.rest_url or self.venue.rest_url

    @property
    def ws_url(self) -> str:
        if self.config.ws_url:
            return self.config.ws_url
        if self.config.rest_url:
            return self.config.rest_url.replace("https://", "wss://").replace("http://", "ws://")
        return self.venue.ws_url

    async def run(self) -> CollectReport:
        timeout = aiohttp.ClientTimeout(total=None, connect=10.0, sock_connect=10.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._http = JsonClient(session, self.rest_url, self.config.rest_backoff)
            self._clock = ExchangeClock(lambda: self.venue.server_time(self._http))
            await self._clock.sync()
            stream = asyncio.create_task(self._stream(session))
            try:
                await self._clock.measure_rate()
                await self._backfill()
                await self._follow()
            finally:
                self.stop.set()
                stream.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stream
            self.report.rest_retries = self._http.retries
        self.report.duplicates = self.book.duplicates
        self.report.late = self.book.late
        return self.report

    # -- bars --------------------------------------------------------------------------------

    def _closed_through(self) -> int:
        """Open time of the newest bar closed at least `settle_s` ago on the venue's clock."""
        now = self._clock.now_ms() - int(self.config.settle_s * 1000)
        return now - now % HOUR_MS - HOUR_MS

    def _stored_last(self, symbol: str) -> int | None:
        stored = self.store.read([symbol], self.venue.name)
        return None if stored.empty else _ms(stored["timestamp"].iat[-1])

    async def _backfill(self) -> None:
        end = self._closed_through()
        for symbol in self.config.symbols:
            self._last[symbol] = await asyncio.to_thread(self._stored_last, symbol)
        await self._write(end, live=False)

    async def _follow(self) -> None:
        config = self.config
        while not self.stop.is_set():
            if config.max_bars is not None and all(
                self.report.live_bars.get(s, 0) >= config.max_bars for s in config.symbols
            ):
                return
            if config.until_ms is not None and self._clock.now_ms() >= config.until_ms:
                return
            behind = min(
                (last if last is not None else self._closed_through())
                for last in self._last.values()
            )
            due = behind + 2 * HOUR_MS + int(config.settle_s * 1000)  # the next bar's close
            if config.until_ms is not None:
                due = min(due, config.until_ms)
            if not await self._clock.sleep_until(due, self.stop):
                return
            if not await self._write(self._closed_through(), live=True):
                # Nothing published yet: wait another settle period before asking again.
                await self._clock.sleep_until(
                    self._clock.now_ms() + int(config.settle_s * 1000), self.stop
                )

    async def _write(self, end: int, live: bool) -> bool:
        """Fetch and store every bar after each symbol's last one up to `end`; any written?"""
        frames: list[SourceFrame] = []
        news: dict[str, list[int]] = {}
        for symbol in self.config.symbols:
            last = self._last[symbol]
            start = (
                last + HOUR_MS
                if last is not None
                else end - (self.config.backfill_days * 24 - 1) * HOUR_MS
            )
            if start > end:
                continue
            try:
                parts, opens = await self._fetch(symbol, start, end, live)
            except VenueError as exc:
                log.warning("%s %s: %s; retrying at the next bar", symbol, self.venue.name, exc)
                continue
            if opens:
                frames += parts
                news[symbol] = opens
        if not news:
            return False
        try:
            report = await asyncio.to_thread(ingest_frames, frames, self.store)
        except DataError as exc:
            log.error("%s: not stored: %s", self.venue.name, exc)
            self.stop.set()
            raise
        for symbol, opens in news.items():
            first, last = opens[0], opens[-1]
            self._last[symbol] = last
            self.report.bars[symbol] = self.report.bars.get(symbol, 0) + len(opens)
            if live:
                self.report.live_bars[symbol] = self.report.live_bars.get(symbol, 0) + len(opens)
            else:
                log.info(
                    "%s %s: backfilled bars have no liquidation totals (a stream sees only what "
                    "happens while it runs; ingest an export for the history)",
                    symbol, self.venue.name,
                )  # fmt: skip
            dataset = next(d for d in report.datasets if d.symbol == symbol)
            new_gaps = [g for g in dataset.gaps if _ms(g.before) >= first]
            for gap in new_gaps:
                log.warning(
                    "%s %s: no kline for %d bar(s) between %s and %s: kept as a gap",
                    symbol, self.venue.name, gap.missing_bars, f"{gap.after:%Y-%m-%d %H:%M}",
                    f"{gap.before:%Y-%m-%d %H:%M}",
                )  # fmt: skip
            self.report.gaps += new_gaps
            log.info(
                "%s %s: stored %d bar(s) %s → %s",
                symbol, self.venue.name, len(opens), _when(first), _when(last),
            )  # fmt: skip
        return True

    async def _fetch(
        self, symbol: str, start: int, end: int, live: bool
    ) -> tuple[list[SourceFrame], list[int]]:
        """The SourceFrames of `symbol`'s bars opening in [start, end] and the opens stored."""
        venue, sources = self.venue, self.venue.sources
        klines = await venue.klines(self._http, symbol, start, end)
        if klines.empty:
            return [], []
        opens = millis_of(klines["timestamp"])
        # Only published bars: a kline the venue skipped stays a gap in the store (a row of
        # missing prices would be refused), whether it falls inside one request or between two.
        grid = list(opens)
        index = pd.DatetimeIndex(stamps(grid))
        bars = klines.set_index("timestamp").reindex(index)
        liquidations = self._liquidations(symbol, grid, live)
        pending = self._pending_oi[symbol]
        oi_from = min([*pending, grid[0]])
        snapshots = await venue.open_interest(self._http, symbol, oi_from + HOUR_MS, end + HOUR_MS)
        closes = {**pending, **dict(zip(grid, bars["close"].tolist(), strict=True))}
        oi = self._open_interest(snapshots, closes)
        for opened, close in closes.items():
            if opened not in oi and opened >= end - OI_PENDING_BARS * HOUR_MS and close == close:
                pending[opened] = close
            else:
                pending.pop(opened, None)
        settlements = await venue.funding(
            self._http, symbol, grid[0] - FUNDING_LOOKBACK_MS, end + HOUR_MS
        )
        refill = list(range(grid[0] - FUNDING_REFILL_BARS * HOUR_MS, grid[-1] + HOUR_MS, HOUR_MS))
        oi_index = sorted(oi)

        def part(kind: str, data: pd.DataFrame) -> SourceFrame:
            return SourceFrame(sources[kind], symbol, venue.name, data.reset_index(drop=True))

        frames = [
            part("klines", bars[list(KLINE_COLUMNS)].rename_axis("timestamp").reset_index()),
            part("liquidations", liquidations),
            part("funding", self._funding(settlements, refill)),
        ]
        if oi_index:
            oi_grid = list(range(oi_index[0], oi_index[-1] + HOUR_MS, HOUR_MS))
            values = [oi.get(t, np.nan) for t in oi_grid]
            oi_frame = pd.DataFrame({"timestamp": stamps(oi_grid), "oi_usd": values})
            frames.append(part("open_interest", oi_frame))
        return frames, [t for t in grid if t in set(opens)]

    @staticmethod
    def _funding(settlements: pd.DataFrame, opens: list[int]) -> pd.DataFrame:
        """The rate in force at each bar's close (`funding_on_bars`, as ingest computes it),
        left unknown from the next settlement the venue is due to publish: a bar is given a
        rate only once no later settlement at or before its close can still appear."""
        frame = pd.DataFrame({"timestamp": stamps(opens), "funding_rate": np.nan})
        if settlements.empty:
            return frame
        frame["funding_rate"] = funding_on_bars(settlements, frame["timestamp"]).to_numpy()
        spacing = settlements["timestamp"].diff().median()
        due = settlements["timestamp"].max() + (
            spacing if pd.notna(spacing) else pd.Timedelta(hours=FUNDING_INTERVAL_HOURS)
        )
        frame.loc[frame["timestamp"] + pd.Timedelta(HOUR_MS, "ms") >= due, "funding_rate"] = np.nan
        return frame

    @staticmethod
    def _open_interest(snapshots: pd.DataFrame, closes: dict[int, float]) -> dict[int, float]:
        """Bar open -> USD open interest at its close (the snapshot stamped open + 1 h)."""
        times = [t - HOUR_MS for t in millis_of(snapshots["timestamp"])]
        if "oi_usd" in snapshots:
            return dict(zip(times, snapshots["oi_usd"].tolist(), strict=True))
        coins = dict(zip(times, snapshots["oi_coin"].tolist(), strict=True))
        return {
            t: n * closes[t] for t, n in coins.items() if t in closes and closes[t] == closes[t]
        }

    def _liquidations(self, symbol: str, grid: list[int], live: bool) -> pd.DataFrame:
        """Per bar of `grid`: the stream's totals where it saw (almost) all of the bar."""
        now = self._clock.now_ms()
        long_usd, short_usd = [], []
        for opened in grid:
            totals = self.book.close(symbol, opened, now)
            if totals.coverage >= self.config.min_coverage:
                long_usd.append(totals.long_usd)
                short_usd.append(totals.short_usd)
                continue
            long_usd.append(np.nan)
            short_usd.append(np.nan)
            stream_from = self._stream_from
            if live or (stream_from is not None and opened + HOUR_MS > stream_from):
                stamp = pd.Timestamp(opened, unit="ms", tz="UTC")
                self.report.unknown_liquidations.append((symbol, stamp, totals.coverage))
                log.warning(
                    "%s %s %s: liquidations unknown (the stream saw %.0f %% of the bar)",
                    symbol, self.venue.name, _when(opened), 100 * totals.coverage,
                )  # fmt: skip
        return pd.DataFrame(
            {"timestamp": stamps(grid), "liq_long_usd": long_usd, "liq_short_usd": short_usd}
        )

    # -- stream ------------------------------------------------------------------------------

    async def _stream(self, session: aiohttp.ClientSession) -> None:
        url = self.venue.stream_url(self.ws_url, self.config.symbols)
        attempt = 0
        # When the stream was last seen to drop, until it is back (a failed reconnection
        # does not move it); None while it is up and before it first connected.
        down_from: int | None = None
        while not self.stop.is_set():
            connected_at = time.monotonic()
            problem = "closed by the venue"
            try:
                async with asyncio.timeout(HANDSHAKE_S):  # a venue that accepts, then waits
                    ws = await session.ws_connect(url, heartbeat=30.0)
                async with ws:
                    for message in self.venue.subscribe(self.config.symbols):
                        await ws.send_json(message)
                    # Coverage starts at the venue's time now, not at an extrapolation.
                    self.book.connected(back := await self._synced_now())
                    if down_from is not None:
                        self.report.outages.append((_stamp(down_from), _stamp(back)))
                        down_from = None
                    if self._stream_from is None:
                        self._stream_from = self.book.last_connected
                        self.report.stream_from = _stamp(self._stream_from)
                    log.info("%s stream connected: %s", self.venue.name, url)
                    problem = await self._read(ws)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            finally:
                now = self._clock.now_ms()
                self.book.disconnected(now)
                if down_from is None and self._stream_from is not None:
                    down_from = now
            if self.stop.is_set():
                return
            if time.monotonic() - connected_at >= self.config.stable_s:
                attempt = 0
            delay = self.config.reconnect.delay(attempt)
            attempt += 1
            self.report.reconnects += 1
            log.warning(
                "%s stream lost (%s); reconnecting in %.1f s", self.venue.name, problem, delay
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=delay)

    async def _synced_now(self) -> int:
        try:
            return await self._clock.sync()
        except VenueError:
            return self._clock.now_ms()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Read messages until the connection ends or `stop`; why it ended."""
        keepalive = None
        if self.venue.keepalive_s:
            keepalive = asyncio.create_task(self._keepalive(ws))
        stopping = asyncio.create_task(self.stop.wait())
        try:
            while True:
                receive = asyncio.create_task(ws.receive())
                done, _ = await asyncio.wait(
                    {receive, stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                if stopping in done:
                    receive.cancel()
                    await ws.close()
                    return "stopped"
                message = receive.result()
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._on_text(message.data)
                elif message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ):
                    return f"closed by the venue ({ws.close_code})"
                elif message.type == aiohttp.WSMsgType.ERROR:
                    return f"error: {ws.exception()}"
                else:
                    self._malformed(f"unexpected {message.type.name} frame", "")
        finally:
            stopping.cancel()
            if keepalive is not None:
                keepalive.cancel()

    async def _keepalive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        ping = self.venue.keepalive()
        assert self.venue.keepalive_s is not None and ping is not None
        while not ws.closed:
            await asyncio.sleep(self.venue.keepalive_s)
            await ws.send_json(ping)

    def _on_text(self, text: str) -> None:
        try:
            events = self.venue.parse(text)
        except MessageError as exc:
            self._malformed(str(exc), text)
            return
        now = self._clock.now_ms()
        for event in events:
            if event.symbol not in self._symbols:
                continue  # another symbol on a shared stream
            if event.time_ms > now + FUTURE_TOLERANCE_MS:
                self._malformed(f"event time {_when(event.time_ms)} is in the future", text)
                continue
            outcome = self.book.add(event)
            if outcome == "counted":
                self.report.events += 1
            elif outcome == "late" and self._should_log(self.book.late):
                log.warning(
                    "%s %s: late liquidation at %s dropped (its bar is already stored)",
                    event.symbol, self.venue.name, _when(event.time_ms),
                )  # fmt: skip

    def _malformed(self, problem: str, text: str) -> None:
        self.report.malformed += 1
        if self._should_log(self.report.malformed):
            log.warning(
                "%s stream: skipped a bad message (%s): %.120r", self.venue.name, problem, text
            )

    @staticmethod
    def _should_log(count: int) -> bool:
        return count <= LOGGED_PROBLEMS or count % 100 == 0
