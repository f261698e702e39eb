"""A model trained across bar sizes, used the way a user would (slow tier).

`flushcast train --store <4 h> --train-store <1 h>` registers a version whose inputs include the
bar size; that version then answers /predict and /explain in process (the service's ASGI app
behind a test client, as `bentoml serve` runs it), writes a report with `flushcast report`, and
predicts through the notebook API, and all three agree on the probability of the same bar.
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
from flushcast.serving.service import Flushcast
from flushcast.training.registry import download_bundle

market = fc.load_market(store)
btc = market[market["symbol"].astype(str) == "BTCUSDT"]
venue = str(btc["venue"].iloc[0])
btc = btc.drop(columns=["symbol", "venue"])
with TestClient(Flushcast.to_asgi()) as client:
    info = client.get("/model").json()
    tail = btc.tail(info["bars_needed"])
    bars = [
        {k: v for k, v in dict(r, timestamp=r["timestamp"].isoformat()).items() if v == v}
        for r in tail.to_dict("records")
    ]
    request = {"symbol": "BTCUSDT", "venue": venue, "bars": bars}
    predicted = client.post("/predict", json={**request, "explain": True})
    explained = client.post("/explain", json=request)
_, bundle = download_bundle("1", Path(folder), tracking_uri=uri)
model = fc.FlushForecaster.load(bundle)
notebook = model.predict(market).xs("BTCUSDT", level="symbol").iloc[-1]
print(json.dumps({
    "info": info,
    "predict": [predicted.status_code, predicted.json()],
    "explain": [explained.status_code, explained.json()],
    "notebook": {k: float(v) for k, v in notebook.items()},
    "features": model.fitted.features,
}))
"""


def _run(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [FLUSHCAST, *args],
        cwd=folder,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"flushcast {' '.join(args)}:\n{done.stderr[-3000:]}"
    return done


def serve_and_predict(folder: Path, store: str, uri: str, env: dict[str, str]) -> dict:
    """Version 1 of the registry at `uri` asked for BTCUSDT's last bar of `folder`/`store`: in
    process by /model, /predict and /explain, and by the notebook API (`SERVE_AND_PREDICT`)."""
    places = [str(folder / name) for name in (store, "bentoml", "download")]
    done = subprocess.run(
        [sys.executable, "-c", SERVE_AND_PREDICT, places[0], uri, *places[1:]],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_model_trained_on_stores_of_two_bar_sizes_serves_reports_and_predicts(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    sim = ["simulate", "--days", "150", "--store"]
    _run(tmp_path, env, *sim, "four", "--bar", "4h", "--symbols", "BTCUSDT,ETHUSDT", "--seed", "3")
    _run(tmp_path, env, *sim, "hourly", "--bar", "1h", "--symbols", "SOLUSDT", "--seed", "4")
    recipe = ["--horizons", "4,12", "--n-boot", "0", "--retrain-every", "720"]
    recipe += ["--set", "fit.lightgbm.rounds=30", "--set", "fit.candidates=[logistic,lightgbm]"]
    _run(tmp_path, env, "train", "--store", "four", "--train-store", "hourly", *recipe)
    report = tmp_path / "report.html"
    shown = ["--symbol", "BTCUSDT", "--store", "four", "--version", "1", "--out", str(report)]
    _run(tmp_path, env, "report", *shown)
    assert "BTCUSDT" in report.read_text()

    answer = serve_and_predict(tmp_path, "four", uri, env)
    assert answer["info"]["bar_hours"] == 4.0
    assert "bar_hours" not in answer["features"]  # built by the bundle, not a feature
    status, predicted = answer["predict"]
    assert status == 200, predicted
    for horizon in predicted["horizons"]:
        p = answer["notebook"][f"p_flush_{horizon['horizon_hours']}h"]
        assert horizon["p_flush"] == pytest.approx(p, rel=1e-9)
        assert horizon["explanation"]["top"]
    status, explained = answer["explain"]
    assert status == 200, explained
    for horizon in explained["horizons"]:
        inputs = {c["feature"]: c for c in horizon["contributions"]}
        assert inputs["bar_hours"]["value"] == 4.0 and inputs["symbol"]["value"] == "BTCUSDT"
