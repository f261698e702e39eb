"""A small simulated market, a bundle fitted on it and its walk-forward artefacts, no MLflow.

The artefacts are written the way a training run writes them (`evaluation.json`, reliability
PNGs), so the model card reads what it reads in production.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flushcast.common.engine import InProcess
from flushcast.forecast.predictor import Predictor
from flushcast.models.bundle import Bundle
from flushcast.reporting.card import WalkForward
from flushcast.simulator import simulate
from flushcast.training import plots
from flushcast.training.dataset import Dataset, make_dataset
from flushcast.training.evaluate import Evaluation, evaluate, model_names
from flushcast.training.labels import LabelSpec
from flushcast.training.metrics import reliability_table
from flushcast.training.tracking import write_json
from flushcast.training.train import fit_bundle
from tests.reporting.common import CONFIG, HORIZONS, IDENTITY


@pytest.fixture(scope="session")
def market() -> pd.DataFrame:
    return simulate("default", ["BTCUSDT", "ETHUSDT"], days=75, seed=4).frame


@pytest.fixture(scope="session")
def dataset(market: pd.DataFrame) -> Dataset:
    return make_dataset(market, LabelSpec(horizons=HORIZONS))


@pytest.fixture(scope="session")
def evaluation(dataset: Dataset) -> Evaluation:
    return evaluate(dataset, CONFIG, runner=InProcess())


@pytest.fixture(scope="session")
def walk_forward(evaluation: Evaluation, tmp_path_factory: pytest.TempPathFactory) -> WalkForward:
    folder = tmp_path_factory.mktemp("evaluation")
    write_json(folder / "evaluation.json", evaluation.record.to_document())
    for h, predictions in evaluation.predictions.items():
        y = predictions["y"].to_numpy()
        curves = {
            m: reliability_table(y, predictions[f"p_{m}"].to_numpy()) for m in model_names(CONFIG)
        }
        plots.save_png(plots.reliability_plot(curves, f"{h} h"), folder / f"reliability_{h}h.png")
    return WalkForward.read(folder)


@pytest.fixture(scope="session")
def bundle(dataset: Dataset, evaluation: Evaluation) -> Bundle:
    return fit_bundle(dataset, CONFIG, evaluation)


@pytest.fixture(scope="session")
def predictor(bundle: Bundle) -> Predictor:
    return Predictor(bundle, IDENTITY)


@pytest.fixture(scope="session")
def report_file(
    predictor: Predictor,
    market: pd.DataFrame,
    walk_forward: WalkForward,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    from flushcast.reporting.build import render_report

    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_report(predictor, market, "ETHUSDT", walk_forward=walk_forward))
    return path
