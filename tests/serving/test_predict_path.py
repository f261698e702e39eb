"""POST /predict answered ahead of BentoML's routing (`serving.service.PredictAnswer`): the same
answers as the route, one parse of the body, no unsampled trace spans (issue 23)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from starlette.testclient import TestClient

from flushcast.serving import service
from flushcast.serving.front import Front
from flushcast.serving.service import PredictAnswer
from tests.serving.payloads import bars, feature_row

JSON = {"content-type": "application/json"}


async def _to_the_route(self: PredictAnswer | Front, scope, receive, send) -> None:
    await self.app(scope, receive, send)


def _routed(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, /predict goes through BentoML's stack to its route, as without shortcuts."""
    monkeypatch.setattr(Front, "__call__", _to_the_route)
    monkeypatch.setattr(PredictAnswer, "__call__", _to_the_route)


def _bodies(table: pd.DataFrame, market: pd.DataFrame, needed: int) -> dict[str, bytes]:
    row = feature_row(table, 60)
    good = {"symbol": "BTCUSDT", "venue": "sim", "as_of": "2024-01-01T00:00:00Z", "features": row}
    series = {"symbol": "ETHUSDT", "venue": "sim", "bars": bars(market, "ETHUSDT", needed)}
    cases = {
        "feature row": good,
        "feature row, no explanation": {**good, "explain": False, "top_k": 2},
        "raw bars with context": {**series, "context": [{**series, "symbol": "BTCUSDT"}]},
        "too few bars (a data error)": {**series, "bars": series["bars"][-3:]},
        "features not an object": {**good, "features": []},
        "a flag that is not a flag": {**good, "explain": 1},
        "a whole float for a count": {**good, "top_k": 3.0},
        "an unknown field": {**good, "extra": 1},
        "bars and features": {**series, "features": row},
        "no symbol": {"features": row},
        "an array": [good],
    }
    name = next(iter(row)).encode()
    encoded = {case: json.dumps(body).encode() for case, body in cases.items()}
    return {
        **encoded,
        "an empty body": b"",
        "not JSON": b'{"symbol": "BTCUSDT", "features": {',
        "NaN": b'{"symbol": "BTCUSDT", "features": {"%s": NaN}}' % name,
        "a huge integer": b'{"symbol": "BTCUSDT", "features": {"%s": 1%s}}' % (name, b"0" * 400),
    }


@pytest.fixture(scope="module")
def bodies(client: TestClient, table: pd.DataFrame, market: pd.DataFrame) -> dict[str, bytes]:
    return _bodies(table, market, client.get("/model").json()["bars_needed"])


@pytest.fixture(scope="module")
def batch_bodies(client: TestClient, table: pd.DataFrame, market: pd.DataFrame) -> dict[str, bytes]:
    """/predict_batch bodies, good and refused."""
    rows = [feature_row(table, i) for i in (60, 61, 62)]
    columns = list(rows[0])
    values = [{"symbol": "BTCUSDT", "venue": "sim", "values": list(r.values())} for r in rows]
    good = {"table": {"columns": columns, "rows": values}}
    needed = client.get("/model").json()["bars_needed"]
    series = {"symbol": "ETHUSDT", "venue": "sim", "bars": bars(market, "ETHUSDT", needed)}
    cases = {
        "table": good,
        "table with explanations": {**good, "explain": True},
        "series": {"series": [series, {**series, "symbol": "BTCUSDT"}]},
        "an unknown column (a data error)": {"table": {**good["table"], "columns": ["nope"]}},
        "series and table": {**good, "series": [series]},
        "neither": {},
        "an array": [good],
    }
    return {
        **{case: json.dumps(body).encode() for case, body in cases.items()},
        "an empty body": b"",
        "not JSON": b'{"table": {',
    }


def _answer(response) -> tuple[int, str, dict]:
    body = response.json()
    body.pop("request_id", None)  # a fresh id per request
    return response.status_code, response.headers["content-type"], body


