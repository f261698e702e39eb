"""Bad input: one 4xx body shape for every refusal, and the request id that ties it to the log.

Every 4xx answer, whoever refused the request (the body guard, BentoML's schema validation, the
data checks of `serving.inputs`, the report's query), has the body `ErrorBody`: `error` (the
first problem, readable), `detail` (at most `MAX_DETAILS` problems as `{type, loc, msg}`, `loc`
being the JSON path), `error_count` (all problems found) and `request_id`, which the
`X-Request-ID` header of every answer carries too (BentoML's own request id where it made one).

Client errors are logged once, at INFO, one line without a traceback: a client sending bad
requests cannot flood the log. BentoML's own ERROR record with a traceback for a request that
failed schema validation is dropped for that reason; server errors keep theirs.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import re
import uuid
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Loc = tuple[str | int, ...]
MAX_DETAILS = 20
"""Problems listed in a 4xx body; `error_count` says how many there were."""
HEADER = "X-Request-ID"
DATA_ERROR = "data_error"
"""`detail` type of a problem no JSON Schema can state (bar order, lookback, span, horizon)."""
LOG_CHARS = 300

log = logging.getLogger("flushcast.serving")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class ErrorDetail(BaseModel):
    type: str = Field(description="Kind of problem, e.g. `missing`, `float_type`, `data_error`.")
    loc: list[str | int] = Field(description='JSON path of the field, e.g. ["bars", 17, "high"].')
    msg: str


class ErrorBody(BaseModel):
    """The body of every 4xx answer."""

    error: str = Field(description="The first problem, with its path (`bars[17].high: ...`).")
    detail: list[ErrorDetail] = Field(max_length=MAX_DETAILS)
    error_count: int = Field(ge=1, description="Problems found; `detail` lists the first ones.")
    request_id: str = Field(description=f"Also in the `{HEADER}` header and the server log.")
    bars_needed: int | None = Field(None, description="With too few bars: how many are needed.")


def path(loc: Loc | list[str | int]) -> str:
    """A JSON path for messages: ("bars", 17, "high") -> "bars[17].high"."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def error_body(details: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An `ErrorBody` for the current request from `{type, loc, msg}` problems (first first)."""
    kept = [
        {"type": str(d.get("type", "value_error")), "loc": list(d.get("loc", ())), "msg": d["msg"]}
        for d in details[:MAX_DETAILS]
    ]
    first = kept[0]
    error = f"{path(first['loc'])}: {first['msg']}" if first["loc"] else first["msg"]
    if len(details) > 1:
        error += f" (and {len(details) - 1} more problems)"
    body = {"error": error, "detail": kept, "error_count": len(details), **extra}
    return {**body, "request_id": request_id.get()}


class InputError(ValueError):
    """A request the model cannot answer; `loc` is the JSON path of the offending field."""

    def __init__(self, message: str, loc: Loc = (), **extra: Any) -> None:
        super().__init__(f"{path(loc)}: {message}" if loc else message)
        self.message = message
        self.loc = loc
        self.extra = extra

    def response(self, status: int = 400) -> JSONResponse:
        detail = [{"type": DATA_ERROR, "loc": list(self.loc), "msg": self.message}]
        return JSONResponse(error_body(detail, **self.extra), status_code=status)


def _reshaped(body: bytes) -> dict[str, Any] | None:
    """Any 4xx JSON body (ours, BentoML's, FastAPI's) as an `ErrorBody`; None if not JSON."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, list):  # BentoML wraps some errors in a one-element list
        data = data[0] if data and isinstance(data[0], dict) else {"error": str(data)}
    if not isinstance(data, dict):
        return None
    details = data.get("detail")
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and "msg" in d for d in details
    ):
        details = []
    if not details:
        details = [{"type": "request_error", "loc": [], "msg": str(data.get("error", data))}]
    extra = {k: v for k, v in data.items() if k in ErrorBody.model_fields and k != "request_id"}
    for key in ("error", "detail", "error_count"):
        extra.pop(key, None)
    return error_body(details, **extra)


class ClientErrors:
    """Give every answer a request id; reshape, cap and log (INFO, one line) every 4xx."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_id.set(_bentoml_request_id() or uuid.uuid4().hex[:16])
        held: list[Message] = []

        async def reply(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(HEADER, request_id.get())
                if 400 <= message["status"] < 500:
                    held.append(message)
                    return
            elif held:
                held.append(message)
                if not message.get("more_body", False):
                    await self._client_error(scope, held, send)
                return
            await send(message)

        try:
            await self.app(scope, receive, reply)
        finally:
            request_id.reset(token)

    @staticmethod
    async def _client_error(scope: Scope, held: list[Message], send: Send) -> None:
        start, body = held[0], b"".join(m.get("body", b"") for m in held[1:])
        if start["status"] == 405 and (methods := documented_methods(scope["path"])):
            # Starlette names only the methods of the first route matching the path.
            MutableHeaders(scope=start)["allow"] = methods
        shaped = _reshaped(body)
        if shaped is not None:
            body = json.dumps(shaped).encode()
            headers = MutableHeaders(scope=start)
            headers["content-length"] = str(len(body))
            headers["content-type"] = "application/json"
        problem = shaped["error"] if shaped else body[:LOG_CHARS].decode(errors="replace")
        log.info(
            "client error %d on %s %s (request %s): %s",
            start["status"],
            scope["method"],
            scope["path"],
            request_id.get(),
            problem[:LOG_CHARS],
        )
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})


@functools.cache
def _documented() -> list[tuple[re.Pattern[str], str]]:
    from flushcast.serving import SPEC  # the committed spec, held equal to the served one

    paths = json.loads(SPEC.read_text())["paths"]
    return [
        (
            re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"),
            ", ".join(sorted(ops)).upper(),
        )
        for path, ops in paths.items()
    ]


def documented_methods(path: str) -> str | None:
    """The methods the spec documents for `path` (an `Allow` header value), if any."""
    return next((methods for pattern, methods in _documented() if pattern.match(path)), None)


def _bentoml_request_id() -> str | None:
    """The id BentoML puts in `X-BentoML-Request-ID` and its log lines (`span=`), if any."""
    from bentoml._internal.context import trace_context

    rid = trace_context.request_id
    return None if rid is None else format(rid, "016x")


class _NoSchemaTracebacks(logging.Filter):
    """Drop BentoML's ERROR record (with traceback) for a request that failed validation:
    `ClientErrors` logs it at INFO in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ValidationError)


def configure_logging() -> None:
    """Client errors at INFO (the server's root logger shows WARNING up only); BentoML's
    tracebacks for them dropped. Idempotent."""
    log.setLevel(logging.INFO)
    logger = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, _NoSchemaTracebacks) for f in logger.filters):
        logger.addFilter(_NoSchemaTracebacks())
