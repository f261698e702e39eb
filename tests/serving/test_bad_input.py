"""Every kind of bad input gets a 4xx naming the field and row, and the service keeps serving."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator

import pandas as pd
import pytest
from starlette.testclient import TestClient

from flushcast.serving.guard import MAX_BODY_BYTES
from tests.serving.payloads import bars, feature_row

Body = dict


@pytest.fixture(scope="module")
def good(client: TestClient, market: pd.DataFrame) -> Body:
    needed = client.get("/model").json()["bars_needed"]
    return {"symbol": "BTCUSDT", "venue": "sim", "bars": bars(market, "BTCUSDT", needed)}


def _swap(body: Body) -> None:
    b = body["bars"]
    b[10]["timestamp"], b[11]["timestamp"] = b[11]["timestamp"], b[10]["timestamp"]


def _set(row: int, **values: object) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["bars"][row].update(values)

    return change


def _every(step: str) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        stamps = pd.date_range(end="2024-03-01", periods=len(body["bars"]), freq=step, tz="UTC")
        for bar, stamp in zip(body["bars"], stamps, strict=True):
            bar["timestamp"] = stamp.isoformat()

    return change


def _half_past(body: Body) -> None:
    last = pd.Timestamp(body["bars"][-2]["timestamp"]) + pd.Timedelta("30min")
    body["bars"][-1]["timestamp"] = last.isoformat()


def _bad_context(body: Body) -> None:
    other = {"symbol": "ETHUSDT", "venue": "sim", "bars": copy.deepcopy(body["bars"])}
    other["bars"][8].update(high=0.5, low=0.4)
    body["context"] = [other]


CASES: dict[str, tuple[Callable[[Body], None], list, str]] = {
    "non-monotonic timestamps": (_swap, ["bars", 11, "timestamp"], "not sorted"),
    "duplicate timestamps": (
        lambda b: b["bars"][20].update(timestamp=b["bars"][19]["timestamp"]),
        ["bars", 20, "timestamp"],
        "duplicate bar",
    ),
    "negative price": (_set(3, close=-5.0), ["bars", 3, "close"], "greater than 0"),
    "zero price": (_set(4, open=0), ["bars", 4, "open"], "greater than 0"),
    "high below low": (_set(5, high=1.0, low=2.0, open=1.5, close=1.5), ["bars", 5, "low"], "low"),
    "unknown top-level field": (lambda b: b.update(horizon=4), ["horizon"], "Extra inputs"),
    "unknown bar field": (_set(0, volume=1.0), ["bars", 0, "volume"], "Extra inputs"),
    "null where a price is required": (_set(7, close=None), ["bars", 7, "close"], "number"),
    "naive timestamp": (
        _set(2, timestamp="2024-01-01T00:00:00"),
        ["bars", 2, "timestamp"],
        "timezone",
    ),
    "misaligned bar": (_half_past, ["bars", -1, "timestamp"], "not aligned"),
    "too few bars": (lambda b: b.update(bars=b["bars"][-100:]), ["bars"], "needs at least"),
    "4-hour bars": (_every("4h"), ["bars", 1, "timestamp"], "4 h apart"),
    "5-minute bars": (_every("5min"), ["bars", 1, "timestamp"], "5 min apart"),
    "repeated series": (
        lambda b: b.update(context=[{k: b[k] for k in ("symbol", "venue", "bars")}]),
        ["context", 0],
        "sent twice",
    ),
    "bad context bar": (_bad_context, ["context", 0, "bars", 8, "high"], "high is below"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_bars_are_refused_with_field_and_row(client: TestClient, good: Body, case: str) -> None:
    change, loc, message = CASES[case]
    body = copy.deepcopy(good)
    change(body)
    response = client.post("/predict", json=body)
    assert response.status_code == 400, response.text
    answer = response.json()
    loc = [p + len(good["bars"]) if isinstance(p, int) and p < 0 else p for p in loc]
    found = [d["loc"] for d in answer["detail"]]
    assert any(f[: len(loc)] == loc for f in found), (found, loc)
    assert message in json.dumps(answer)


def test_too_few_bars_says_how_many_are_needed(client: TestClient, good: Body) -> None:
    answer = client.post("/predict", json={**good, "bars": good["bars"][-10:]}).json()
    assert answer["bars_needed"] == len(good["bars"])
    assert f"needs at least {len(good['bars'])}" in answer["error"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity"])
def test_non_finite_numbers_are_refused(client: TestClient, good: Body, literal: str) -> None:
    text = json.dumps(good)
    first = text.index('"close": ') + len('"close": ')
    text = text[:first] + literal + text[text.index(",", first) :]
    response = client.post("/predict", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["bars", 0, "close"]


def test_feature_row_problems_name_the_feature(client: TestClient, table: pd.DataFrame) -> None:
    row = feature_row(table, 10)
    typo = {**row, "oi_z_30": 1.0}
    answer = client.post("/predict", json={"symbol": "BTCUSDT", "features": typo}).json()
    assert ["features", "oi_z_30"] in [d["loc"] for d in answer["detail"]]
    bar = {"timestamp": "2024-01-01T00:00:00Z", "open": 1, "high": 1, "low": 1, "close": 1}
    both = {"symbol": "BTCUSDT", "features": row, "bars": [bar]}
    answer = client.post("/predict", json=both).json()
    assert "exactly one of `bars` or `features`" in answer["detail"][0]["msg"]


def test_feature_table_problems_name_column_and_row(
    client: TestClient, table: pd.DataFrame
) -> None:
    row = feature_row(table, 10)
    columns, values = list(row), list(row.values())
    rows = [{"symbol": "BTCUSDT", "values": values}, {"symbol": "BTCUSDT", "values": values[:-1]}]
    cases = [
        ({"columns": columns, "rows": rows}, ["table", "rows", 1, "values"], "values for"),
        (
            {"columns": [*columns[:-1], "mystery"], "rows": rows[:1]},
            ["table", "columns"],
            "mystery",
        ),
        ({"columns": [columns[0], *columns[:-1]], "rows": rows[:1]}, ["table", "columns"], "twice"),
    ]
    for table_body, loc, message in cases:
        response = client.post("/predict_batch", json={"table": table_body})
        assert response.status_code == 400, response.text
        assert response.json()["detail"][0]["loc"] == loc
        assert message in response.json()["error"]


def test_unknown_horizon_to_explain(client: TestClient, table: pd.DataFrame) -> None:
    body = {"symbol": "BTCUSDT", "features": feature_row(table, 10), "horizon": 5}
    response = client.post("/explain", json=body)
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["horizon"]


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[1, 2]", b'{"symbol": "BTCUSDT"}', b'{"symbol": 3, "features": {}}']
)
def test_malformed_json_is_a_400(client: TestClient, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.bentoml+pickle",
        "application/x-python-pickle",
        "text/plain",
        "multipart/form-data; boundary=x",
    ],
)
def test_other_content_types_get_415(client: TestClient, media_type: str) -> None:
    response = client.post("/predict", content=b"\x80\x04.", headers={"content-type": media_type})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_oversized_bodies_get_413(client: TestClient) -> None:
    big = b'{"symbol": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the guard counts what arrives
        yield b'{"symbol": "'
        for _ in range(17):
            yield b"x" * (1024 * 1024)

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "exceeds" in response.json()["error"]


def test_still_serving_after_bad_input(client: TestClient, good: Body) -> None:
    assert client.post("/predict", json=good).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_a_key_given_twice_is_refused(client: TestClient, good: Body) -> None:
    text = json.dumps(good)
    twice = text.replace('"symbol": "BTCUSDT"', '"symbol": "BTCUSDT", "symbol": "ETHUSDT"', 1)
    answer = client.post("/predict", content=twice, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert "'symbol' appears twice" in answer.json()["error"]
    nested = text.replace('"open":', '"high": 1, "open":', 1)  # inside the first bar
    answer = client.post("/predict", content=nested, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and "'high' appears twice" in answer.json()["error"]


@pytest.mark.parametrize(
    "symbol", ["BTC\u202eTDSU", "BTC USDT", "BTC/USDT", ".hidden", "BTCUSDT\u0301", "B" * 65]
)
def test_symbols_outside_the_documented_characters_are_refused(
    client: TestClient, good: Body, symbol: str
) -> None:
    answer = client.post("/predict", json={**good, "symbol": symbol})
    assert answer.status_code == 400 and answer.json()["detail"][0]["loc"] == ["symbol"]
