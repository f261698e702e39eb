"""Live operation in-process: /risk from the server's store, bar by bar, the prediction log, the
monitoring figures, metrics and the report section.

The service is instantiated here with live operation on, and its routes are called through the
same ASGI pieces `bentoml serve` stacks (`RiskAnswer` in front of the FastAPI routes); BentoML
allows one full ASGI app per process, which the session's `client` fixture holds. The real
stack, two workers and all, is tested in `test_live_server.py`.

The store starts six bars short of the sandbox market; tests append bars and call the live loop's
`tick` themselves (the background thread is set to wait an hour), so every step is deterministic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from flushcast.live import engine as live
from flushcast.live.engine import LIVE_ENV, PREDICTIONS, LiveConfig
from flushcast.live.predictions_log import inputs_hash, read_log
from flushcast.marketdata.schema import BAR
from flushcast.marketdata.store import MarketStore
from flushcast.serving.requests import PredictRequest, Series
from flushcast.training.labels import LabelSpec, flush_column, make_labels
from tests.serving.payloads import bars, feature_row
from tests.serving.sandbox import SANDBOX_IDENTITY, Sandbox

HELD_BACK = 6


@pytest.fixture(scope="module")
def setup(
    sandbox: Sandbox, market: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, live.Live, Path]]:
    from _bentoml_sdk.service import get_current_service, set_current_service

    from flushcast.live.routes import RiskAnswer
    from flushcast.service import Flushcast
    from flushcast.serving.service import routes

    folder = tmp_path_factory.mktemp("live")
    store = folder / "store"
    last = market["timestamp"].max()
    MarketStore(store).write(market[market["timestamp"] <= last - HELD_BACK * BAR], {})
    year = 365 * 24 * 3600.0  # the sandbox market is of 2024: never stale by the wall clock
    LiveConfig(str(store), stale_after_s=10 * year, stale_limit_s=20 * year, poll_s=3600).save(
        folder / "live"
    )
    os.environ[LIVE_ENV] = str(folder / "live")
    try:
        previous = get_current_service()
    except Exception:
        previous = None
    try:
        service = Flushcast()
        set_current_service(service)  # what `bentoml serve` does; /report's view reads it
        state = service.live
        assert state is not None and live.CURRENT is state
        with TestClient(RiskAnswer(routes), raise_server_exceptions=False) as client:
            yield client, state, store
        state.close()
    finally:
        del os.environ[LIVE_ENV]
        live.CURRENT = None
        set_current_service(previous)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in exposition text."""
    inside = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"flushcast_{name}{{{inside}}} "
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


def append(store: Path, market: pd.DataFrame, upto: pd.Timestamp) -> None:
    MarketStore(store).write(market[market["timestamp"] <= upto], {})


def test_risk_is_the_predict_answer_for_the_latest_stored_bars(setup, market) -> None:
    client, state, store = setup
    stored = MarketStore(store).read()
    lookback = state.service.predictor.bundle.max_lookback
    answer = client.get("/risk/ETHUSDT")
    assert answer.status_code == 200
    body = answer.json()
    as_of = stored["timestamp"].max()
    assert pd.Timestamp(body["as_of"]) == as_of
    assert pd.Timestamp(body["bar_close"]) == as_of + BAR
    assert body["staleness"]["state"] == "fresh"
    assert body["model"] == {**SANDBOX_IDENTITY, "promoted": True}
    btc = Series(symbol="BTCUSDT", venue="sim", bars=bars(stored, "BTCUSDT", lookback))
    request = PredictRequest(
        symbol="ETHUSDT", venue="sim", bars=bars(stored, "ETHUSDT", lookback), context=[btc]
    )
    expected = state.service.predictor.predict(request)
    assert [h["p_flush"] for h in body["horizons"]] == pytest.approx(
        [h.p_flush for h in expected.horizons], rel=1e-12
    )
    assert [h["risk_band"] for h in body["horizons"]] == [h.risk_band for h in expected.horizons]


def test_risk_follows_the_store_bar_by_bar_and_logs_each_bar_once(setup, market) -> None:
    client, state, store = setup
    before = pd.Timestamp(client.get("/risk/BTCUSDT").json()["as_of"])
    logged = read_log(state.folder / PREDICTIONS)
    for step in range(1, 3):
        append(store, market, before + step * BAR)
        state.tick()
        state.tick()  # nothing new: nothing computed or logged twice
        assert pd.Timestamp(client.get("/risk/BTCUSDT").json()["as_of"]) == before + step * BAR
    cached = read_log(state.folder / PREDICTIONS)
    cached = cached[cached["source"] == "risk"]
    new = cached[cached["as_of"] > before]
    horizons = len(state.service.predictor.bundle.horizons)
    assert len(new) == 2 * 2 * horizons  # two bars, two symbols, every horizon
    assert not new.duplicated(["symbol", "as_of", "horizon_hours"]).any()
    assert len(cached) > len(logged[logged["source"] == "risk"])


