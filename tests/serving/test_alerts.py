"""Alert rules: when they fire (cooldown in market time, once per bar), and signed delivery to a
loopback receiver with retries and a dead-letter log."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flushcast.forecast.bands import band
from flushcast.live.alerts import (
    DEAD_LETTERS,
    ID_HEADER,
    SIGNATURE_HEADER,
    AlertConfigError,
    AlertEngine,
    AlertRule,
    AlertsConfig,
    AlertState,
    Dispatcher,
    WebhookConfig,
    load_config,
)
from flushcast.live.risk import RiskEntry, Snapshot
from flushcast.serving import ROOT
from flushcast.serving.responses import HorizonPrediction
from flushcast.serving.responses import RegisteredModel as ModelIdentity
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


# -- reliability, round 2 (issue 22) ---------------------------------------------------------


@pytest.mark.parametrize(
    "cooldown",
    [1e300, "99999999999999999999999d", float("inf"), float("nan"), -1, "-1h", "31d", True],
)
def test_cooldowns_are_finite_durations_of_at_most_30_days(cooldown: object) -> None:
    with pytest.raises(ValueError, match=r"duration|finite|valid"):
        AlertRule(symbol="BTCUSDT", horizon=12, p_at_least=0.1, cooldown=cooldown)
    assert AlertRule(symbol="BTCUSDT", horizon=12, p_at_least=0.1, cooldown="30d").cooldown_s == (
        30 * 86400
    )


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e300"])
def test_json_cooldowns_that_are_not_finite_durations_are_refused(literal: str) -> None:
    body = f'{{"symbol":"BTCUSDT","horizon":12,"p_at_least":0.1,"cooldown":{literal}}}'
    with pytest.raises(ValueError):
        AlertRule.model_validate_json(body)


def test_a_bad_rule_on_disk_or_failing_at_evaluation_never_stops_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A rule saved before cooldowns were bounded: every later evaluation used to overflow.
    saved = {"id": "p", "symbol": "BTCUSDT", "horizon": 12, "p_at_least": 0.001,
             "cooldown": 1e300, "webhook": False, "log": True}  # fmt: skip
    (tmp_path / "alerts.json").write_text(json.dumps([saved]))
    good = AlertRule(id="good", symbol="BTCUSDT", horizon=12, p_at_least=0.1, cooldown=0)
    broken = AlertRule(id="broken", symbol="BTCUSDT", horizon=12, p_at_least=0.1, cooldown=0)
    rules = AlertEngine(tmp_path, AlertsConfig(rules=[broken, good]))
    holds = AlertRule.holds

    def failing(self: AlertRule, p: float, risk_band: str) -> bool:
        if self.id == "broken":
            raise OverflowError("a rule that fails at evaluation")
        return holds(self, p, risk_band)

    monkeypatch.setattr(AlertRule, "holds", failing)
    with caplog.at_level("ERROR", logger="flushcast.alerts"):
        for hour in range(3):
            assert [rule.id for _, rule in rules.evaluate(snapshot(hour, 0.5), T0)] == ["good"]
    assert "alert rule 'p' skipped" in caplog.text and "rule broken not evaluated" in caplog.text
    assert rules.remove("p")  # and the operator can still delete it


def test_alert_files_with_yaml_aliases_are_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "rules: [*b]\n"
    )
    with pytest.raises(AlertConfigError, match="aliases"):
        load_config(rules)


def test_a_fired_alert_is_in_the_outbox_until_delivered_and_is_sent_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FC_TEST_SECRET", SECRET)
    rules = engine(tmp_path, p_at_least=0.1, log=False)
    ((alert, _),) = rules.evaluate(snapshot(0, 0.3), T0)  # the worker dies before delivering
    assert [p["alert"]["alert_id"] for p in AlertState(tmp_path).pending()] == [alert.alert_id]
    with receiver(fail=0) as got:
        restarted = Dispatcher(tmp_path, WebhookConfig(url=got.url, secret_env="FC_TEST_SECRET"))
        restarted.close()
    ((headers, body),) = got.received
    assert headers[ID_HEADER] == alert.alert_id and json.loads(body)["p_flush"] == 0.3
    assert AlertState(tmp_path).pending() == []


def test_webhooks_never_follow_redirects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        receiver(fail=0) as elsewhere,
        receiver(fail=99, status=302, location=elsewhere.url) as hop,
    ):
        _, dispatcher = deliver(tmp_path, hop.url, monkeypatch, attempts=3)
    assert elsewhere.received == []  # not followed: no GET without a body, no POST elsewhere
    assert len(hop.received) == 3 and dispatcher.delivered == 0 and dispatcher.dead == 1
    (letter,) = (tmp_path / DEAD_LETTERS).read_text().splitlines()
    assert json.loads(letter)["problem"].startswith("HTTP 302")
    assert AlertState(tmp_path).pending() == []  # dead-lettered: out of the outbox


def fire_and_deliver(folder: str, url: str) -> None:
    """Run in a child process: fire one alert and deliver it to `url` (the test kills us)."""
    hook = WebhookConfig(url=url, secret_env="FC_TEST_SECRET", timeout_s=60)
    dispatcher = Dispatcher(Path(folder), hook)
    for alert, rule in engine(Path(folder), p_at_least=0.1, log=False).evaluate(
        snapshot(0, 0.3), T0
    ):
        dispatcher.send(alert, rule)
    time.sleep(120)


@pytest.mark.slow
def test_an_alert_survives_a_kill_9_of_the_delivering_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FC_TEST_SECRET", SECRET)
    code = (
        "import sys; from tests.serving.test_alerts import fire_and_deliver as f; f(*sys.argv[1:])"
    )
    with receiver(fail=0, delay_s=30) as slow:
        child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), slow.url], cwd=ROOT)
        try:
            assert slow.arrived.wait(60), "the child never started delivering"
        finally:
            child.kill()  # SIGKILL, mid-delivery
            child.wait()
    (pending,) = AlertState(tmp_path).pending()
    with receiver(fail=0) as got:
        Dispatcher(tmp_path, WebhookConfig(url=got.url, secret_env="FC_TEST_SECRET")).close()
    ((headers, _),) = got.received
    assert headers[ID_HEADER] == pending["alert"]["alert_id"]
    assert AlertState(tmp_path).pending() == []


def test_an_unreadable_rules_or_state_file_is_moved_aside_and_stops_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "alerts.json").write_text('[{"id": "half')
    (tmp_path / "alerts_state.json").write_text("{not json")
    rules = engine(tmp_path, p_at_least=0.1, cooldown=0)
    assert [rule.id for _, rule in rules.evaluate(snapshot(0, 0.5), T0)] == ["r1"]
    assert (tmp_path / "alerts.json.unreadable").read_text() == '[{"id": "half'
    assert (tmp_path / "alerts_state.json.unreadable").read_text() == "{not json"
    added = rules.add(AlertRule(symbol="BTCUSDT", horizon=12, p_at_least=0.2), [12])
    assert [r.id for r in rules.api_rules()] == [added.id]
