"""Small simulated market, its training table, and one MLflow SQLite database per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from flushcast.common.engine import InProcess
from flushcast.simulator import simulate
from flushcast.training.dataset import Dataset, make_dataset
from flushcast.training.labels import LabelSpec


@pytest.fixture(scope="session")
def sim_store(tmp_path_factory) -> Path:
    """Two symbols × 100 days of the default simulated market, written as a store."""
    root = tmp_path_factory.mktemp("sim-store")
    simulate("default", ["BTCUSDT", "ETHUSDT"], days=100, seed=3).write(root)
    return root


@pytest.fixture(scope="session")
def small_dataset(sim_store) -> Dataset:
    from flushcast.marketdata.store import MarketStore

    return make_dataset(MarketStore(sim_store).read(), LabelSpec(horizons=(4, 12)))


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """A migrated SQLite tracking database shared by the session (first init costs seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def small_config(small_dataset):
    from flushcast.training.config import TrainingConfig

    return TrainingConfig(label=small_dataset.label).with_overrides({"evaluation.n_boot": 20})


@pytest.fixture(scope="session")
def small_evaluation(small_dataset, small_config):
    """The walk-forward of the small market (one process: the tests share the cores)."""
    from flushcast.training.evaluate import evaluate

    return evaluate(small_dataset, small_config, runner=InProcess())
