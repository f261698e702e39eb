"""Issue 12, service items: bounded work, empty collections, strict numbers, canonical records,
one error shape with a request id, client errors logged at INFO without tracebacks."""

from __future__ import annotations

import copy
import json
import logging

import pandas as pd
import pytest
from starlette.testclient import TestClient

from flushcast.serving import inputs
from flushcast.serving.errors import HEADER, MAX_DETAILS, ErrorBody
from flushcast.serving.requests import MAX_BARS
from tests.serving.payloads import bars, feature_row

Body = dict


@pytest.fixture(scope="module")
def needed(client: TestClient) -> int:
    return client.get("/model").json()["bars_needed"]


@pytest.fixture(scope="module")
def good(market: pd.DataFrame, needed: int) -> Body:
    return {"symbol": "BTCUSDT", "venue": "sim", "bars": bars(market, "BTCUSDT", needed + 60)}


def _refused(response, loc: list) -> dict:
    assert response.status_code == 400, response.text
    answer = response.json()
    ErrorBody.model_validate(answer)
    assert answer["detail"][0]["loc"] == loc, answer
    return answer


def test_a_span_far_beyond_the_bar_count_is_refused_before_any_feature_work(
    client: TestClient, good: Body, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,500 valid bars whose last one is in 9999 would make the feature grid ~70 million rows:
    refused, naming the bar after the gap, without building anything."""

    def never(*args, **kwargs):
        raise AssertionError("features were built for a request that should have been refused")

    monkeypatch.setattr(inputs, "build_features", never)
    body = copy.deepcopy(good)
    body["bars"][-1]["timestamp"] = "9999-12-31T23:00:00Z"
    last = len(body["bars"]) - 1
    answer = _refused(client.post("/predict", json=body), ["bars", last, "timestamp"])
    assert "span 69,9" in answer["error"] and "at most" in answer["error"]
    context = {**copy.deepcopy(good), "symbol": "ETHUSDT"}
    context["bars"][0]["timestamp"] = "1970-01-01T00:00:00Z"
    with_context = {**good, "context": [context]}
    _refused(client.post("/predict", json=with_context), ["context", 0, "bars", 1, "timestamp"])


def test_small_gaps_are_still_answered(client: TestClient, good: Body) -> None:
    body = copy.deepcopy(good)
    del body["bars"][100:130]  # a 30-hour gap inside the window
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    assert any("30 bar(s) missing" in w for w in response.json()["warnings"])


def test_a_request_holds_at_most_max_bars(client: TestClient, good: Body) -> None:
    filler = {"timestamp": "2020-01-01T00:00:00Z", "open": 1, "high": 1, "low": 1, "close": 1}
    spare = MAX_BARS - len(good["bars"]) + 1
    body = {**good, "context": [{"symbol": "ETHUSDT", "bars": [filler] * spare}]}
    answer = _refused(client.post("/predict", json=body), [])
    assert f"at most {MAX_BARS:,}" in answer["error"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"series": []}, ["series"]),
        ({"series": [{"symbol": "BTCUSDT", "bars": []}]}, ["series", 0, "bars"]),
        (
            {"table": {"columns": [], "rows": [{"symbol": "BTCUSDT", "values": []}]}},
            ["table", "columns"],
        ),
        ({"table": {"columns": ["funding_bp"], "rows": []}}, ["table", "rows"]),
        ({}, []),
    ],
)
def test_empty_collections_are_a_400(client: TestClient, body: Body, loc: list) -> None:
    _refused(client.post("/predict_batch", json=body), loc)


def test_empty_bars_to_predict_are_a_400(client: TestClient) -> None:
    _refused(client.post("/predict", json={"symbol": "BTCUSDT", "bars": []}), ["bars"])


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("bars", 5, "volume_usd"), True),
        (("bars", 5, "close"), "123.5"),
        (("bars", 6, "oi_usd"), "1e9"),
        (("top_k",), "3"),
        (("top_k",), True),
        (("explain",), "true"),
        (("explain",), 1),
    ],
)
def test_numbers_and_flags_are_strict(
    client: TestClient, good: Body, where: tuple, value: object
) -> None:
    body = copy.deepcopy(good)
    target = body
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    _refused(client.post("/predict", json=body), list(where))


def test_strict_numbers_in_feature_rows_and_batches(
    client: TestClient, table: pd.DataFrame
) -> None:
    row = {**feature_row(table, 10), "funding_bp": "1.5"}
    answer = client.post("/predict", json={"symbol": "BTCUSDT", "features": row})
    _refused(answer, ["features", "funding_bp"])
    values = list(feature_row(table, 10).values())
    batch = {
        "table": {"columns": list(row), "rows": [{"symbol": "BTCUSDT", "values": values}]},
        "last_bars": True,
    }
    _refused(client.post("/predict_batch", json=batch), ["last_bars"])


def test_a_whole_float_is_an_integer_as_json_schema_says(client: TestClient, table) -> None:
    body = {"symbol": "BTCUSDT", "features": feature_row(table, 10), "top_k": 3.0}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["horizons"][0]["explanation"]["top"]) == 3


def _records(market: pd.DataFrame, symbol: str, n: int) -> list[dict]:
    """Bars as a data scientist sends them: `frame.to_dict("records")`, via json.dumps."""
    part = market[market["symbol"] == symbol].tail(n)
    return json.loads(json.dumps(part.to_dict("records"), default=str))


def test_canonical_records_are_accepted_when_they_agree(
    client: TestClient, market: pd.DataFrame, needed: int
) -> None:
    records = _records(market, "BTCUSDT", needed)
    assert {"symbol", "venue"} <= set(records[0])
    response = client.post("/predict", json={"symbol": "BTCUSDT", "venue": "sim", "bars": records})
    assert response.status_code == 200, response.text
    plain = [{k: v for k, v in r.items() if k not in ("symbol", "venue")} for r in records]
    without = client.post("/predict", json={"symbol": "BTCUSDT", "venue": "sim", "bars": plain})
    assert response.json()["horizons"] == without.json()["horizons"]


@pytest.mark.parametrize(("field", "sent"), [("symbol", "ETHUSDT"), ("venue", "binance")])
def test_canonical_records_that_disagree_are_refused(
    client: TestClient, market: pd.DataFrame, needed: int, field: str, sent: str
) -> None:
    body = {
        "symbol": "BTCUSDT",
        "venue": "sim",
        field: sent,
        "bars": _records(market, "BTCUSDT", needed),
    }
    answer = _refused(client.post("/predict", json=body), ["bars", 0, field])
    assert sent in answer["error"]


def test_many_problems_are_capped_with_a_count(client: TestClient, good: Body) -> None:
    body = copy.deepcopy(good)
    for bar in body["bars"]:
        bar["volume"] = 1.0  # a typo in every bar
    answer = _refused(client.post("/predict", json=body), ["bars", 0, "volume"])
    assert len(answer["detail"]) == MAX_DETAILS
    assert answer["error_count"] == len(body["bars"])
    assert f"and {len(body['bars']) - 1} more problems" in answer["error"]


def test_client_errors_carry_a_request_id_and_log_one_info_line(
    client: TestClient, good: Body, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    schema_error = client.post("/predict", json={**good, "oops": 1})
    data_error = client.post("/predict", json={**good, "bars": good["bars"][:10]})
    guard_error = client.post("/predict", content=b"x", headers={"content-type": "text/plain"})
    ids = []
    for response in (schema_error, data_error, guard_error):
        assert 400 <= response.status_code < 500
        ErrorBody.model_validate(response.json())
        assert response.headers[HEADER] == response.json()["request_id"]
        ids.append(response.json()["request_id"])
    assert len(set(ids)) == 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    lines = [r for r in caplog.records if r.name == "flushcast.serving"]
    assert [r.levelno for r in lines] == [logging.INFO] * 3
    assert all(r.exc_info is None for r in caplog.records)
    for rid, record in zip(ids, lines, strict=True):
        assert rid in record.getMessage()
    ok = client.get("/model")
    assert ok.status_code == 200 and len(ok.headers[HEADER]) == 16


def test_report_query_errors_are_400s_in_the_same_shape(client: TestClient) -> None:
    missing = client.get("/report")
    _refused(missing, ["query", "symbol"])
    _refused(client.get("/report", params={"symbol": "BTCUSDT", "at": ""}), ["query", "at"])