def test_risk_list_unknown_symbols_and_staleness(setup) -> None:
    client, state, _ = setup
    every = client.get("/risk").json()
    assert sorted(r["symbol"] for r in every["risks"]) == ["BTCUSDT", "ETHUSDT"]
    unknown = client.get("/risk/XRPUSDT")
    assert unknown.status_code == 404 and unknown.json()["symbols"] == ["BTCUSDT", "ETHUSDT"]
    closed = datetime.fromisoformat(client.get("/risk/BTCUSDT").json()["bar_close"])
    clock, limits = state.book.now, state.book.limits
    try:
        state.book.limits = type(limits)(timedelta(hours=2), timedelta(hours=6))
        state.book.now = lambda: closed + timedelta(hours=3)
        late = client.get("/risk/BTCUSDT").json()["staleness"]
        assert late["state"] == "stale" and "3.0 h ago" in late["message"]
        state.book.now = lambda: closed + timedelta(hours=7)
        gone = client.get("/risk/BTCUSDT")
        assert gone.status_code == 503 and "past the 6:00:00 limit" in gone.json()["error"]
        listed = client.get("/risk").json()
        assert listed["risks"] == [] and len(listed["unavailable"]) == 2
    finally:
        state.book.now, state.book.limits = clock, limits


def test_alert_rules_over_http(setup) -> None:
    client, _, _ = setup
    created = client.post("/alerts", json={"symbol": "BTCUSDT", "horizon": 4, "p_at_least": 0.2})
    assert created.status_code == 201
    rule = created.json()
    assert rule["id"] and rule["cooldown"] == "6h"
    assert [r["id"] for r in client.get("/alerts").json()] == [rule["id"]]
    bad = client.post("/alerts", json={"symbol": "BTCUSDT", "horizon": 4, "p_at_least": 2})
    assert bad.status_code == 400 and bad.json()["detail"][0]["loc"] == ["p_at_least"]
    wrong = client.post("/alerts", json={"symbol": "BTCUSDT", "horizon": 7, "p_at_least": 0.1})
    assert wrong.status_code == 400 and "no 7 h horizon" in wrong.json()["error"]
    assert client.delete(f"/alerts/{rule['id']}").status_code == 204
    assert client.delete(f"/alerts/{rule['id']}").status_code == 404


def test_requests_are_logged_with_their_inputs(setup, table) -> None:
    _client, state, _ = setup
    body = {"symbol": "BTCUSDT", "venue": "sim", "features": feature_row(table, 300)}
    state.service.predictor.predict(PredictRequest.model_validate(body))  # what /predict runs
    state.log.flush()
    requests = read_log(state.folder / PREDICTIONS)
    requests = requests[(requests["source"] == "request") & (requests["symbol"] == "BTCUSDT")]
    features = state.service.predictor.bundle.features
    row = np.array(
        [np.nan if body["features"][f] is None else body["features"][f] for f in features]
    )
    assert requests["inputs_hash"].tolist() == [inputs_hash(row, "BTCUSDT")] * len(
        state.service.predictor.bundle.horizons
    )


def test_monitor_scores_matured_predictions_and_metrics_and_report_show_them(setup, market) -> None:
    client, state, store = setup
    append(store, market, market["timestamp"].max())  # every held-back bar: 4 h labels mature
    state.tick()
    report = client.get("/monitor").json()
    four = next(h for h in report["horizons"] if h["horizon_hours"] == 4)
    assert four["matured"] >= 1

    logged = read_log(state.folder / PREDICTIONS)
    cached = logged[(logged["source"] == "risk") & (logged["horizon_hours"] == 4)]
    bundle = state.service.predictor.bundle
    labels = make_labels(MarketStore(store).read(), LabelSpec.from_params(bundle.label))
    labels = labels.assign(symbol=labels["symbol"].astype(str))
    joined = cached.merge(
        labels.rename(columns={"timestamp": "as_of"})[["as_of", "symbol", flush_column(4)]],
        on=["as_of", "symbol"],
    ).dropna(subset=[flush_column(4)])
    assert len(joined) == four["matured"]
    brier = np.mean((joined["p_flush"] - joined[flush_column(4)]) ** 2)
    assert four["brier"] == pytest.approx(brier)
    assert {d["feature"] for d in report["drift"]} == set(bundle.features)

    metrics = state.service.__metrics__("# BentoML's own\n")
    assert metrics.startswith("# BentoML's own\n")
    p = client.get("/risk/BTCUSDT").json()["horizons"][0]["p_flush"]
    assert metric(metrics, "risk_p_flush", symbol="BTCUSDT", venue="sim", horizon_hours="4") == p
    assert metric(metrics, "live_matured_predictions", horizon_hours="4") == four["matured"]
    assert metric(metrics, "live_brier", horizon_hours="4") == pytest.approx(brier)
    top = report["drift"][0]
    assert metric(metrics, "feature_psi", feature=top["feature"]) == pytest.approx(top["psi"])

    page = client.get("/report", params={"symbol": "BTCUSDT"})
    assert page.status_code == 200 and "How the live forecasts did" in page.text
    assert json.loads(json.dumps(report))  # strict JSON: no NaN


