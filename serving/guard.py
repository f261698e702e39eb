"""An ASGI gate in front of the API: JSON bodies only (415), bounded in size (413) and time (408).

BentoML would otherwise read any body whole into memory and parse unknown media types as JSON;
its pickle check covers one content type only. The gate reads the body itself, at most
`max_bytes`, so an oversized upload is refused before it is parsed, whatever Content-Length
claims; a body that has not arrived within `timeout` seconds is refused and its connection
closed (the headers' deadline is `serving.timeouts`'). A JSON object naming one key twice is
refused (400): parsers keep the last (or the first) value, so the sender and the service could
read two different requests from one body. The parse that finds repeated keys is the only one:
the gate leaves its result in the scope (`PARSED`) and the API validates it (`validated`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flushcast.common.errors import shorten
from flushcast.serving.cors import cors_options, with_cors
from flushcast.serving.errors import error_body
from flushcast.serving.timeouts import read_timeout

MAX_BODY_BYTES = 16 * 1024 * 1024
"""About 30 series of a full lookback with every column, or 10,000 feature-table rows."""
JSON = "application/json"
PARSED = "flushcast.json"
"""Scope key of the body as the gate parsed it (`NOT_JSON` if it is not JSON)."""
NOT_JSON = object()
M = TypeVar("M", bound=BaseModel)


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
        self.cors = cors_options()
        """Refusals carry the CORS headers a routed answer would (`serving.cors`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", JSON).split(";")[0].strip().lower()
        if media_type != JSON:
            message = f"content type {media_type!r} is not accepted; send {JSON}"
            await self._refuse(_error(415, message), scope, receive, send)
            return
        declared = headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        try:
            async with asyncio.timeout(self.timeout):  # a timer, cheaper than a cancel scope
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_bytes or not message.get("more_body", False):
                        break
        except TimeoutError:
            message = f"request body not received within {self.timeout:g} s"
            await self._refuse(_error(408, message, close=True), scope, receive, send)
            return
        if len(body) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        try:
            parsed = parse(bytes(body))
        except DuplicateKey as exc:
            message = f"the key {shorten(exc.key)} appears twice in one JSON object"
            await self._refuse(_error(400, message), scope, receive, send)
            return
        await self.app({**scope, PARSED: parsed}, _replay(bytes(body), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body exceeds {self.max_bytes} bytes; split it into several requests"
        await self._refuse(_error(413, message), scope, receive, send)

    async def _refuse(self, answer: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        await with_cors(answer, self.cors)(scope, receive, send)


class DuplicateKey(Exception):
    """Some object of the body names `key` twice."""

    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """The object of these pairs; a repeated key makes a shorter dict (then find which)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        keys = [k for k, _ in pairs]
        raise DuplicateKey(next(k for i, k in enumerate(keys) if k in keys[:i]))
    return found


_DECODER = json.JSONDecoder(object_pairs_hook=_unique)
"""`json.loads` with a hook builds a decoder per call; this one is built once."""


def parse(body: bytes) -> Any:
    """`body` as JSON (read as `json.loads` reads bytes), or `NOT_JSON` (the schema validation
    behind the gate says what is wrong with it); `DuplicateKey` if an object repeats a key."""
    try:
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (ValueError, RecursionError):
        return NOT_JSON


def validated(model: type[M], scope: Scope, body: bytes) -> M:
    """The body as `model`, validated from the gate's parse when the gate parsed an object.

    Validation of parsed JSON accepts what validation of the JSON text accepts, but words a few
    refusals differently ("a valid dictionary" for "an object"), so a refused body is validated
    again as text: its errors are the ones the API documents (BentoML validates the text, an
    empty body read as `{}`).
    """
    parsed = scope.get(PARSED, NOT_JSON)
    if isinstance(parsed, dict):
        try:
            return model.model_validate(parsed)
        except ValidationError:
            pass
    return model.model_validate_json(body or b"{}")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields the buffered body once, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
