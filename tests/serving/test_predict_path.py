"""POST /predict answered ahead of BentoML's routing (`serving.service.PredictAnswer`): the same
answers as the route, one parse of the body, no unsampled trace spans (issue 23)."""

from __future__ import annotations

import json

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


def test_predict_is_routed_when_cors_is_configured() -> None:
    """BentoML's CORS middleware sits behind the service's own: with CORS on, /predict is left
    to the route, so its answers carry the CORS headers."""
    import asyncio

    from bentoml._internal.configuration.containers import BentoMLContainer

    routed: list[str] = []

    async def route(scope, receive, send) -> None:
        routed.append(scope["path"])

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
    cors = BentoMLContainer.http.cors.enabled
    saved = cors.get()
    cors.set(True)
    try:
        asyncio.run(PredictAnswer(route)(scope, None, None))
    finally:
        cors.set(saved)
    assert routed == ["/predict"]
    assert PredictAnswer(route).ahead