@pytest.mark.parametrize(
    "cooldown",
    ["1e300", '"99999999999999999999999d"', "Infinity", "NaN", "-1", '"-6h"'],
)
def test_an_unbounded_cooldown_is_refused_and_not_saved(setup, cooldown: str) -> None:
    client, state, _ = setup
    rule = '"id":"p","symbol":"BTCUSDT","horizon":4,"p_at_least":0.001,"webhook":false'
    body = f'{{{rule},"cooldown":{cooldown}}}'
    answer = client.post("/alerts", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.json()["detail"][0]["loc"][0] == "cooldown"
    assert all(r.id != "p" for r in state.alerts.rules())


def test_rules_are_bounded_in_size_and_number(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, _ = setup
    huge = client.post("/alerts", json={"symbol": "B" * 4_000_000, "horizon": 4, "p_at_least": 0.2})
    assert huge.status_code == 400 and huge.json()["detail"][0]["loc"] == ["symbol"]
    rtl = client.post("/alerts", json={"symbol": "BTC\u202eTDSU", "horizon": 4, "p_at_least": 0.2})
    assert rtl.status_code == 400
    monkeypatch.setattr("flushcast.live.alerts.MAX_API_RULES", 2)
    made = [
        client.post("/alerts", json={"symbol": "BTCUSDT", "horizon": 4, "p_at_least": 0.2})
        for _ in range(3)
    ]
    assert [m.status_code for m in made] == [201, 201, 400]
    assert "2 rules exist already" in made[2].json()["error"]
    for m in made[:2]:
        assert client.delete(f"/alerts/{m.json()['id']}").status_code == 204


def test_an_admin_token_guards_alerts_and_reload(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, _ = setup
    monkeypatch.setenv("FLUSHCAST_ADMIN_TOKEN", "t0ken")
    rule = {"symbol": "BTCUSDT", "horizon": 4, "p_at_least": 0.2}
    for wrong in ({}, {"authorization": "Bearer nope"}, {"authorization": "t0ken"}):
        assert client.post("/alerts", json=rule, headers=wrong).status_code == 401
        assert client.get("/alerts", headers=wrong).status_code == 401
        assert client.delete("/alerts/x", headers=wrong).status_code == 401
        assert client.post("/reload", headers=wrong).status_code == 401
    token = {"authorization": "Bearer t0ken"}
    created = client.post("/alerts", json=rule, headers=token)
    assert created.status_code == 201
    assert client.delete(f"/alerts/{created.json()['id']}", headers=token).status_code == 204
    assert client.get("/risk/BTCUSDT").status_code == 200  # reading the risk needs no token


def test_the_monitor_reads_only_its_window_of_the_log(setup, market, monkeypatch) -> None:
    """A day long past the calibration window is never opened (here: it could not be read)."""
    client, state, _ = setup
    # Retention (by the wall clock) must not delete the day first: then nothing would be proved.
    monkeypatch.setattr(state.log, "keep_days", 100_000.0)
    old = state.folder / PREDICTIONS / "date=2000-01-01"
    old.mkdir(parents=True)
    (old / "part-unreadable.parquet").write_bytes(b"not parquet")
    try:
        state.monitor = None
        state._monitor(MarketStore(state.config.store).read(), state.service.predictor)
        assert client.get("/monitor").status_code == 200
        report = client.get("/monitor").json()
        assert sum(h["predictions"] for h in report["horizons"]) > 0
    finally:
        (old / "part-unreadable.parquet").unlink()
        old.rmdir()
