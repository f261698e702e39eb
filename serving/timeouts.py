"""Read timeouts: a connection that never finishes its request's headers is closed.

uvicorn (which BentoML runs in each worker) closes idle keep-alive connections, but waits
forever for the rest of a request's headers, so a few hundred clients that send half a request
hold a worker's connections open indefinitely. `HeaderTimeout` is uvicorn's httptools protocol
with a deadline for the headers of each request, armed when the connection opens and again when
the next request starts. BentoML offers no setting for uvicorn's protocol class, so `install`
registers it as uvicorn's "auto" protocol in the worker (the service module calls it on import,
before the worker builds its uvicorn config). The body's deadline is `serving.guard`'s.
"""

from __future__ import annotations

import asyncio
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from flushcast.serving import READ_TIMEOUT_ENV

DEFAULT_READ_TIMEOUT = 15.0
"""Seconds a client has for a request's headers, and again for its body."""


def read_timeout() -> float:
    return float(os.environ.get(READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT))


class HeaderTimeout(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose headers take too long."""

    header_timeout = read_timeout()
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


def install() -> None:
    """Make `HeaderTimeout` the protocol uvicorn picks by default in this process."""
    from uvicorn import config

    config.HTTP_PROTOCOLS["auto"] = f"{__name__}:{HeaderTimeout.__name__}"
