"""The service's protocol writes an answer in one piece (`serving.timeouts.Coalesced`): uvicorn
writes the status line and headers, then the body, each a system call and a TCP segment."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from flushcast.serving.timeouts import Coalesced


class Recorded:
    """A transport that records what is written to it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 9) if name == "peername" else None


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_the_writes_of_one_turn_leave_together_in_order(loop: asyncio.AbstractEventLoop) -> None:
    wire = Recorded()
    transport = Coalesced(wire, loop)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert wire.writes == []  # not before the turn ends
    loop.run_until_complete(asyncio.sleep(0))
    assert wire.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next")
    loop.run_until_complete(asyncio.sleep(0))
    assert wire.writes[1:] == [b"next"]


def test_closing_writes_what_is_pending_first(loop: asyncio.AbstractEventLoop) -> None:
    wire = Recorded()
    transport = Coalesced(wire, loop)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    transport.close()
    assert wire.writes == [b"HTTP/1.1 408 Request Timeout\r\n\r\n"]
    assert wire.closed
    loop.run_until_complete(asyncio.sleep(0))  # the scheduled flush finds nothing to do
    assert len(wire.writes) == 1
    assert transport.get_extra_info("peername") == ("127.0.0.1", 9)  # the rest: the wire's
