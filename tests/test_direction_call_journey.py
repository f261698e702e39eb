"""The direction call stacked with its trivial rules, used the way a user would (slow tier).

`flushcast train --set combination.direction=stack` at 1 h, 4 h and daily bars registers a
version whose bundle ships, per horizon, the direction trees and the trivial rules as scorers
(`models.direction.DirectionCall`); that version answers /predict in process (the service's
ASGI app behind a test client) and through the notebook API, and both give the same
P(long flush) for the same bar.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
FLUSHCAST = str(Path(sys.executable).with_name("flushcast"))

SERVE_AND_PREDICT = """
import json, os, sys
from pathlib import Path

store, uri, home, folder = sys.argv[1:]
os.environ["BENTOML_HOME"] = home  # before BentoML resolves its home
from flushcast.serving import MODEL_ENV, PROMOTED_ENV, STORE_ENV
from flushcast.serving.importer import import_champion

os.environ[MODEL_ENV] = str(import_champion(uri, "1"))
os.environ[PROMOTED_ENV] = "0"
os.environ[STORE_ENV] = store
from starlette.testclient import TestClient

import flushcast as fc
from flushcast.models.bundle import Bundle
from flushcast.serving.service import Flushcast
from flushcast.training.registry import download_bundle

market = fc.load_market(store)
btc = market[market["symbol"].astype(str) == "BTCUSDT"].drop(columns=["symbol", "venue"])
with TestClient(Flushcast.to_asgi()) as client:
    info = client.get("/model").json()
    tail = btc.tail(info["bars_needed"])
    bars = [
        {k: v for k, v in dict(r, timestamp=r["timestamp"].isoformat()).items() if v == v}
        for r in tail.to_dict("records")
    ]
    predicted = client.post("/predict", json={"symbol": "BTCUSDT", "venue": "sim", "bars": bars})
_, path = download_bundle("1", Path(folder), tracking_uri=uri)
bundle = Bundle.load(path)
notebook = fc.FlushForecaster.load(path).predict(market).xs("BTCUSDT", level="symbol").iloc[-1]
print(json.dumps({
    "predict": [predicted.status_code, predicted.json()],
    "notebook": {k: float(v) for k, v in notebook.items()},
    "calls": {
        str(h): {
            "kind": m.direction.kind if m.direction is not None else None,
            "rules": [r.name for r in getattr(m.direction, "rules", [])],
            "weights": m.choice["direction"]["weights"],
        }
        for h, m in bundle.horizons.items()
    },
}))
"""

BARS = {"1h": (110, "4,12", 720), "4h": (120, "4,12", 720), "1d": (500, "24,48", 2880)}


def _run(folder: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [FLUSHCAST, *args],
        cwd=folder,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"flushcast {' '.join(args)}:\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("bar", list(BARS))
def test_a_stacked_direction_call_trains_serves_and_predicts_alike_at_every_bar(tmp_path, bar):
    days, horizons, every = BARS[bar]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    _run(tmp_path, env, "simulate", "--days", str(days), "--store", "store", "--bar", bar,
         "--symbols", "BTCUSDT,ETHUSDT", "--seed", "3")  # fmt: skip
    recipe = ["--horizons", horizons, "--n-boot", "0", "--retrain-every", str(every)]
    recipe += ["--set", "fit.lightgbm.rounds=30", "--set", "fit.candidates=[logistic,lightgbm]"]
    recipe += ["--set", "combination.inputs=[logistic,lightgbm]"]
    recipe += ["--set", "fit.direction.rounds=20", "--set", "combination.direction=stack"]
    _run(tmp_path, env, "train", "--store", "store", "--no-evaluate", *recipe)

    places = [str(tmp_path / name) for name in ("store", "bentoml", "download")]
    done = subprocess.run(
        [sys.executable, "-c", SERVE_AND_PREDICT, places[0], uri, *places[1:]],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    for h, call in answer["calls"].items():
        # The bundle ships the trees with the rules its data can feed, and their weights.
        assert call["kind"] == "direction_call", h
        assert {"majority", "funding_sign", "return_24h_sign"} <= set(call["rules"]), h
        assert set(call["weights"]) == {"model", *call["rules"]}, h
    status, predicted = answer["predict"]
    assert status == 200, predicted
    assert {str(h["horizon_hours"]) for h in predicted["horizons"]} == set(answer["calls"])
    for horizon in predicted["horizons"]:
        p = answer["notebook"][f"p_long_flush_{horizon['horizon_hours']}h"]
        assert horizon["p_long_flush"] == pytest.approx(p, rel=1e-9)
