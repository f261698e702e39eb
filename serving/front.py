"""One path answered ahead of BentoML's whole middleware stack, keeping what users see of it.

BentoML wraps a service's own ASGI middlewares in its stack: request metrics (four Prometheus
label look-ups, an in-progress gauge and a timestamp per request), OpenTelemetry (spans that
record nothing at its default sample rate of 0), the access log, a task and a future per request
for the traffic timeout; then CORS and the request context inside. For a feature row to /predict
they cost about as much CPU as the answer (profile in `benchmarks/bench_serving.py`). `Front` is
the outermost middleware of the app BentoML builds for the service (`install`): POST /predict
goes through the service's own chain (request id and client errors, body guard, the answer),
with what a user sees of BentoML's stack kept: its request metrics (the same series, their label
sets looked up once, `PathMetrics`), its access log (BentoML's middleware, configured as
BentoML configures it) and its traffic timeout (given to the chain, which applies it where a
request can wait: see `serving.service.PredictAnswer`). Everything else, and /predict itself when
BentoML's stack has more to do for it (traces sampled, a concurrency limit), goes through
BentoML's stack as before.
"""

from __future__ import annotations

from collections.abc import Callable
from timeit import default_timer
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Chain = Callable[[ASGIApp, float | None], ASGIApp]
"""The service's own middlewares for the path, over an app, given BentoML's traffic timeout."""


class PathMetrics:
    """BentoML's request metrics for one path: what `RunnerTrafficMetricsMiddleware` records (the
    request count and duration by status, requests in progress, the last request's time), into
    its own series, with the label sets looked up once instead of four times a request."""

    def __init__(self, bentoml_metrics: Any, path: str) -> None:
        from bentoml._internal.context import server_context

        if not bentoml_metrics._is_setup:
            bentoml_metrics._setup()
        self.total = bentoml_metrics.metrics_request_total
        self.duration = bentoml_metrics.metrics_request_duration
        self.labels = {
            "endpoint": path,
            "service_name": server_context.bento_name,
            "service_version": server_context.bento_version,
            "runner_name": server_context.service_name,
        }
        self.in_progress = bentoml_metrics.metrics_request_in_progress.labels(**self.labels)
        self.last_request = None
        if not path.startswith(tuple(bentoml_metrics.skip_paths)):
            self.last_request = bentoml_metrics.metrics_last_request_timestamp.labels(
                service_name=server_context.bento_name,
                service_version=server_context.bento_version,
                runner_name=server_context.service_name,
            )
        self.by_status: dict[int, tuple[Any, Any]] = {}

    def answered(self, status: int, seconds: float) -> None:
        children = self.by_status.get(status)
        if children is None:
            labels = {**self.labels, "http_response_code": status}
            children = self.total.labels(**labels), self.duration.labels(**labels)
            self.by_status[status] = children
        children[0].inc()
        children[1].observe(seconds)

    async def __call__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        start = default_timer()
        status = 0
        if self.last_request is not None:
            self.last_request.set_to_current_time()

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                self.answered(status, max(default_timer() - start, 0))
            await send(message)

        self.in_progress.inc()
        try:
            await app(scope, receive, observed)
        finally:
            self.in_progress.dec()


class Front:
    """POST `path` through `chain` with BentoML's metrics and access log; the rest to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        path: str,
        chain: Chain,
        timeout: float | None = None,
        access_log: dict[str, Any] | None = None,
    ) -> None:
        from bentoml._internal.server.http.access import AccessLogMiddleware
        from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware

        self.app = app
        self.path = path
        answer = chain(app, timeout)
        if access_log is not None:
            answer = AccessLogMiddleware(answer, **access_log)
        self.answer = answer
        self.bentoml_metrics = app if isinstance(app, RunnerTrafficMetricsMiddleware) else None
        self.metrics: PathMetrics | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self.bentoml_metrics is None:
            await self.answer(scope, receive, send)
            return
        if self.metrics is None:  # BentoML names the worker after the app is built
            self.metrics = PathMetrics(self.bentoml_metrics, self.path)
        await self.metrics(self.answer, scope, receive, send)


def front(stack: list[Middleware], path: str, chain: Chain) -> Middleware | None:
    """`Front` for BentoML's middleware `stack` (outermost first), with its timeout and access
    log settings; None when the stack must see the path: traces are sampled or requests are
    limited in number (BentoML's `MaxConcurrencyMiddleware`)."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.server.http.access import AccessLogMiddleware
    from bentoml._internal.server.http.traffic import MaxConcurrencyMiddleware, TimeoutMiddleware

    if BentoMLContainer.tracing.sample_rate.get():
        return None
    found = {entry.cls: entry.kwargs for entry in stack}
    if MaxConcurrencyMiddleware in found:
        return None
    timeout = found.get(TimeoutMiddleware, {}).get("timeout")
    access = found.get(AccessLogMiddleware)
    return Middleware(Front, path=path, chain=chain, timeout=timeout, access_log=access)


def install(service: Any, path: str, chain: Chain) -> None:
    """Put `Front` for `path` outermost in the app BentoML builds for `service` (`to_asgi`, what
    `bentoml serve` runs in each worker). BentoML has no setting for a middleware outside its
    own, so its app factory is replaced by a subclass that adds one for this service."""
    from _bentoml_impl.server import app as server

    base = server.ServiceAppFactory

    class FrontedApp(base):  # type: ignore[misc, valid-type]
        @property
        def middlewares(self) -> list[Middleware]:
            stack = super().middlewares
            if self.service is not service or (entry := front(stack, path, chain)) is None:
                return stack
            return [entry, *stack]

    server.ServiceAppFactory = FrontedApp  # type: ignore[misc]
