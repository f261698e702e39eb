"""An ASGI gate in front of the API: JSON bodies only (415), bounded in size (413) and time (408).

BentoML would otherwise read any body whole into memory and parse unknown media types as JSON;
its pickle check covers one content type only. The gate reads the body itself, at most
`max_bytes`, so an oversized upload is refused before it is parsed, whatever Content-Length
claims; a body that has not arrived within `timeout` seconds is refused and its connection
closed (the headers' deadline is `serving.timeouts`'). A JSON object naming one key twice is
refused (400): parsers keep the last (or the first) value, so the sender and the service could
read two different requests from one body.
"""

from __future__ import annotations

import json

import anyio
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import shorten
from serving.errors import error_body
from serving.timeouts import read_timeout

MAX_BODY_BYTES = 16 * 1024 * 1024
"""About 30 series of a full lookback with every column, or 10,000 feature-table rows."""
JSON = "application/json"


def _error(status: int, message: str, close: bool = False) -> JSONResponse:
    body = error_body([{"type": "request_error", "loc": ["body"], "msg": message}])
    headers = {"connection": "close"} if close else None
    return JSONResponse(body, status_code=status, headers=headers)


class BodyGuard:
    """Refuse non-JSON POST bodies (415), bodies over `max_bytes` (413) or slower than
    `timeout` seconds (408)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, timeout: float | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = read_timeout() if timeout is None else timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", JSON).split(";")[0].strip().lower()
        if media_type != JSON:
            message = f"content type {media_type!r} is not accepted; send {JSON}"
            await _error(415, message)(scope, receive, send)
            return
        declared = headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        with anyio.move_on_after(self.timeout) as deadline:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if len(body) > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
                if not message.get("more_body", False):
                    break
        if deadline.cancelled_caught:
            message = f"request body not received within {self.timeout:g} s"
            await _error(408, message, close=True)(scope, receive, send)
            return
        duplicate = duplicate_key(bytes(body))
        if duplicate is not None:
            message = f"the key {shorten(duplicate)} appears twice in one JSON object"
            await _error(400, message)(scope, receive, send)
            return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body exceeds {self.max_bytes} bytes; split it into several requests"
        await _error(413, message)(scope, receive, send)


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _Duplicate(next(k for i, k in enumerate(keys) if k in keys[:i]))
    return dict(pairs)


def duplicate_key(body: bytes) -> str | None:
    """The first key some object of `body` repeats; None if none does, or if `body` is not JSON
    (the schema validation behind the gate says what is wrong with it)."""
    try:
        json.loads(body, object_pairs_hook=_unique)
    except _Duplicate as exc:
        return exc.key
    except (ValueError, RecursionError):
        return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields the buffered body once, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
