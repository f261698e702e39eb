"""Live operation with real processes on loopback: `flushcast collect` against the fake exchange,
`flushcast serve --live` (two workers) reading the store it fills, a webhook receiver; and model
updates reaching every worker without a failed request."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import itertools
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from flushcast.marketdata.store import MarketStore
from tests.exchange.recording import simulated
from tests.exchange.server import FakeExchange, in_thread
from tests.serving.payloads import feature_row
from tests.serving.receiver import receiver
from tests.serving.sandbox import Sandbox, running_server


@pytest.fixture(scope="module")
def sandbox(registered: Sandbox) -> Sandbox:
    """These tests serve or reload the MLflow champion: the registered sandbox."""
    return registered


pytestmark = pytest.mark.slow
FLUSHCAST = str(Path(sys.executable).with_name("flushcast"))
SECRET = "live-session-secret"


def until(check: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `check` every 0.2 s until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def get(port: int, path: str) -> tuple[int, dict]:
    """One request on a fresh connection (so the two workers both get asked)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_a_live_session_from_the_exchange_to_an_alert(sandbox: Sandbox, tmp_path: Path) -> None:
    store, live = tmp_path / "store", tmp_path / "live"
    recording = simulated("binance", ("BTCUSDT", "ETHUSDT"), days=150, seed=1)
    with (
        in_thread(FakeExchange(recording, "2024-05-01T00:40:00Z", speed=720)) as exchange,
        receiver(fail=1) as hook,
    ):
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            f"webhook: {{url: '{hook.url}', backoff_s: 0.1}}\n"
            "rules:\n  - {symbol: BTCUSDT, horizon: 4, p_at_least: 0.0001, cooldown: 2h}\n"
        )
        serve = [sys.executable, "-m", "flushcast.serve_cli", "serve", "--model", sandbox.tag]
        serve += ["--store", str(store), "--live", str(live), "--alerts", str(rules)]
        serve += ["--clock-url", f"binance={exchange.url}", "--stale-after", "1.5"]
        serve += ["--stale-limit", "3"]
        env = {**sandbox.env(), "FLUSHCAST_WEBHOOK_SECRET": SECRET}
        with running_server(serve, env, tmp_path / "serve.log") as (port, _):
            assert get(port, "/risk/BTCUSDT")[0] == 503  # nothing collected yet
            collect = [FLUSHCAST, "collect", "binance", "--symbols", "BTCUSDT,ETHUSDT"]
            collect += ["--store", str(store), "--base-url", exchange.url, "--max-bars", "5"]
            collector = subprocess.run(collect, capture_output=True, text=True, timeout=180)
            assert collector.returncode == 0, collector.stderr
            assert "bars stored: BTCUSDT" in collector.stdout
            last = MarketStore(store).read(["BTCUSDT"], "binance")["timestamp"].max()

            def caught_up():
                status, body = get(port, "/risk/BTCUSDT")
                return status == 200 and pd.Timestamp(body["as_of"]) == last and body

            body = until(caught_up, 20, "/risk to describe the last stored bar")
            assert body["venue"] == "binance" and body["staleness"]["state"] == "fresh"
            until(lambda: len(hook.received) >= 3, 20, "the alerts")
            alerts = [json.loads(b) for _, b in hook.received[1:]]  # the first POST got a 503
            for headers, raw in hook.received:
                digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
                assert headers["X-Flushcast-Signature"] == f"sha256={digest}"
            stamps = [pd.Timestamp(a["as_of"]) for a in alerts]
            assert all(b - a >= pd.Timedelta("2h") for a, b in itertools.pairwise(stamps))
            assert hook.received[0][1] == hook.received[1][1]  # retried, same alert

            # The collector has stopped: the venue's clock runs on and the feed goes stale.
            def state(expected: str):
                status, answer = get(port, "/risk/BTCUSDT")
                return (
                    answer if status == 200 and answer["staleness"]["state"] == expected else None
                )

            until(lambda: state("stale"), 30, "a stale answer")
            until(lambda: get(port, "/risk/BTCUSDT")[0] == 503, 30, "503 past the limit")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/metrics")
            metrics = connection.getresponse().read().decode()
            assert 'flushcast_risk_p_flush{horizon_hours="4",symbol="BTCUSDT",venue="binance"}' in (
                metrics
            )
            assert "bentoml_" in metrics  # BentoML's own metrics are still there


