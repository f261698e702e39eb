"""POST /predict answered ahead of BentoML's routing (`serving.service.PredictAnswer`): the same
answers as the route, one parse of the body, no unsampled trace spans (issue 23)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest
from starlette.testclient import TestClient

from flushcast.serving import service
from flushcast.serving.service import PredictAnswer
from tests.serving.payloads import bars, feature_row

JSON = {"content-type": "application/json"}


async def _to_the_route(self: PredictAnswer, scope, receive, send) -> None:
    await self.app(scope, receive, send)


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
    monkeypatch.setattr(PredictAnswer, "__call__", _to_the_route)
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


def test_predict_skips_bentomls_parse_of_the_body(
    client: TestClient, bodies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
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


@pytest.fixture(scope="module")
def cors_client(client: TestClient) -> Iterator[TestClient]:
    """The shipped service's ASGI app with CORS configured (`http.cors` of its BentoML
    configuration); without request metrics, which the suite's app (`client`) registered
    already, and handing the current service back to that app when done."""
    import bentoml
    from _bentoml_sdk.service import set_current_service
    from bentoml._internal.configuration.containers import BentoMLContainer
    from simple_di.providers import Factory

    from flushcast.service import Flushcast

    current = bentoml.get_current_service()
    saved = dict(Flushcast.config)
    Flushcast.config.update(http={"cors": CORS}, metrics={"enabled": False})
    options = BentoMLContainer.access_control_options  # memoised at the suite's first app
    try:
        Flushcast.inject_config()
        options.set(Factory._provide(options))
        with TestClient(Flushcast.to_asgi(), raise_server_exceptions=False) as test_client:
            yield test_client
    finally:
        options.reset()
        Flushcast.config.clear()
        Flushcast.config.update(saved)
        Flushcast.inject_config()
        set_current_service(current)


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
    monkeypatch.setattr(PredictAnswer, "__call__", _to_the_route)
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
