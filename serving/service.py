"""The BentoML service: the champion bundle behind /predict, /predict_batch, /explain, /model.

The service as shipped (`flushcast.service`, what `flushcast serve` and the bento run) is this
one with live operation added (`live`): its routes, its middleware, `live_operation` started in
each worker and its metrics.

The model is a class attribute, so `bentoml build` packages it and the bento needs no MLflow
registry at run time; `serving.importer` puts the champion into the BentoML store first (with
its MLflow name, version and run id, which every response carries). Start-up fails loudly if the
bundle and the feature code disagree. `/healthz` and `/readyz` are BentoML's own: a worker
answers only once it has created the service (bundle loaded and checked, a warm-up prediction
run so numba code is compiled before the first real request).

Bad input is answered with 400 and a JSON path (`bars[17].high`), in one shape whoever refused
it, with a request id, logged at INFO in one line (`serving.errors`); connections that never
finish their request are closed (`serving.timeouts`, `serving.guard`). A feature row is answered on
the worker's event loop (cheaper than a thread hand-off); raw bars and batches run in one thread
per worker, so health checks stay answered meanwhile. Model calls are single-threaded: the
parallelism comes from the workers (default 2, one per core).

`POST /predict` is answered ahead of BentoML's routing (`PredictAnswer`), like `GET /risk`:
BentoML's route machinery (its own parse of the body, the request context, routing, the response
build) and the unsampled OpenTelemetry spans (`_untraced`) cost more than the prediction of a
feature row (profile in `benchmarks/bench_serving.py`). So does the rest of BentoML's middleware
stack (request metrics, access log, a timeout task per request): `serving.front` sends POST
/predict through this module's middlewares ahead of all of it, keeping BentoML's request
metrics, access log and traffic timeout. `POST /predict_batch` is answered ahead of routing
too, so its body is parsed once (BentoML's route would parse it again). The routes stay, for
the spec; the answers are the routes'.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anyio
import bentoml
from _bentoml_sdk.service import get_current_service
from bentoml._internal.server.http.traffic import TimeoutMiddleware
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from flushcast.serving import (
    MODEL_ENV,
    ROOT,
    STORE_ENV,
    WORKERS_ENV,
    docs_page,
    front,
    openapi,
    timeouts,
)
from flushcast.serving.cors import cors_options, with_cors
from flushcast.serving.errors import ClientErrors, InputError, configure_logging, error_body
from flushcast.serving.guard import JSON, BodyGuard, validated
from flushcast.serving.loading import load_served
from flushcast.serving.requests import (
    NAME_PATTERN,
    ExplainRequest,
    PredictBatchRequest,
    PredictRequest,
)
from flushcast.serving.responses import (
    ExplainResponse,
    ModelInfo,
    PredictBatchResponse,
    PredictResponse,
)

TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2})?)?)?(Z|[+-]\d{2}:?\d{2})?$"
T = TypeVar("T")
R = TypeVar("R")
JSON_BYTES = JSON.encode()
UNEXPECTED = "An unexpected error has occurred, please check the server log."
"""A 500's body, in BentoML's words (its routes answer so)."""
log = logging.getLogger("flushcast.serving")

timeouts.install()
configure_logging()
routes = FastAPI(title="flushcast", docs_url=None, redoc_url=None, openapi_url=None)
LOOKUP_PATHS = ["/metrics", "/healthz", "/livez", "/readyz", "/risk"]
"""Paths without per-request access log, request metrics or trace (BentoML's defaults, and
/risk: a cached lookup polled by risk systems, which the logging would cost several times over)."""


def _untraced() -> list[str]:
    """Paths without traces (regexes on the URL): the lookups, and /predict while tracing is off
    (BentoML's default sample rate, 0), when its unsampled spans record nothing and still cost
    about a third of a feature row's answer. Traced again once `tracing.sample_rate` is set."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    if BentoMLContainer.tracing.sample_rate.get():
        return LOOKUP_PATHS
    return [*LOOKUP_PATHS, "/predict$"]


@routes.exception_handler(RequestValidationError)
async def _bad_query(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A bad query string is a 400 like any other bad input (FastAPI would say 422)."""
    return JSONResponse(error_body(list(exc.errors())), status_code=400)


@routes.get("/docs.json", include_in_schema=False)
def _spec() -> JSONResponse:
    """Served instead of BentoML's own spec: the amended one (`serving.openapi`)."""
    return JSONResponse(openapi.spec(Flushcast))


@routes.get(docs_page.SPEC, include_in_schema=False)
def _ui_spec() -> JSONResponse:
    """The same spec in the dialect the docs page's Swagger UI renders (`serving.openapi`)."""
    return JSONResponse(openapi.for_swagger_ui(openapi.spec(Flushcast)))


@routes.get("/", include_in_schema=False)
def _docs() -> HTMLResponse:
    """Served instead of BentoML's page (which calls outside hosts): `serving.docs_page`."""
    info = openapi.spec(Flushcast)["info"]
    return docs_page.index(f"{info['title']} {info['version']}: API")


routes.mount(docs_page.ASSETS, docs_page.assets(), name="docs-assets")


@bentoml.service(
    name="flushcast",
    workers=int(os.environ.get(WORKERS_ENV, "2")),
    traffic={"timeout": 60},
    logging={"access": {"skip_paths": LOOKUP_PATHS}},
    tracing={"excluded_urls": _untraced()},
)
@bentoml.asgi_app(routes, path="/")
class Flushcast:
    """Calibrated probabilities of a leverage flush per horizon, with exact reasons."""

    model = bentoml.models.BentoModel(os.environ.get(MODEL_ENV, "flushcast:latest"))
    live_operation: ClassVar[Callable[[Any], Any] | None] = None
    """Starts a worker's live operation, or says it is off (None): `flushcast.service` sets
    it to `live.engine.Live.start`. Its state is `self.live`."""

    def __init__(self) -> None:
        served = load_served(_bento_model() or self.model)
        self.predictor = served.predictor
        self.walk_forward = served.walk_forward
        self.limiter = anyio.CapacityLimiter(1)
        """One heavy request at a time per worker: they are CPU-bound and share one GIL."""
        start = type(self).live_operation
        self.live = start(self) if start is not None else None
        gc.collect()
        gc.freeze()  # the start-up heap (~300k objects) is never garbage: stop rescanning it

    def __metrics__(self, content: str) -> str:
        """BentoML's metrics, then live operation's (`live.metrics`)."""
        return content if self.live is None else content + self.live.metrics_text()

    @bentoml.api(route="/predict")
    async def predict(self, request: PredictRequest, /) -> PredictResponse:
        """Flush probability, risk band, direction and top reasons per horizon for one symbol."""
        return await self.answer_predict(request)

    async def answer_predict(self, request: PredictRequest) -> PredictResponse:
        """The answer of POST /predict, for the route and for `PredictAnswer`."""
        return await self._answer(self.predictor.predict, request, cheap=request.bars is None)

    @bentoml.api(route="/predict_batch")
    async def predict_batch(self, request: PredictBatchRequest, /) -> PredictBatchResponse:
        """Predictions for many series (features built together) or a feature table."""
        return await self.answer_predict_batch(request)

    async def answer_predict_batch(self, request: PredictBatchRequest) -> PredictBatchResponse:
        """The answer of POST /predict_batch, for the route and for `PredictAnswer`."""
        return await self._answer(self.predictor.predict_batch, request, cheap=False)

    @bentoml.api(route="/explain")
    async def explain(self, request: ExplainRequest, /) -> ExplainResponse:
        """Every input's SHAP contribution (log-odds) and the probability, per horizon."""
        return await self._answer(self.predictor.explain, request, cheap=request.bars is None)

    async def _answer(self, handle: Callable[[T], R], request: T, cheap: bool) -> R:
        """A feature row costs less than a thread hand-off, so it runs on the event loop;
        building features or a batch runs in a thread, keeping health checks answered."""
        try:
            if cheap:
                return handle(request)
            return await anyio.to_thread.run_sync(handle, request, limiter=self.limiter)
        except InputError as exc:
            return exc.response()  # type: ignore[return-value]

    @routes.get("/model", response_model=ModelInfo, tags=["Service APIs"])
    def model_info(self) -> ModelInfo:
        """Features, lookbacks, horizons, label definition, training span, walk-forward metrics."""
        return self.predictor.info()

    @routes.get("/report", response_class=HTMLResponse, tags=["Service APIs"])
    def report(
        self,
        symbol: str = Query(
            min_length=1,
            max_length=64,
            pattern=NAME_PATTERN,
            description="A symbol of the market store (400 if it has no bars of it).",
        ),
        at: str | None = Query(
            None,
            pattern=TIME_PATTERN,
            description="Open time of the bar to report on, ISO 8601, UTC unless it says "
            "(default: the latest bar).",
        ),
        venue: str | None = Query(None, min_length=1, max_length=64, pattern=NAME_PATTERN),
    ):
        """The trader report for `symbol` as self-contained HTML, from the market store."""
        from flushcast.marketdata.store import MarketStore
        from flushcast.reporting import ReportError, render_report

        store = Path(os.environ.get(STORE_ENV, ROOT / "demo-store"))
        frame = MarketStore(store).read()
        if frame.empty:  # the server's problem, not the client's
            message = f"no market data in {store} (set {STORE_ENV})"
            return JSONResponse({"error": message}, status_code=503)
        try:
            page = render_report(
                self.predictor.model,
                frame,
                symbol,
                at=at,
                venue=venue,
                walk_forward=self.walk_forward,
                live=self.live.monitor if self.live else None,
            )
        except ReportError as exc:
            return InputError(exc.problem, ("query", exc.field)).response()
        return HTMLResponse(page)


class PredictAnswer:
    """Answers POST /predict and /predict_batch ahead of routing, as the routes would (see the
    module doc): the request validated from the guard's parse (BentoML's route would parse the
    body again: 10 ms of a 1,000-row batch), `Flushcast.answer_predict` or
    `answer_predict_batch`, its JSON; a refused body is a 400 with BentoML's error shape
    (`ClientErrors` reshapes it like any other). With CORS configured the answer carries
    BentoML's CORS headers (`serving.cors`).

    Ahead of BentoML's whole stack (`serving.front`) it is given BentoML's traffic timeout, and
    applies it with BentoML's own middleware to requests that wait for a thread (raw bars): a
    feature row is answered on the event loop without yielding, where no deadline can fire, so
    it is spared the timeout's task and future."""

    ANSWERED: ClassVar[dict[str, tuple[type[BaseModel], str]]] = {
        "/predict": (PredictRequest, "answer_predict"),
        "/predict_batch": (PredictBatchRequest, "answer_predict_batch"),
    }

    def __init__(self, app: ASGIApp, timeout: float | None = None) -> None:
        self.app = app
        self.answer = with_cors(self._answer, cors_options())
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in self.ANSWERED
        ):
            await self.app(scope, receive, send)
            return
        await self.answer(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        model, method = self.ANSWERED[scope["path"]]
        message = await receive()  # the guard's replay: the whole body in one message
        body = message.get("body", b"")
        try:
            request = validated(model, scope, body)
        except ValidationError as exc:
            await _refusal(exc)(scope, receive, send)
            return
        respond = functools.partial(_respond, method, request)
        cheap = isinstance(request, PredictRequest) and request.bars is None
        if self.timeout is not None and not cheap:
            respond = TimeoutMiddleware(respond, timeout=self.timeout)
        await respond(scope, receive, send)


async def _respond(
    method: str, request: BaseModel, scope: Scope, receive: Receive, send: Send
) -> None:
    """The answer to a valid `request`, as the route gives it."""
    try:
        answer = await getattr(get_current_service(), method)(request)
    except ValidationError as exc:
        answer = _refusal(exc)
    except Exception:
        log.exception("POST %s failed", scope["path"])
        answer = JSONResponse({"error": UNEXPECTED}, status_code=500)
    if not isinstance(answer, BaseModel):
        await answer(scope, receive, send)
        return
    content = answer.model_dump_json().encode()
    headers = [(b"content-type", JSON_BYTES), (b"content-length", b"%d" % len(content))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def _refusal(exc: ValidationError) -> JSONResponse:
    """A 400 in BentoML's error shape (`ClientErrors` reshapes it like any other)."""
    detail = exc.errors(include_context=False, include_input=False)
    return JSONResponse({"error": str(exc), "detail": detail}, status_code=400)


MIDDLEWARES = (ClientErrors, BodyGuard, PredictAnswer)
"""The service's own middlewares, outermost first: `ClientErrors` also sees the guard's
refusals, `PredictAnswer` reads the guard's parse."""


def _front_chain(app: ASGIApp, timeout: float | None) -> ASGIApp:
    """The service's middlewares POST /predict goes through ahead of BentoML's (`serving.front`):
    the same chain, the answer given BentoML's traffic timeout."""
    *outer, answer = MIDDLEWARES
    chain = answer(app, timeout=timeout)
    for middleware in reversed(outer):
        chain = middleware(chain)
    return chain


for _middleware in MIDDLEWARES:
    Flushcast.add_asgi_middleware(_middleware)
front.install(Flushcast, "/predict", _front_chain)


def _bento_model() -> bentoml.Model | None:
    """Serving a built bento: the model it recorded, whatever `latest` is in the local store."""
    if Flushcast.bento is None:
        return None
    (info,) = [model for service in Flushcast.bento.info.services for model in service.models]
    return bentoml.models.get(info.tag)
