"""A loopback fake of Binance USD-M or Bybit v5: REST history and the liquidation stream.

It replays a `Recording` on a virtual clock that starts at `start` and runs `speed` times faster
than real time, and answers in the venue's own formats (the endpoints `marketdata.collect`
uses): klines only once closed, funding only once settled, open interest `oi_delay_s` after its
snapshot, liquidations pushed when the clock passes them to the streams connected at that time
(a real stream does not replay what a client missed). `Faults` injects what real feeds do:
streams dropped at given times, messages sent twice, held back (out of order) or malformed,
REST calls failing with 503, bars never published. Everything is deterministic and every
loop ends with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from aiohttp import WSMsgType, web

from tests.exchange.recording import Recording

HOUR_MS = 3_600_000
MALFORMED = (
    "{not json",
    "[1, 2, 3]",
    '{"e": "forceOrder", "o": {"s": "BTCUSDT", "S": "SELL", "T": 1, "z": "1", "ap": "1"}}',
    '{"data": {"e": "forceOrder", "o": {"s": "BTCUSDT", "S": "SIDEWAYS", "T": 1718000000000, '
    '"z": "0.5", "ap": "60000"}}}',
    '{"topic": "allLiquidation.BTCUSDT", "data": [{"T": 1718000000000, "s": "BTCUSDT", '
    '"S": "Buy", "v": "-3", "p": "60000"}]}',
    '{"topic": "allLiquidation.BTCUSDT", "data": [{"s": "BTCUSDT", "S": "Sell"}]}',
)
"""Bad messages of both venues' shapes: not JSON, wrong type, bad time, unknown side, negative
size, missing fields."""


@dataclass
class Faults:
    disconnect_at: list[pd.Timestamp] = field(default_factory=list)
    """Virtual times at which every open stream is closed by the server."""
    duplicate_every: int = 0
    """Every n-th event message is sent twice."""
    delay_every: int = 0
    delay_s: float = 0.0
    """Every n-th event is held back this many virtual seconds (arrives out of order)."""
    malformed_every: int = 0
    """A malformed message after every n-th event message."""
    rest_failures: int = 0
    """The first n REST calls answer 503."""
    missing_bars: list[pd.Timestamp] = field(default_factory=list)
    """Bar opens whose klines the venue never publishes."""
    oi_delay_s: float = 0.0
    """Open-interest snapshots are published this many virtual seconds after their time."""


@dataclass
class Stats:
    rest_calls: int = 0
    connections: int = 0
    messages: int = 0
    events_sent: int = 0
    disconnects: int = 0
    connected_at: list[int] = field(default_factory=list)
    """Virtual time (ms) of each stream connection."""
    dropped_at: list[int] = field(default_factory=list)
    """Virtual time (ms) of each drop of the streams."""
    held: list[str] = field(default_factory=list)
    """Messages chosen to be held back (sent late, or never if the stream ended first)."""
    delayed: int = 0
    """Held-back messages actually sent."""


def _ms(times: pd.Series) -> np.ndarray:
    return ((times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")).to_numpy(dtype="int64")


class FakeExchange:
    def __init__(
        self,
        recording: Recording,
        start: pd.Timestamp | str,
        speed: float = 1.0,
        faults: Faults | None = None,
        port: int = 0,
    ) -> None:
        self.recording = recording
        self.port = port
        self.venue = recording.venue
        self.start_ms = int(pd.Timestamp(start).value // 1_000_000)
        self.speed = speed
        self.faults = faults or Faults()
        self.stats = Stats()
        self._t0 = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._tasks: set[asyncio.Task] = set()
        self._missing = set(_ms(pd.Series(pd.to_datetime(self.faults.missing_bars, utc=True))))
        self._tables = {
            symbol: {
                "klines": (_ms(m.klines["timestamp"]), m.klines),
                "funding": (_ms(m.funding["timestamp"]), m.funding),
                "oi": (_ms(m.open_interest["timestamp"]), m.open_interest),
            }
            for symbol, m in recording.markets.items()
        }
        self._messages = {symbol: self.stream(symbol) for symbol in recording.markets}
        """Per symbol: (virtual ms, text) of its stream, built once so a connection costs
        nothing on the virtual clock."""
        self.url = ""

    # -- clock -------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.start_ms + (time.monotonic() - self._t0) * self.speed * 1000)

    async def sleep_until(self, target_ms: int) -> None:
        while (remaining := target_ms - self.now_ms()) > 0:
            await asyncio.sleep(remaining / 1000 / self.speed)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeExchange:
        app = web.Application()
        if self.venue == "binance":
            app.router.add_get("/fapi/v1/time", self._binance_time)
            app.router.add_get("/fapi/v1/klines", self._binance_klines)
            app.router.add_get("/fapi/v1/fundingRate", self._binance_funding)
            app.router.add_get("/futures/data/openInterestHist", self._binance_oi)
            app.router.add_get("/stream", self._binance_stream)
        else:
            app.router.add_get("/v5/market/time", self._bybit_time)
            app.router.add_get("/v5/market/kline", self._bybit_klines)
            app.router.add_get("/v5/market/funding/history", self._bybit_funding)
            app.router.add_get("/v5/market/open-interest", self._bybit_oi)
            app.router.add_get("/v5/public/linear", self._bybit_stream)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._t0 = time.monotonic()
        if self.faults.disconnect_at:
            self._spawn(self._disconnects())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _disconnects(self) -> None:
        """Drop every stream at each `disconnect_at`, or later, once a stream has run for 90
        virtual minutes (a loaded machine may still be backfilling at that time): the moments
        are in `stats.dropped_at`."""
        for at in sorted(self.faults.disconnect_at):
            await self.sleep_until(int(pd.Timestamp(at).value // 1_000_000))
            while not self._sockets or self.now_ms() < self.stats.connected_at[-1] + 5_400_000:
                await asyncio.sleep(0.005)
            self.stats.disconnects += 1
            self.stats.dropped_at.append(self.now_ms())
            for ws in list(self._sockets):
                await ws.close(code=1001, message=b"going away")

    # -- REST helpers ------------------------------------------------------------------------

    def _failing(self) -> bool:
        self.stats.rest_calls += 1
        return self.stats.rest_calls <= self.faults.rest_failures

    def _rows(
        self, symbol: str, kind: str, start: int, end: int, published_before: int
    ) -> pd.DataFrame:
        times, table = self._tables[symbol][kind]
        chosen = (times >= start) & (times <= end) & (times <= published_before)
        if kind == "klines":
            chosen &= ~np.isin(times, list(self._missing))
        return table[chosen].assign(ms=times[chosen])

    def _closed_klines(self, symbol: str, start: int, end: int) -> pd.DataFrame:
        return self._rows(symbol, "klines", start, end, self.now_ms() - HOUR_MS)

    def _oi(self, symbol: str, start: int, end: int) -> pd.DataFrame:
        published = self.now_ms() - int(self.faults.oi_delay_s * 1000)
        return self._rows(symbol, "oi", start, end, published)

    @staticmethod
    def _int(request: web.Request, name: str, default: int) -> int:
        value = request.query.get(name)
        return default if value is None else int(value)

    def _symbol(self, request: web.Request) -> str:
        symbol = request.query.get("symbol", "")
        if symbol not in self._tables:
            raise web.HTTPBadRequest(text=json.dumps({"code": -1121, "msg": "Invalid symbol."}))
        return symbol

    # -- Binance -----------------------------------------------------------------------------

    async def _binance_time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.now_ms()})

    async def _binance_klines(self, request: web.Request) -> web.Response:
        if self._failing():
            return web.Response(status=503, text="Service Unavailable")
        symbol = self._symbol(request)
        limit = min(self._int(request, "limit", 500), 1500)
        rows = self._closed_klines(
            symbol, self._int(request, "startTime", 0), self._int(request, "endTime", 2**62)
        ).head(limit)
        body = [
            [
                int(r.ms),
                str(r.open),
                str(r.high),
                str(r.low),
                str(r.close),
                str(r.volume_usd / r.close),
                int(r.ms) + HOUR_MS - 1,
                str(r.volume_usd),
                100,
                "0",
                str(r.taker_buy_volume_usd),
                "0",
            ]
            for r in rows.itertuples()
        ]
        return web.json_response(body)

    async def _binance_funding(self, request: web.Request) -> web.Response:
        if self._failing():
            return web.Response(status=503)
        symbol = self._symbol(request)
        limit = min(self._int(request, "limit", 100), 1000)
        rows = self._rows(
            symbol,
            "funding",
            self._int(request, "startTime", 0),
            self._int(request, "endTime", 2**62),
            self.now_ms(),
        ).head(limit)
        body = [
            {"symbol": symbol, "fundingTime": int(r.ms), "fundingRate": f"{r.rate:.8f}"}
            for r in rows.itertuples()
        ]
        return web.json_response(body)

    async def _binance_oi(self, request: web.Request) -> web.Response:
        if self._failing():
            return web.Response(status=503)
        symbol = self._symbol(request)
        limit = min(self._int(request, "limit", 30), 500)
        rows = self._oi(
            symbol, self._int(request, "startTime", 0), self._int(request, "endTime", 2**62)
        ).head(limit)
        body = [
            {
                "symbol": symbol,
                "sumOpenInterest": f"{r.oi_coin:.3f}",
                "sumOpenInterestValue": f"{r.oi_usd:.2f}",
                "timestamp": int(r.ms),
            }
            for r in rows.itertuples()
        ]
        return web.json_response(body)

    def _binance_event(self, symbol: str, event) -> str:
        t = int(event.time_ms)
        order = {
            "s": symbol,
            "S": event.side,
            "o": "LIMIT",
            "f": "IOC",
            "q": f"{event.qty:.6f}",
            "p": f"{event.price:.2f}",
            "ap": f"{event.price:.2f}",
            "X": "FILLED",
            "l": f"{event.qty:.6f}",
            "z": f"{event.qty:.6f}",
            "T": t,
        }
        data = {"e": "forceOrder", "E": t + 3, "o": order}
        return json.dumps({"stream": f"{symbol.lower()}@forceOrder", "data": data})

    async def _binance_stream(self, request: web.Request) -> web.WebSocketResponse:
        names = request.query.get("streams", "").split("/")
        symbols = [n.split("@")[0].upper() for n in names if n.endswith("@forceOrder")]
        ws, connected_at = await self._accept(request)
        messages = [m for s in symbols for m in self._messages.get(s, [])]
        await self._serve(ws, connected_at, messages, None)
        return ws

    # -- Bybit -------------------------------------------------------------------------------

    def _bybit(self, result: dict) -> web.Response:
        return web.json_response(
            {
                "retCode": 0,
                "retMsg": "OK",
                "result": result,
                "retExtInfo": {},
                "time": self.now_ms(),
            }
        )

    async def _bybit_time(self, request: web.Request) -> web.Response:
        now = self.now_ms()
        return self._bybit({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})

    async def _bybit_klines(self, request: web.Request) -> web.Response:
        if self._failing():
            return web.Response(status=503)
        symbol = self._symbol(request)
        limit = min(self._int(request, "limit", 200), 1000)
        rows = self._closed_klines(
            symbol, self._int(request, "start", 0), self._int(request, "end", 2**62)
        )
        rows = rows.iloc[::-1].head(limit)  # newest first
        klines = [
            [
                str(int(r.ms)),
                str(r.open),
                str(r.high),
                str(r.low),
                str(r.close),
                str(r.volume_usd / r.close),
                str(r.volume_usd),
            ]
            for r in rows.itertuples()
        ]
        return self._bybit({"category": "linear", "symbol": symbol, "list": klines})

    async def _bybit_funding(self, request: web.Request) -> web.Response:
        if self._failing():
            return web.Response(status=503)
        symbol = self._symbol(request)
        limit = min(self._int(request, "limit", 200), 200)
        rows = (
            self._rows(
                symbol,
                "funding",
                self._int(request, "startTime", 0),
                self._int(request, "endTime", 2**62),
                self.now_ms(),
            )
            .iloc[::-1]
            .head(limit)
        )
        items = [
            {"symbol": symbol, "fundingRate": f"{r.rate:.8f}", "fundingRateTimestamp": str(r.ms)}
            for r in rows.itertuples()
        ]
        return self._bybit({"category": "linear", "list": items})

    async def _bybit_oi(self, request: web.Request) -> web.Response:
        if self._failing():
            return web.Response(status=503)
        symbol = self._symbol(request)
        limit = min(self._int(request, "limit", 50), 200)
        rows = (
            self._oi(
                symbol, self._int(request, "startTime", 0), self._int(request, "endTime", 2**62)
            )
            .iloc[::-1]
            .head(limit)
        )
        items = [
            {
                "openInterest": f"{2 * r.oi_coin:.4f}",
                "singleOpenInterest": f"{r.oi_coin:.4f}",
                "timestamp": str(r.ms),
            }
            for r in rows.itertuples()
        ]
        return self._bybit(
            {"category": "linear", "symbol": symbol, "list": items, "nextPageCursor": ""}
        )

    def stream(self, symbol: str) -> list[tuple[int, str]]:
        """Every message of `symbol`'s liquidation stream: (virtual ms when due, text)."""
        if self.venue == "binance":
            events = self.recording.markets[symbol].liquidations.itertuples()
            return [(int(e.time_ms), self._binance_event(symbol, e)) for e in events]
        return self._bybit_batches(symbol)

    def _bybit_batches(self, symbol: str) -> list[tuple[int, str]]:
        """One message per symbol per 500 ms window, as Bybit batches its pushes."""
        events = self.recording.markets[symbol].liquidations
        batches: dict[int, list[dict]] = defaultdict(list)
        for e in events.itertuples():
            t = int(e.time_ms)
            batches[t - t % 500 + 500].append(
                {"T": t, "s": symbol, "S": e.side, "v": f"{e.qty:.6f}", "p": f"{e.price:.2f}"}
            )
        return [
            (
                at,
                json.dumps(
                    {
                        "topic": f"allLiquidation.{symbol}",
                        "type": "snapshot",
                        "ts": at,
                        "data": data,
                    }
                ),
            )
            for at, data in sorted(batches.items())
        ]

    async def _bybit_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws, connected_at = await self._accept(request)
        subscribed: asyncio.Queue[list[str]] = asyncio.Queue()

        async def control() -> None:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                request_ = json.loads(message.data)
                if request_.get("op") == "ping":
                    await ws.send_json({"success": True, "ret_msg": "pong", "op": "ping"})
                elif request_.get("op") == "subscribe":
                    topics = [str(a) for a in request_.get("args", [])]
                    await ws.send_json({"success": True, "ret_msg": "", "op": "subscribe"})
                    await subscribed.put(
                        [t.split(".", 1)[1] for t in topics if t.startswith("allLiquidation.")]
                    )

        reader = self._spawn(control())
        try:
            symbols = await asyncio.wait_for(subscribed.get(), timeout=30)
        except TimeoutError:
            await ws.close()
            return ws
        messages = [m for s in symbols for m in self._messages.get(s, [])]
        await self._serve(ws, connected_at, messages, reader)
        return ws

    # -- streams -----------------------------------------------------------------------------

    async def _accept(self, request: web.Request) -> tuple[web.WebSocketResponse, int]:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        self.stats.connections += 1
        self.stats.connected_at.append(self.now_ms())
        return ws, self.stats.connected_at[-1]

    async def _serve(
        self, ws: web.WebSocketResponse, connected_at: int, messages: list[tuple[int, str]], reader
    ) -> None:
        """Push the messages stamped after the connection opened, on the virtual clock."""
        faults = self.faults
        schedule = []
        for n, (at, text) in enumerate(sorted(messages), start=1):
            if at < connected_at:
                continue
            delayed = bool(faults.delay_every and n % faults.delay_every == 0)
            if delayed:
                self.stats.held.append(text)
            schedule.append((at + int(delayed * faults.delay_s * 1000), n, text, delayed))
        schedule.sort()
        if reader is None:
            reader = self._spawn(self._drain(ws))
        try:
            for at, n, text, delayed in schedule:
                await self.sleep_until(at)
                if ws.closed:
                    break
                self.stats.delayed += delayed
                copies = 2 if faults.duplicate_every and n % faults.duplicate_every == 0 else 1
                for _ in range(copies):
                    await ws.send_str(text)
                    self.stats.messages += 1
                self.stats.events_sent += 1
                if faults.malformed_every and n % faults.malformed_every == 0:
                    await ws.send_str(MALFORMED[(n // faults.malformed_every) % len(MALFORMED)])
            await reader  # keep the connection open until the client or a fault closes it
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            reader.cancel()
            self._sockets.discard(ws)
            with contextlib.suppress(Exception):
                await ws.close()

    @staticmethod
    async def _drain(ws: web.WebSocketResponse) -> None:
        async for _ in ws:
            pass


@contextlib.contextmanager
def in_thread(exchange: FakeExchange) -> Iterator[FakeExchange]:
    """Run `exchange` on its own event loop in a daemon thread (for subprocess clients)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stopping: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stopping
        stopping = asyncio.Event()
        async with exchange:
            ready.set()
            await stopping.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise RuntimeError("the fake exchange did not start")
    try:
        yield exchange
    finally:
        assert stopping is not None
        loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=30)
        loop.close()
