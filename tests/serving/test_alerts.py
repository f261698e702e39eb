"""Alert rules: when they fire (cooldown in market time, once per bar), and signed delivery to a
loopback receiver with retries and a dead-letter log."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from serving.alerts import (
    DEAD_LETTERS,
    ID_HEADER,
    SIGNATURE_HEADER,
    AlertConfigError,
    AlertEngine,
    AlertRule,
    AlertsConfig,
    Dispatcher,
    WebhookConfig,
    load_config,
)
from serving.bands import band
from serving.responses import HorizonPrediction, ModelIdentity
from serving.risk import RiskEntry, Snapshot
from tests.serving.receiver import receiver

MODEL = ModelIdentity(model_name="flushcast", model_version="3", run_id="r")
T0 = datetime(2024, 3, 5, tzinfo=UTC)
BASE_RATE = 0.05
SECRET = "s3cret"


def snapshot(hour: int, p: float, symbol: str = "BTCUSDT") -> Snapshot:
    as_of = T0 + timedelta(hours=hour)
    horizon = HorizonPrediction(
        horizon_hours=12,
        p_flush=p,
        risk_band=band(p, BASE_RATE),
        relative_risk=p / BASE_RATE,
        base_rate=BASE_RATE,
        p_long_flush=0.7,
        p_short_squeeze=0.3,
    )
    entry = RiskEntry(
        symbol=symbol,
        venue="binance",
        as_of=as_of,
        horizons=[horizon],
        warnings=[],
        bar_close=as_of + timedelta(hours=1),
    )
    return Snapshot(MODEL, as_of + timedelta(hours=1), [entry])


def fired(engine: AlertEngine, path: list[float]) -> list[int]:
    """The hours (bar index) at which a risk path fires."""
    hours = []
    for hour, p in enumerate(path):
        alerts = engine.evaluate(snapshot(hour, p), T0 + timedelta(hours=hour + 1))
        hours += [hour for _ in alerts]
    return hours


def engine(tmp_path: Path, **rule) -> AlertEngine:
    spec = {"id": "r1", "symbol": "BTCUSDT", "horizon": 12, "cooldown": "6h", **rule}
    return AlertEngine(tmp_path, AlertsConfig(rules=[AlertRule(**spec)]))


def test_a_risk_that_rises_and_stays_high_fires_once_per_cooldown(tmp_path: Path) -> None:
    rising = [0.02, 0.04, 0.08, 0.12, 0.15, 0.15, 0.16, 0.15, 0.14, 0.15, 0.15, 0.13, 0.15, 0.2]
    assert fired(engine(tmp_path, p_at_least=0.1), rising) == [3, 9]


def test_a_risk_flapping_around_the_threshold_does_not_spam(tmp_path: Path) -> None:
    flapping = [0.09, 0.11] * 10  # crosses the threshold every other hour for 20 hours
    assert fired(engine(tmp_path, p_at_least=0.1), flapping) == [1, 7, 13, 19]


def test_band_rules_use_the_band_order(tmp_path: Path) -> None:
    # base rate 5 %: elevated from 7.5 %, high from 15 %, extreme from 30 %
    path = [0.06, 0.09, 0.16, 0.31]
    assert fired(engine(tmp_path, band_at_least="high", cooldown="1h"), path) == [2, 3]


def test_each_bar_is_evaluated_once_even_after_a_restart(tmp_path: Path) -> None:
    first = engine(tmp_path, p_at_least=0.1, cooldown=0)
    assert len(first.evaluate(snapshot(0, 0.5), T0)) == 1
    assert first.evaluate(snapshot(0, 0.5), T0) == []  # the same bar again: nothing
    restarted = engine(tmp_path, p_at_least=0.1, cooldown=0)
    assert restarted.evaluate(snapshot(0, 0.5), T0) == []
    assert len(restarted.evaluate(snapshot(1, 0.5), T0)) == 1


def test_rules_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        AlertRule(symbol="BTCUSDT", horizon=12)
    with pytest.raises(ValueError, match="not a duration"):
        AlertRule(symbol="BTCUSDT", horizon=12, p_at_least=0.1, cooldown="6 hours")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - symbol: BTCUSDT\n    horizon: 12\n    p_at_least: 1.5\n")
    with pytest.raises(AlertConfigError, match=r"rules\.yaml: rules\.0\.p_at_least"):
        load_config(rules)
    rules.write_text("webhook: {url: 'http://127.0.0.1:1/x', secret_env: FC_TEST_SECRET}\n")
    monkeypatch.delenv("FC_TEST_SECRET", raising=False)
    with pytest.raises(AlertConfigError, match="set the environment variable FC_TEST_SECRET"):
        load_config(rules)
    api = AlertEngine(tmp_path, AlertsConfig())
    with pytest.raises(AlertConfigError, match="no 5 h horizon"):
        api.add(AlertRule(symbol="BTCUSDT", horizon=5, p_at_least=0.1), [4, 12])
    created = api.add(AlertRule(symbol="BTCUSDT", horizon=12, p_at_least=0.1), [4, 12])
    assert [r.id for r in AlertEngine(tmp_path, AlertsConfig()).rules()] == [created.id]
    assert api.remove(str(created.id)) and not api.remove(str(created.id))


def deliver(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch, attempts: int = 4):
    monkeypatch.setenv("FC_TEST_SECRET", SECRET)
    hook = WebhookConfig(url=url, secret_env="FC_TEST_SECRET", attempts=attempts, backoff_s=0.01)
    rules = engine(tmp_path, p_at_least=0.1, log=False)
    ((alert, rule),) = rules.evaluate(snapshot(0, 0.3), T0)
    dispatcher = Dispatcher(tmp_path, hook)
    dispatcher.send(alert, rule)
    dispatcher.close()
    return alert, dispatcher


def test_webhooks_are_signed_and_retried_until_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiver(fail=2) as got:
        alert, dispatcher = deliver(tmp_path, got.url, monkeypatch)
    assert len(got.received) == 3 and dispatcher.delivered == 1 and dispatcher.dead == 0
    for headers, body in got.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER] == expected
        assert headers[ID_HEADER] == alert.alert_id
        sent = json.loads(body)
        assert (sent["symbol"], sent["horizon_hours"], sent["p_flush"]) == ("BTCUSDT", 12, 0.3)
    assert not (tmp_path / DEAD_LETTERS).exists()


def test_undeliverable_alerts_go_to_the_dead_letter_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiver(fail=99) as got:
        alert, dispatcher = deliver(tmp_path, got.url, monkeypatch, attempts=3)
    assert len(got.received) == 3 and dispatcher.dead == 1
    other = tmp_path / "refused"
    other.mkdir()
    with receiver(fail=99, status=400) as refused:  # a 4xx is not retried
        deliver(other, refused.url, monkeypatch, attempts=3)
    assert len(refused.received) == 1
    (letter,) = [json.loads(line) for line in (tmp_path / DEAD_LETTERS).read_text().splitlines()]
    assert letter["alert"]["alert_id"] == alert.alert_id and letter["problem"] == "HTTP 503"
    (refusal,) = (other / DEAD_LETTERS).read_text().splitlines()
    assert json.loads(refusal)["attempts"] == 1


def test_a_slow_receiver_does_not_hold_up_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FC_TEST_SECRET", SECRET)
    with receiver(fail=0, delay_s=0.3) as slow:
        dispatcher = Dispatcher(tmp_path, WebhookConfig(url=slow.url, secret_env="FC_TEST_SECRET"))
        rules = engine(tmp_path, p_at_least=0.1, log=False)
        start = time.perf_counter()
        for hour in range(3):
            for alert, rule in rules.evaluate(snapshot(hour * 6, 0.3), T0):
                dispatcher.send(alert, rule)
        queued = time.perf_counter() - start
        dispatcher.close()
    assert queued < 0.2 and len(slow.received) == 3 and dispatcher.delivered == 3