def test_predict_answers_exactly_as_the_bentoml_route(
    client: TestClient, bodies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every answer, good or refused, is the one BentoML's own /predict route gives."""
    ahead = {
        name: _answer(client.post("/predict", content=b, headers=JSON))
        for name, b in bodies.items()
    }
    _routed(monkeypatch)
    routed = {
        name: _answer(client.post("/predict", content=b, headers=JSON))
        for name, b in bodies.items()
    }
    for name in bodies:
        assert ahead[name] == routed[name], name
    statuses = {name: status for name, (status, _, _) in ahead.items()}
    answered = ["feature row", "feature row, no explanation", "raw bars with context"]
    answered.append("a whole float for a count")
    assert {name for name, status in statuses.items() if status == 200} == set(answered)
    assert all(status == 400 for name, status in statuses.items() if name not in answered)


def test_predict_batch_answers_exactly_as_the_bentoml_route(
    client: TestClient, batch_bodies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """/predict_batch, answered ahead of routing too, gives the answers its route gives."""

    def answers() -> dict[str, tuple[int, str, dict]]:
        return {
            name: _answer(client.post("/predict_batch", content=body, headers=JSON))
            for name, body in batch_bodies.items()
        }

    ahead = answers()
    _routed(monkeypatch)
    routed = answers()
    for name in batch_bodies:
        assert ahead[name] == routed[name], name
    answered = {name for name, (status, _, _) in ahead.items() if status == 200}
    assert answered == {"table", "table with explanations", "series"}
    assert all(ahead[name][0] == 400 for name in batch_bodies if name not in answered)


def test_predict_skips_bentomls_parse_of_the_body(
    client: TestClient,
    bodies: dict[str, bytes],
    batch_bodies: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard's parse is the only one: BentoML's (JSON text to the request model) is not run."""
    from _bentoml_impl.serde import JSONSerde

    parses: list[type] = []
    original = JSONSerde.deserialize_model

    def counted(self, payload, cls):
        parses.append(cls)
        return original(self, payload, cls)

    monkeypatch.setattr(JSONSerde, "deserialize_model", counted)
    assert client.post("/predict", content=bodies["feature row"], headers=JSON).status_code == 200
    batch = batch_bodies["table"]
    assert client.post("/predict_batch", content=batch, headers=JSON).status_code == 200
    assert parses == []
    assert client.post("/explain", content=bodies["feature row"], headers=JSON).status_code == 200
    assert len(parses) == 1  # the spy sees the routes that still parse


def test_predict_is_traced_only_when_tracing_samples() -> None:
    """BentoML samples no trace by default; its spans for /predict then cost without recording."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from opentelemetry.util.http import ExcludeList

    untraced = ExcludeList(service._untraced())
    assert untraced.url_disabled("http://127.0.0.1:3000/predict")
    assert not untraced.url_disabled("http://127.0.0.1:3000/predict_batch")
    assert not untraced.url_disabled("http://127.0.0.1:3000/explain")
    rate = BentoMLContainer.tracing.sample_rate
    saved = rate.get()
    rate.set(0.25)
    try:
        assert not ExcludeList(service._untraced()).url_disabled("http://127.0.0.1:3000/predict")
    finally:
        rate.set(saved)


ORIGIN = "https://desk.example"
CORS = {
    "enabled": True,
    "access_control_allow_origins": [ORIGIN],
    "access_control_allow_methods": ["GET", "POST"],
    "access_control_expose_headers": ["X-Request-ID"],
}


def _cors_headers(response) -> dict[str, str]:
    return {
        k: v for k, v in response.headers.items() if k.startswith("access-control") or k == "vary"
    }


@contextlib.contextmanager
def _configured(**config: Any) -> Iterator[None]:
    """The shipped service with `config` added to its BentoML configuration, for an app built
    meanwhile; without request metrics, which the suite's app (`client`) registered already,
    and handing the current service back to that app when done."""
    import bentoml
    from _bentoml_sdk.service import set_current_service

    from flushcast.service import Flushcast

    current = bentoml.get_current_service()
    saved = dict(Flushcast.config)
    Flushcast.config.update(config, metrics={"enabled": False})
    try:
        Flushcast.inject_config()
        yield
    finally:
        Flushcast.config.clear()
        Flushcast.config.update(saved)
        Flushcast.inject_config()
        set_current_service(current)


@pytest.fixture(scope="module")
def cors_client(client: TestClient) -> Iterator[TestClient]:
    """The shipped service's ASGI app with CORS configured (`http.cors` of its BentoML
    configuration)."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from simple_di.providers import Factory

    from flushcast.service import Flushcast

    options = BentoMLContainer.access_control_options  # memoised at the suite's first app
    with _configured(http={"cors": CORS}):
        options.set(Factory._provide(options))
        try:
            with TestClient(Flushcast.to_asgi(), raise_server_exceptions=False) as test_client:
                yield test_client
        finally:
            options.reset()


def test_answers_given_ahead_of_routing_carry_the_configured_cors_headers(
    cors_client: TestClient, bodies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /predict, GET /risk and the body guard's refusals answer before BentoML's CORS
    middleware: their answers carry the CORS headers the routes' answers carry."""
    from flushcast.live.routes import RiskAnswer

    origin = {"origin": ORIGIN}
    calls = {
        "predict": lambda: cors_client.post(
            "/predict", content=bodies["feature row"], headers={**JSON, **origin}
        ),
        "predict refused": lambda: cors_client.post(
            "/predict", content=bodies["no symbol"], headers={**JSON, **origin}
        ),
        "risk": lambda: cors_client.get("/risk/BTCUSDT", headers=origin),
        "risk of all": lambda: cors_client.get("/risk", headers=origin),
    }
    ahead = {name: call() for name, call in calls.items()}
    _routed(monkeypatch)
    monkeypatch.setattr(RiskAnswer, "__call__", _to_the_route)
    routed = {name: call() for name, call in calls.items()}
    for name in calls:
        assert ahead[name].status_code == routed[name].status_code, name
        assert _cors_headers(ahead[name]) == _cors_headers(routed[name]), name
        assert ahead[name].headers["access-control-allow-origin"] == ORIGIN, name
        assert ahead[name].headers["access-control-expose-headers"] == "X-Request-ID", name
    wrong_type = cors_client.post(
        "/predict", content=b"symbol=BTCUSDT", headers={"content-type": "text/plain", **origin}
    )
    assert wrong_type.status_code == 415
    assert wrong_type.headers["access-control-allow-origin"] == ORIGIN
    elsewhere = cors_client.get("/risk", headers={"origin": "https://other.example"})
    assert "access-control-allow-origin" not in elsewhere.headers


@pytest.mark.parametrize("path", ["/predict", "/risk/BTCUSDT"])
def test_preflight_of_the_paths_answered_ahead_is_bentomls(
    cors_client: TestClient, path: str
) -> None:
    asked = {"origin": ORIGIN, "access-control-request-method": "POST"}
    preflight = cors_client.options(path, headers=asked)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-methods"] == "GET, POST"
    refused = cors_client.options(path, headers={**asked, "origin": "https://other.example"})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


def test_predict_skips_bentomls_middleware_stack(
    client: TestClient, bodies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /predict runs none of BentoML's per-request middlewares but the access log (kept,
    below): no metrics label look-ups, no span, no timeout task, no request context."""
    from _bentoml_impl.server.app import ContextMiddleware
    from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware
    from bentoml._internal.server.http.traffic import TimeoutMiddleware
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    skipped = [RunnerTrafficMetricsMiddleware, OpenTelemetryMiddleware, TimeoutMiddleware]
    skipped.append(ContextMiddleware)
    seen: list[str] = []
    for cls in skipped:

        async def spy(self, scope, receive, send, original=cls.__call__) -> None:
            seen.append(type(self).__name__)
            await original(self, scope, receive, send)

        monkeypatch.setattr(cls, "__call__", spy)
    assert client.post("/predict", content=bodies["feature row"], headers=JSON).status_code == 200
    assert client.post("/predict", content=bodies["no symbol"], headers=JSON).status_code == 400
    assert seen == []
    assert client.get("/model").status_code == 200  # the spies see the other routes
    assert set(seen) == {cls.__name__ for cls in skipped}


def _predict_metrics() -> dict[tuple[str, str], float]:
    """BentoML's request count and duration count of /predict, by status, as /metrics shows
    them (read from the registry: in one process, without BentoML's multiprocess folder,
    /metrics itself fails; `test_live_server` reads it from a running server)."""
    from prometheus_client import REGISTRY

    found: dict[tuple[str, str], float] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.labels.get("endpoint") != "/predict":
                continue
            for kind in ("request_total", "request_duration_seconds_count"):
                if sample.name.endswith(kind):
                    key = (kind, sample.labels["http_response_code"])
                    found[key] = found.get(key, 0.0) + sample.value
    return found


def test_predict_requests_are_in_the_metrics_as_bentoml_counts_them(
    client: TestClient, bodies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """/metrics counts /predict requests and their latencies by status, in BentoML's series, as
    BentoML's own metrics middleware counts them on the route."""

    def counted() -> dict[tuple[str, str], float]:
        before = _predict_metrics()
        for name in ("feature row", "feature row", "no symbol"):
            client.post("/predict", content=bodies[name], headers=JSON)
        after = _predict_metrics()
        return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}

    ahead = counted()
    _routed(monkeypatch)
    assert ahead == counted()
    assert ahead == {
        ("request_total", "200"): 2,
        ("request_total", "400"): 1,
        ("request_duration_seconds_count", "200"): 2,
        ("request_duration_seconds_count", "400"): 1,
    }


def test_predict_is_in_the_access_log_as_bentoml_writes_it(
    client: TestClient,
    bodies: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bentoml.access")

    def logged() -> list[str]:
        caplog.clear()
        for name in ("feature row", "no symbol"):
            client.post("/predict", content=bodies[name], headers=JSON)
        lines = [r.getMessage() for r in caplog.records if r.name == "bentoml.access"]
        return [re.sub(r"[\d.]+ms$", "(latency)", line) for line in lines]

    ahead = logged()
    _routed(monkeypatch)
    assert ahead == logged()
    assert len(ahead) == 2
    assert "path=/predict" in ahead[0]
    assert "(status=200" in ahead[0]
    assert "(status=400" in ahead[1]


@pytest.fixture
def quick_timeout_client(client: TestClient) -> Iterator[TestClient]:
    """The service's ASGI app with a traffic timeout of 0.3 s (`traffic.timeout`), whose
    predictions take a second longer than they would."""
    import bentoml

    from flushcast.service import Flushcast

    with (
        _configured(traffic={"timeout": 0.3}),
        TestClient(Flushcast.to_asgi(), raise_server_exceptions=False) as test_client,
    ):
        predictor = bentoml.get_current_service().predictor
        original = predictor.predict

        def slow(request):
            time.sleep(1.0)
            return original(request)

        predictor.predict = slow
        yield test_client


def test_predict_from_bars_keeps_bentomls_traffic_timeout(
    quick_timeout_client: TestClient, bodies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that waits (raw bars, built in a thread) past the traffic timeout gets
    BentoML's 504 at the deadline, as on the route."""

    def timed_out() -> tuple[int, dict, float]:
        start = time.perf_counter()
        body = bodies["raw bars with context"]
        answer = quick_timeout_client.post("/predict", content=body, headers=JSON)
        return answer.status_code, answer.json(), time.perf_counter() - start

    status, body, seconds = timed_out()
    assert (status, body) == (504, {"error": "Not able to process the request in 0.3 seconds"})
    assert seconds < 0.9
    time.sleep(1.0)  # the abandoned prediction finishes
    _routed(monkeypatch)
    assert timed_out()[:2] == (status, body)
    time.sleep(1.0)
