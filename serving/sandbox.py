"""A throwaway champion on simulated data, for the tests, the benchmark and trying the service.

`python -m serving.sandbox FOLDER` simulates two symbols, trains a small bundle (no walk-forward
evaluation, so the promotion is forced), registers and promotes it in an MLflow SQLite store
under FOLDER, imports it into a BentoML home under FOLDER and writes an example /predict body
(`request.json`: the latest BTC feature row). It runs in its own process so that MLflow's
process-wide tracking URI and BentoML's home never leak into the caller.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from serving import MODEL_ENV, STORE_ENV

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
    from models.lgbm import FitSpec
    from serving.importer import import_champion
    from simulator import simulate
    from training.dataset import make_dataset
    from training.evaluate import EvalSpec
    from training.labels import LabelSpec
    from training.registry import promote
    from training.tracking import DEFAULT_EXPERIMENT, run_train

    market = simulate("default", list(SYMBOLS), days=days, seed=seed).frame
    market.to_parquet(sandbox.market)
    MarketStore(sandbox.store).write(market, {})
    MlflowClient(sandbox.tracking_uri).create_experiment(
        DEFAULT_EXPERIMENT, artifact_location=(folder / "artifacts").as_uri()
    )
    identity, _ = run_train(
        make_dataset(market, LabelSpec(horizons=HORIZONS)),
        EvalSpec(horizons=HORIZONS, n_boot=0),
        FitSpec(max_rounds=150, early_stopping=30),
        uri=sandbox.tracking_uri,
        evaluate_first=False,
    )
    promote(identity.version, force=True, tracking_uri=sandbox.tracking_uri)
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
    subprocess.run([sys.executable, "-m", "serving.sandbox", str(folder)], check=True)
    return Sandbox(folder)


if __name__ == "__main__":
    print(create(Path(sys.argv[1])).tag)
