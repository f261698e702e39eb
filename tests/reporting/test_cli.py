"""`flushcast report` end to end: a store, a registered champion, the page on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flushcast.report_cli import report
from tests.reporting.common import CONFIG, HORIZONS

app = typer.Typer()
app.command()(report)
runner = CliRunner()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A simulated store and a champion trained on it (evaluated, so it has artefacts)."""
    from flushcast.simulator import simulate
    from flushcast.training.dataset import load_dataset
    from flushcast.training.labels import LabelSpec
    from flushcast.training.registry import promote
    from flushcast.training.tracking import run_train

    folder = tmp_path_factory.mktemp("registry")
    store = folder / "store"
    simulate("default", ["BTCUSDT", "ETHUSDT"], days=75, seed=4).write(store)
    dataset = load_dataset(store, label=LabelSpec(horizons=HORIZONS))
    # MLflow refuses "@" in parameter names, which run_train derives from these keys.
    dataset.series = {key.replace("@", " on "): info for key, info in dataset.series.items()}
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    identity, _ = run_train(dataset, CONFIG, uri=uri)
    promote(identity.model_version, force=True, tracking_uri=uri)
    return store, uri


@pytest.mark.slow
def test_report_command_writes_the_page(registry: tuple[Path, str], tmp_path: Path) -> None:
    store, uri = registry
    out = tmp_path / "pages" / "btc.html"
    args = ["--symbol", "BTCUSDT", "--store", str(store), "--tracking-uri", uri, "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report: {out.resolve()}"
    html = out.read_text()
    assert "trained on simulated data" in html
    # The run's walk-forward artefacts were found: a reliability plot per horizon.
    assert html.count('alt="Reliability plot') == len(HORIZONS)
    assert "Only the summary kept with the model" not in html


@pytest.mark.slow
def test_report_command_rejects_an_unknown_symbol(
    registry: tuple[Path, str], tmp_path: Path
) -> None:
    store, uri = registry
    args = ["--symbol", "DOGEUSDT", "--store", str(store), "--tracking-uri", uri]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    assert "symbol: DOGEUSDT not in the data" in result.output
    assert not (tmp_path / "x.html").exists()


def test_report_command_rejects_an_empty_store(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--symbol", "BTCUSDT", "--store", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no market data in store" in result.output


@pytest.mark.slow
def test_walk_forward_artefacts_are_found_in_either_layout(
    registry: tuple[Path, str], tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from flushcast.reporting.card import WalkForward, download_walk_forward, load_walk_forward

    _, uri = registry
    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("flushcast", "champion")
    folder = download_walk_forward(champion.run_id, tmp_path / "champion", uri)
    assert folder is not None
    logged = WalkForward.read(folder)
    assert sorted(logged.reliability) == list(HORIZONS)
    assert sorted(logged.record.horizons) == list(HORIZONS)
    # A run keeping them under evaluation/ is read the same way; a run without them gives None.
    experiment = client.get_experiment_by_name("flushcast").experiment_id
    nested = client.create_run(experiment).info.run_id
    client.log_artifacts(nested, str(folder), "evaluation")
    found = load_walk_forward(nested, uri)
    assert found is not None
    assert found.record == logged.record
    assert found.reliability == logged.reliability
    assert load_walk_forward(client.create_run(experiment).info.run_id, uri) is None
