"""HTTP routes of live operation: /risk, /alerts, /reload, /monitor (see `live.engine`).

`GET /risk/{symbol}` is the hot path: it answers bytes the live loop prepared, with no model
call and no serialisation beyond the staleness. Routing it through FastAPI would cost more than
the answer, so `RiskAnswer`, an ASGI middleware, answers GET /risk and /risk/{symbol} before
routing; the routes below declare the same contract for the OpenAPI spec and answer the same way
(`risk_answer`) wherever the middleware is not installed. Without `--live` every route answers
503.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from flushcast.common.errors import shorten
from flushcast.live import engine
from flushcast.live.alerts import AlertConfigError, AlertRule
from flushcast.live.risk import RiskError, RiskListResponse, RiskResponse
from flushcast.serving.cors import cors_options, with_cors
from flushcast.serving.errors import InputError
from flushcast.serving.responses import ServedModel

router = APIRouter(tags=["Live operation"])
JSON_TYPE = "application/json"
ADMIN_TOKEN_ENV = "FLUSHCAST_ADMIN_TOKEN"
"""When set, /alerts, DELETE /alerts/{id} and /reload need `Authorization: Bearer <it>`."""


def admin(request: Request) -> None:
    """The admin routes' gate: open when no token is configured, else the token or 401."""
    expected = os.environ.get(ADMIN_TOKEN_ENV)
    if not expected:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        problem = {
            "type": "unauthorized",
            "loc": ["header", "authorization"],
            "msg": "this route needs the admin token: Authorization: Bearer <token>",
        }
        raise HTTPException(401, detail=[problem], headers={"www-authenticate": "Bearer"})


UNAUTHORIZED = {
    401: {"description": f"An admin token is set ({ADMIN_TOKEN_ENV}) and was not given."}
}


class ReloadResponse(BaseModel):
    previous: ServedModel
    current: ServedModel
    changed: bool


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _live() -> engine.Live:
    if engine.CURRENT is None:
        raise RiskError(
            503, "live operation is off: serve with --live DIR (see docs/operations.md)"
        )
    return engine.CURRENT


ERRORS = {
    400: {"description": "Ambiguous symbol (several venues) or bad input."},
    404: {"description": "The symbol (or venue) is not in the server's store."},
    503: {"description": "Live operation is off, nothing computed yet, or the data is too old."},
}


def risk_answer(symbol: str | None, venue: str | None) -> tuple[int, bytes]:
    """Status and JSON body of GET /risk/{symbol} (or /risk for `symbol` None)."""
    try:
        book = _live().book
        return 200, book.answer_all() if symbol is None else book.answer(symbol, venue)
    except RiskError as exc:
        return exc.status, json.dumps(exc.body).encode()


@router.get("/risk/{symbol}", response_model=RiskResponse, responses=ERRORS)
async def risk(symbol: str, venue: str | None = None) -> Response:
    """The flush risk of `symbol` now: the latest closed bar's cached prediction per horizon."""
    status, body = risk_answer(symbol, venue)
    return Response(body, status_code=status, media_type=JSON_TYPE)


@router.get("/risk", response_model=RiskListResponse, responses={503: ERRORS[503]})
async def risk_all() -> Response:
    """The cached risk of every series in the server's store."""
    status, body = risk_answer(None, None)
    return Response(body, status_code=status, media_type=JSON_TYPE)


def _risk_path(path: str) -> bool:
    """Whether `path` is /risk or /risk/{symbol} (a symbol has no slash)."""
    return path in ("/risk", "/risk/") or (path.startswith("/risk/") and "/" not in path[6:])


class RiskAnswer:
    """Answers GET /risk and /risk/{symbol}[?venue=] ahead of routing (see the module doc),
    with BentoML's CORS headers when CORS is configured (`serving.cors`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answer = with_cors(self._answer, cors_options())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and _risk_path(scope["path"]):
            await self.answer(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        symbol = None if path in ("/risk", "/risk/") else path[6:]
        venue = parse_qs(scope.get("query_string", b"").decode()).get("venue", [None])[0]
        status, body = risk_answer(symbol, venue)
        headers = [(b"content-type", JSON_TYPE.encode()), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@router.get(
    "/alerts",
    response_model=list[AlertRule],
    responses={**UNAUTHORIZED, 503: ERRORS[503]},
    dependencies=[Depends(admin)],
)
def alerts() -> Any:
    """Every alert rule: from the rules file (ids `file-N`) and created here."""
    try:
        return [r.model_dump() for r in _live().alerts.rules()]
    except RiskError as exc:
        return JSONResponse(exc.body, status_code=exc.status)


@router.post(
    "/alerts",
    status_code=201,
    response_model=AlertRule,
    responses={
        400: {"description": "An invalid rule (the field is named), or too many rules."},
        **UNAUTHORIZED,
        503: ERRORS[503],
    },
    dependencies=[Depends(admin)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {JSON_TYPE: {"schema": AlertRule.model_json_schema()}},
        }
    },
)
async def add_alert(request: Request) -> Any:
    """Create an alert rule; it is evaluated from the next closed bar on."""
    try:
        state = _live()
    except RiskError as exc:
        return JSONResponse(exc.body, status_code=exc.status)
    try:
        rule = AlertRule.model_validate_json(await request.body())
        horizons = sorted(state.service.predictor.bundle.horizons)
        created = state.alerts.add(rule, horizons)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        return InputError(message, tuple(first["loc"])).response()
    except AlertConfigError as exc:
        field, _, problem = str(exc).partition(": ")
        return InputError(problem, (field,)).response()
    return JSONResponse(created.model_dump(), status_code=201)


@router.delete(
    "/alerts/{rule_id}",
    status_code=204,
    responses={404: {"description": "No such rule."}, **UNAUTHORIZED},
    dependencies=[Depends(admin)],
)
def delete_alert(rule_id: str) -> Response:
    """Delete a rule created through this API (rules of the file are changed in the file)."""
    try:
        removed = _live().alerts.remove(rule_id)
    except RiskError as exc:
        return JSONResponse(exc.body, status_code=exc.status)
    if not removed:
        return _error(404, f"no rule {shorten(rule_id)} created through the API")
    return Response(status_code=204)


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={**UNAUTHORIZED, 503: ERRORS[503]},
    dependencies=[Depends(admin)],
)
def reload() -> Any:
    """Serve the registry's current champion in every worker, without dropping requests."""
    from flushcast.training.registry import RegistryError

    try:
        result = _live().reload()
    except RiskError as exc:
        return JSONResponse(exc.body, status_code=exc.status)
    except RegistryError as exc:
        return _error(503, f"cannot reach the champion: {exc}")
    return {k: (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in result.items()}


@router.get("/monitor", responses={503: ERRORS[503]})
def monitor() -> Any:
    """Live calibration against the walk-forward, and feature drift (see `flushcast monitor`)."""
    try:
        report = _live().monitor
    except RiskError as exc:
        return JSONResponse(exc.body, status_code=exc.status)
    if report is None:
        return _error(503, "no monitoring figures yet: they follow the first closed bar")
    return Response(json.dumps(report), media_type=JSON_TYPE)
