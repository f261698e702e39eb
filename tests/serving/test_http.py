"""The ASGI app `bentoml serve` runs, through a test client: routes, identity, the spec."""

from __future__ import annotations

import json

import pandas as pd
from starlette.testclient import TestClient

from flushcast.serving import SPEC
from tests.serving.payloads import bars, feature_row
from tests.serving.sandbox import Sandbox


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_every_answer_names_the_model(
    client: TestClient, sandbox: Sandbox, table: pd.DataFrame
) -> None:
    info = client.get("/model").json()
    identity = info["model"]
    assert identity["model_name"] == "flushcast" and identity["run_id"]
    assert info["bars_needed"] > 0 and info["evaluation"] == {}
    request = {"symbol": "BTCUSDT", "features": feature_row(table, 50)}
    for path in ("/predict", "/explain"):
        assert client.post(path, json=request).json()["model"] == identity
    batch = {
        "table": {
            "columns": list(request["features"]),
            "rows": [{"symbol": "BTCUSDT", "values": list(request["features"].values())}],
        }
    }
    assert client.post("/predict_batch", json=batch).json()["model"] == identity
    import bentoml

    assert bentoml.models.get(sandbox.tag).info.metadata["run_id"] == identity["run_id"]


def test_predict_from_bars_over_http(client: TestClient, market: pd.DataFrame) -> None:
    needed = client.get("/model").json()["bars_needed"]
    body = {"symbol": "BTCUSDT", "venue": "sim", "bars": bars(market, "BTCUSDT", needed)}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["as_of"] == body["bars"][-1]["timestamp"].replace(".000", "")
    for horizon in answer["horizons"]:
        assert 0 < horizon["p_flush"] < 1
        assert horizon["risk_band"] in ("low", "elevated", "high", "extreme")
        assert len(horizon["explanation"]["top"]) == 5


def test_served_spec_is_the_committed_spec(client: TestClient) -> None:
    """Regenerate with `python -m flushcast.service` when a request or response model changes."""
    served = client.get("/docs.json").json()
    assert served == json.loads(SPEC.read_text())
    assert {"/predict", "/predict_batch", "/explain", "/model", "/healthz", "/readyz"} <= set(
        served["paths"]
    )


def test_the_example_request_answers_cleanly(client: TestClient, sandbox: Sandbox) -> None:
    """The README's curl body (sent without a content type: JSON is the default)."""
    answer = client.post("/predict", content=sandbox.request.read_bytes()).json()
    assert [h["horizon_hours"] for h in answer["horizons"]] == [4, 12]
    sent = json.loads(sandbox.request.read_text())["as_of"]
    assert pd.Timestamp(answer["as_of"]) == pd.Timestamp(sent)
    (warning,) = [w for w in answer["warnings"] if "features missing" in w]
    assert "funding_spread_venues_bp" in warning
    assert not any("reads them as 0" in w for w in answer["warnings"])


def test_report_page_and_its_bad_input(client: TestClient) -> None:
    page = client.get("/report", params={"symbol": "BTCUSDT"})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "BTCUSDT" in page.text and "data:image/png;base64," in page.text
    unknown = client.get("/report", params={"symbol": "NOPEUSDT"})
    assert unknown.status_code == 400
    assert unknown.json()["detail"][0]["loc"] == ["query", "symbol"]
    bad_time = client.get("/report", params={"symbol": "BTCUSDT", "at": "1999-01-01"})
    assert bad_time.status_code == 400 and "at" in bad_time.json()["error"]
