"""A throwaway champion on simulated data, for the tests, the benchmark and trying the service.

Test harness, so it lives in `tests/`, outside the package and the bento.
`python -m tests.serving.sandbox FOLDER` (from the checkout) simulates two symbols, trains a
small bundle (no walk-forward evaluation, so the promotion is forced), registers and promotes
it in an MLflow SQLite store under FOLDER, imports it into a BentoML home under FOLDER and
writes an example /predict body (`request.json`: the latest BTC feature row). It runs in its
own process so that MLflow's process-wide tracking URI and BentoML's home never leak into the
caller.
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

from serving import MODEL_ENV, ROOT, STORE_ENV

SYMBOLS = ("BTCUSDT", "ETHUSDT")
HORIZONS = (4, 12)


@dataclass(frozen=True)
class Sandbox:
    folder: Path

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
    def tag(self) -> str:
        """The BentoML tag of the imported champion."""
        return json.loads((self.folder / "sandbox.json").read_text())["tag"]

    def env(self) -> dict[str, str]:
        """Environment for a process that serves this sandbox's model."""
        return {
            "BENTOML_HOME": str(self.bentoml_home),
            MODEL_ENV: self.tag,
            STORE_ENV: str(self.store),
        }


def create(folder: Path, days: int = 90, seed: int = 1) -> Sandbox:
    """Train, register, promote and import, in this process (see `build` for a clean one)."""
    sandbox = Sandbox(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["BENTOML_HOME"] = str(sandbox.bentoml_home)
    from mlflow import MlflowClient

    from marketdata.store import MarketStore
    from serving.importer import import_champion
    from simulator import simulate
    from training.config import TrainingConfig
    from training.dataset import make_dataset
    from training.labels import LabelSpec
    from training.registry import promote
    from training.tracking import DEFAULT_EXPERIMENT, run_train

    market = simulate("default", list(SYMBOLS), days=days, seed=seed).frame
    market.to_parquet(sandbox.market)
    MarketStore(sandbox.store).write(market, {})
    MlflowClient(sandbox.tracking_uri).create_experiment(
        DEFAULT_EXPERIMENT, artifact_location=(folder / "artifacts").as_uri()
    )
    label = LabelSpec(horizons=HORIZONS)
    identity, _ = run_train(
        make_dataset(market, label),
        # One candidate: the tests need tree files (TreeSHAP, tampering) whatever the data says.
        TrainingConfig(label=label).with_overrides(
            {"evaluation.n_boot": 0, "fit.candidates": ["lightgbm"]}
        ),
        uri=sandbox.tracking_uri,
        evaluate_first=False,
    )
    promote(identity.model_version, force=True, tracking_uri=sandbox.tracking_uri)
    tag = import_champion(sandbox.tracking_uri)
    (folder / "sandbox.json").write_text(json.dumps({"tag": str(tag)}))
    sandbox.request.write_text(json.dumps(_example(market), indent=1))
    return sandbox


def _example(market: pd.DataFrame) -> dict:
    from features.build import build_features
    from features.registry import FEATURES

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
    """`create` in a fresh Python process."""
    command = [sys.executable, "-m", "tests.serving.sandbox", str(folder)]
    subprocess.run(command, check=True, cwd=ROOT)
    return Sandbox(folder)


if __name__ == "__main__":
    print(create(Path(sys.argv[1])).tag)


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
