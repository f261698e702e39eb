"""A throwaway champion on simulated data, for the tests, the benchmark and trying the service.

Test harness, so it lives in `tests/`, outside the package and the bento.
`create` simulates two symbols, trains a small bundle on the default recipe's feature families
(as `flushcast train` does: the benchmarks measure the shipped recipe), puts it in a BentoML
home under the folder and writes an example /predict body (`request.json`: the latest BTC
feature row), in the calling process: the fast tests load the service from it in-process.
`register` logs the same bundle to an MLflow SQLite store under the folder, promotes it
(forced: it was not evaluated) and imports the champion, in its own process so MLflow's
process-wide tracking URI never leaks.
`python -m tests.serving.sandbox FOLDER` (from the checkout) does both.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flushcast.serving import MODEL_ENV, ROOT, STORE_ENV

SYMBOLS = ("BTCUSDT", "ETHUSDT")
HORIZONS = (4, 12)


@dataclass(frozen=True)
class Sandbox:
    folder: Path
    registered: bool = False
    """Whether `tag` is the MLflow champion's import (`register`) or the in-process copy."""

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.folder / 'mlflow.db'}"

    @property
    def bentoml_home(self) -> Path:
        return self.folder / "bentoml"

    @property
    def market(self) -> Path:
        """The simulated canonical frame the model was trained on (parquet)."""
        return self.folder / "market.parquet"

    @property
    def store(self) -> Path:
        """The same market as a store, for `GET /report`."""
        return self.folder / "store"

    @property
    def request(self) -> Path:
        """An example /predict body: the latest BTC feature row of the market."""
        return self.folder / "request.json"

    @property
    def bundle(self) -> Path:
        """The trained bundle folder."""
        return self.folder / "bundle"

    @property
    def tag(self) -> str:
        """The BentoML tag of the model: the imported champion once registered."""
        name = "registered.json" if self.registered else "sandbox.json"
        return json.loads((self.folder / name).read_text())["tag"]

    def env(self) -> dict[str, str]:
        """Environment for a process that serves this sandbox's model."""
        return {
            "BENTOML_HOME": str(self.bentoml_home),
            MODEL_ENV: self.tag,
            STORE_ENV: str(self.store),
        }


SANDBOX_IDENTITY = {"model_name": "flushcast", "model_version": "0", "run_id": "sandbox"}


def create(folder: Path, days: int = 90, seed: int = 1) -> Sandbox:
    """Train a small bundle and put it in a BentoML home under FOLDER, in this process.

    No MLflow: the fast tests load the service in-process from the BentoML store. `register`
    (in its own process) adds the registry for the tests that need one.
    """
    sandbox = Sandbox(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["BENTOML_HOME"] = str(sandbox.bentoml_home)
    from flushcast.marketdata.store import MarketStore
    from flushcast.serving.importer import store_bundle
    from flushcast.simulator import simulate
    from flushcast.training.config import TrainingConfig
    from flushcast.training.dataset import make_dataset, select_features
    from flushcast.training.labels import LabelSpec
    from flushcast.training.registry import ModelIdentity
    from flushcast.training.train import fit_bundle

    market = simulate("default", list(SYMBOLS), days=days, seed=seed).frame
    market.to_parquet(sandbox.market)
    MarketStore(sandbox.store).write(market, {})
    label = LabelSpec(horizons=HORIZONS)
    # One tree candidate: the tests need tree files (TreeSHAP, tampering) whatever the data says.
    config = TrainingConfig(label=label).with_overrides(
        {"fit.candidates": ["lightgbm"], "fit.lightgbm.rounds": 80, "evaluation.n_boot": 0}
    )
    # The default recipe's feature families, as `flushcast train` learns from.
    dataset = select_features(make_dataset(market, label), config)
    fit_bundle(dataset, config).save(sandbox.bundle)
    tag = store_bundle(sandbox.bundle, ModelIdentity(**SANDBOX_IDENTITY))
    (folder / "sandbox.json").write_text(json.dumps({"tag": str(tag)}))
    sandbox.request.write_text(json.dumps(_example(market), indent=1))
    return sandbox


def register(sandbox: Sandbox) -> Sandbox:
    """Log the sandbox bundle as MLflow model version, promote it and import the champion
    into the same BentoML home, in a fresh process (MLflow's tracking URI is process-wide)."""
    command = [sys.executable, "-m", "tests.serving.sandbox", "register", str(sandbox.folder)]
    env = {**os.environ, "BENTOML_HOME": str(sandbox.bentoml_home)}
    subprocess.run(command, check=True, cwd=ROOT, env=env)
    return Sandbox(sandbox.folder, registered=True)


def _register(folder: Path) -> str:
    import mlflow
    from mlflow import MlflowClient

    from flushcast.models.pyfunc import ARTIFACT, ENTRY
    from flushcast.serving.importer import import_champion
    from flushcast.training.registry import MODEL_NAME, promote
    from flushcast.training.tracking import DEFAULT_EXPERIMENT

    sandbox = Sandbox(folder)
    uri = sandbox.tracking_uri
    mlflow.set_tracking_uri(uri)
    experiment = MlflowClient(uri).create_experiment(
        DEFAULT_EXPERIMENT, artifact_location=(folder / "artifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment, run_name="sandbox"):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(ENTRY),
            artifacts={ARTIFACT: str(sandbox.bundle)},
            registered_model_name=MODEL_NAME,
            pip_requirements=["lightgbm", "numpy", "pandas"],
        )
    promote(str(info.registered_model_version), force=True, tracking_uri=uri)
    tag = str(import_champion(uri))
    (folder / "registered.json").write_text(json.dumps({"tag": tag}))
    return tag


def _example(market: pd.DataFrame) -> dict:
    from flushcast.features.build import build_features
    from flushcast.features.registry import FEATURES

    table = build_features(market)
    row = table[table["symbol"] == "BTCUSDT"].iloc[-1]
    features = {name: None if pd.isna(row[name]) else float(row[name]) for name in FEATURES}
    return {
        "symbol": "BTCUSDT",
        "venue": "sim",
        "as_of": row["timestamp"].isoformat(),
        "top_k": 3,
        "features": features,
    }


def build(folder: Path) -> Sandbox:
    """`create` and `register` in a fresh Python process (the benchmarks' sandbox)."""
    command = [sys.executable, "-m", "tests.serving.sandbox", str(folder)]
    subprocess.run(command, check=True, cwd=ROOT)
    return Sandbox(folder, registered=True)


if __name__ == "__main__":
    if sys.argv[1] == "register":
        print(_register(Path(sys.argv[2])))
    else:
        created = create(Path(sys.argv[1]))
        print(_register(created.folder))


@contextlib.contextmanager
def running_server(
    command: list[str], env: dict[str, str], log: Path, timeout: float = 180
) -> Iterator[tuple[int, float]]:
    """Start `command --port P` on a free loopback port, wait for /readyz, stop its whole group.

    Yields the port and the seconds from start to ready. The environment is this process's
    without a pinned model, plus `env`. For the tests and the serving benchmark.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env={**{k: v for k, v in os.environ.items() if k != MODEL_ENV}, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not _ready(port):
            if process.poll() is not None or time.perf_counter() - start > timeout:
                raise RuntimeError(f"server did not get ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield port, time.perf_counter() - start
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()
