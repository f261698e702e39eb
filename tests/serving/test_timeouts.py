"""Connections that never finish their request are closed: raw sockets against a loopback
uvicorn running the service's protocol and body guard, with half-second deadlines."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.responses import JSONResponse

from flushcast.serving.guard import BodyGuard
from flushcast.serving.timeouts import HeaderTimeout

pytestmark = pytest.mark.slow

DEADLINE = 0.5


class QuickHeaders(HeaderTimeout):
    header_timeout = DEADLINE


async def echo(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await JSONResponse({"ok": True})(scope, receive, send)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    app = BodyGuard(echo, timeout=DEADLINE)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=QuickHeaders, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    (sock,) = server.servers[0].sockets
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(timeout=5)


def _closed_after(
    conn: socket.socket, limit: float, start: float | None = None
) -> tuple[float | None, bytes]:
    """Seconds from `start` (default now) until the server closed `conn` (None if not by then
    plus `limit`), and what it sent before."""
    start = time.perf_counter() if start is None else start
    received = b""
    while time.perf_counter() - start < limit:
        ready, _, _ = select.select([conn], [], [], 0.05)
        if ready:
            chunk = conn.recv(65536)
            if not chunk:
                return time.perf_counter() - start, received
            received += chunk
    return None, received


@contextlib.contextmanager
def _connections(port: int, n: int) -> Iterator[list[socket.socket]]:
    conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    try:
        yield conns
    finally:
        for conn in conns:
            conn.close()


def test_unfinished_headers_are_closed_after_the_deadline(port: int) -> None:
    with _connections(port, 20) as conns:
        start = time.perf_counter()
        for conn in conns:
            conn.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        times = [_closed_after(conn, 5 * DEADLINE, start)[0] for conn in conns]
    assert all(t is not None and t >= DEADLINE * 0.9 for t in times), times


def test_a_silent_connection_is_closed_too(port: int) -> None:
    with _connections(port, 1) as (conn,):
        elapsed, _ = _closed_after(conn, 5 * DEADLINE)
    assert elapsed is not None


def test_unfinished_body_gets_408_and_is_closed(port: int) -> None:
    with _connections(port, 1) as (conn,):
        conn.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 100\r\n\r\n{"symbol'
        )
        elapsed, answer = _closed_after(conn, 5 * DEADLINE)
    assert elapsed is not None and elapsed >= DEADLINE * 0.9
    assert answer.startswith(b"HTTP/1.1 408")


def test_prompt_requests_on_a_kept_alive_connection_are_answered(port: int) -> None:
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 2\r\n\r\n{}"
    )
    with _connections(port, 1) as (conn,):
        for _ in range(2):
            conn.sendall(request)
            answer = conn.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer
            time.sleep(DEADLINE * 1.5)  # idle between requests is keep-alive, not header time