def _registry_copy(sandbox: Sandbox, folder: Path) -> Sandbox:
    """The sandbox's registry and BentoML home, copied: version 2 is created only there."""
    shutil.copytree(sandbox.folder, folder, ignore=shutil.ignore_patterns("store", "*.parquet"))
    copy = Sandbox(folder)
    script = (
        "import sys, mlflow; mlflow.set_tracking_uri(sys.argv[1]); c = mlflow.MlflowClient(); "
        "v = c.get_model_version('flushcast', '1'); "
        "c.create_model_version('flushcast', v.source, v.run_id)"
    )
    subprocess.run(
        [sys.executable, "-c", script, copy.tracking_uri], check=True, capture_output=True
    )
    return copy


def test_promote_and_rollback_reach_every_worker_without_a_failed_request(
    sandbox: Sandbox, table: pd.DataFrame, tmp_path: Path
) -> None:
    registry = _registry_copy(sandbox, tmp_path / "registry")
    live = tmp_path / "live"
    serve = [
        sys.executable,
        "-m",
        "flushcast.serve_cli",
        "serve",
        "--model",
        sandbox.tag,
        "--workers",
        "2",
    ]
    serve += ["--store", str(sandbox.store), "--live", str(live), "--watch-champion", "1"]
    serve += [
        "--tracking-uri",
        registry.tracking_uri,
        "--stale-after",
        "1e6",
        "--stale-limit",
        "2e6",
    ]
    body = json.dumps({"symbol": "BTCUSDT", "features": feature_row(table, 500)}).encode()
    statuses: list[int] = []
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def load(port: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set():
            for method, path, payload in (
                ("GET", "/risk/BTCUSDT", None),
                ("POST", "/predict", body),
            ):
                connection.request(method, path, payload, {"content-type": "application/json"})
                response = connection.getresponse()
                answer = json.loads(response.read())
                statuses.append(response.status)
                if response.status != 200:
                    failures.append(f"{method} {path}: {response.status} {answer}")
                versions.add(answer.get("model", {}).get("model_version", "?"))

    def everyone_serves(version: str) -> bool:
        return all(get(port, "/model")[1]["model"]["model_version"] == version for _ in range(20))

    with running_server(serve, registry.env(), tmp_path / "serve.log") as (port, _):
        threads = [threading.Thread(target=load, args=(port,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            uri = ["--tracking-uri", registry.tracking_uri]
            promoted = subprocess.run(
                [FLUSHCAST, "promote", "2", "--force", *uri], capture_output=True
            )
            assert promoted.returncode == 0, promoted.stderr
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            connection.request("POST", "/reload", b"", {"content-type": "application/json"})
            reloaded = json.loads(connection.getresponse().read())
            # The leader's watcher may have switched first; either way version 2 is served.
            assert reloaded["current"]["model_version"] == "2"
            until(lambda: everyone_serves("2"), 30, "both workers on version 2")
            until(
                lambda: get(port, "/risk/BTCUSDT")[1]["model"]["model_version"] == "2", 15, "risk"
            )

            rolled = subprocess.run([FLUSHCAST, "rollback", *uri], capture_output=True)
            assert rolled.returncode == 0, rolled.stderr
            until(lambda: everyone_serves("1"), 30, "the watched alias back on version 1")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    assert statuses and not failures, f"{len(failures)} of {len(statuses)} failed: {failures[:3]}"
    assert {"1", "2"} <= versions
    with contextlib.suppress(FileNotFoundError):
        assert json.loads((live / "champion.json").read_text())["model_version"] == "1"
