"""The command line of live operation: `flushcast monitor`, `report --live`, `serve --live`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from flushcast.live.engine import PREDICTIONS
from flushcast.live.predictions_log import PredictionLog, log_rows
from flushcast.live.risk import compute
from flushcast.marketdata.schema import BAR
from tests.serving.sandbox import Sandbox


@pytest.fixture(scope="module")
def sandbox(registered: Sandbox) -> Sandbox:
    """These tests serve or reload the MLflow champion: the registered sandbox."""
    return registered


FLUSHCAST = str(Path(sys.executable).with_name("flushcast"))


@pytest.fixture(scope="module")
def live_folder(
    sandbox: Sandbox, service, market: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The cached predictions of the last 30 bars of the sandbox market, as the service logs
    them for the registered champion (the version `monitor` and `report` look up)."""
    import bentoml

    from flushcast.serving.endpoints import ServedPredictor
    from flushcast.training.registry import ModelIdentity

    metadata = bentoml.models.get(sandbox.tag).info.metadata
    identity = ModelIdentity.of(metadata)
    predictor = ServedPredictor(service.predictor.bundle, identity)
    folder = tmp_path_factory.mktemp("live-cli")
    log = PredictionLog(folder / PREDICTIONS)
    last = market["timestamp"].max()
    for back in range(30, 0, -1):
        now = datetime(2024, 4, 1, tzinfo=UTC)
        snapshot, rows = compute(predictor, market[market["timestamp"] <= last - back * BAR], now)
        log.write_once(
            f"risk-{back}", log_rows(rows, snapshot.entries, snapshot.model, "risk", now)
        )
    return folder


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([FLUSHCAST, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_monitor_and_the_report_section_from_a_live_folder(
    sandbox: Sandbox, live_folder: Path, tmp_path: Path
) -> None:
    uri = ["--tracking-uri", sandbox.tracking_uri, "--store", str(sandbox.store)]
    out = tmp_path / "monitor.json"
    result = run("monitor", "--live", str(live_folder), *uri, "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert (
        "horizon  predictions  matured" in result.stdout and "feature drift (PSI)" in result.stdout
    )
    report = json.loads(out.read_text())
    four = next(h for h in report["horizons"] if h["horizon_hours"] == 4)
    assert four["predictions"] == 2 * 30 and four["matured"] == 2 * 27  # bars 30 to 4 back
    page = tmp_path / "report.html"
    result = run(
        "report", "--symbol", "BTCUSDT", "--live", str(live_folder), *uri, "--out", str(page)
    )
    assert result.returncode == 0, result.stderr
    assert "How the live forecasts did" in page.read_text()


@pytest.mark.slow
def test_serve_refuses_bad_live_options_before_starting(sandbox: Sandbox, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {symbol: BTCUSDT, horizon: 12, cooldown: 6h}\n")
    serve = ["serve", "--model", sandbox.tag, "--live", str(tmp_path / "live")]
    result = run(*serve, "--alerts", str(rules))
    assert result.returncode == 2
    assert "rules.yaml: rules.0: Value error, give exactly one of" in result.stderr
    result = run(*serve, "--clock-url", "kraken=http://127.0.0.1:1")
    assert result.returncode == 2 and "VENUE=URL" in result.stderr


@pytest.mark.slow  # two MLflow registries created (migrations): about 10 s
def test_monitor_without_a_champion_names_its_own_way_forward(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flushcast.cli import app

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    live = tmp_path / "live"
    args = ["monitor", "--live", str(live), "--store", str(tmp_path), "--tracking-uri", empty]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "no version or alias 'champion'" in result.output
    assert "flushcast monitor --version latest" in result.output  # not `report`'s option
    # ... and the option named is one monitor takes: it gets past the option parser
    named = CliRunner().invoke(app, [*args, "--version", "latest"])
    assert named.exit_code == 2 and "has no version yet" in named.output
