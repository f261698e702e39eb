"""Issue 22, not yet tried: streams that never answer, or answer with hostile frames.

The collector's stream loop runs against a loopback server written for each case (the fake
exchange plays a well-behaved venue); every case must end in a reconnect with a reason, never
a hang or an exception out of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from flushcast.marketdata.collect.collector import VENUES, Collector, CollectorConfig
from flushcast.marketdata.collect.rest import Backoff
from tests.exchange.harness import run


class _Clock:
    def now_ms(self) -> int:
        return 1_710_000_000_000

    async def sync(self) -> int:
        return self.now_ms()


def collector(tmp_path: Path, url: str) -> Collector:
    config = CollectorConfig(
        symbols=["BTCUSDT"], store=tmp_path, ws_url=url, reconnect=Backoff(first_s=0.01)
    )
    made = Collector(VENUES["binance"](), config)
    made._clock = _Clock()  # type: ignore[assignment]
    return made


async def stream_for(made: Collector, seconds: float) -> None:
    """Run the stream loop for `seconds`, then stop it as `run` does."""
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(made._stream(session))
        await asyncio.sleep(seconds)
        made.stop.set()
        await asyncio.wait_for(task, 5)


async def _silent(tmp_path: Path) -> Collector:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    made = collector(tmp_path, f"ws://127.0.0.1:{port}")
    try:
        await stream_for(made, 1.0)
    finally:
        server.close()
    return made


def test_a_venue_that_accepts_and_never_answers_is_reconnected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("flushcast.marketdata.collect.collector.HANDSHAKE_S", 0.2)
    with caplog.at_level(logging.WARNING, logger="flushcast.collect"):
        made = run(_silent(tmp_path))
    assert made.report.reconnects >= 2
    assert "TimeoutError" in caplog.text


async def _hostile(tmp_path: Path, frames: list) -> Collector:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for frame in frames:
            await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        await asyncio.sleep(3600)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    made = collector(tmp_path, f"ws://127.0.0.1:{port}")
    try:
        await stream_for(made, 1.0)
    finally:
        await runner.cleanup()
    return made


def test_wrong_types_binary_and_huge_frames_are_counted_or_end_the_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frames = ['{"data": 5}', "[]", "null", '{"data": {"e": "forceOrder", "o": []}}', b"\x00\x01"]
    frames.append("x" * (10 * 1024 * 1024))  # 10 MB: past the client's 4 MB limit
    with caplog.at_level(logging.WARNING, logger="flushcast.collect"):
        made = run(_hostile(tmp_path, frames))
    assert made.report.malformed >= 5
    assert made.report.reconnects >= 1 and "stream lost (error" in caplog.text
