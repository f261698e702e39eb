"""The registry on PostgreSQL, as a team shares it: `--tracking-uri postgresql://...` for
train, evaluate, promote and rollback, two trainings registering and two promotions at once,
and the champion loaded the way `serve` and `monitor` load it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from flushcast.training.registry import CHAMPION, MODEL_NAME, ROLLBACK
from flushcast.training.tracking import tracking_uri as resolve

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
RECIPE = ["--horizons", "4", "--n-boot", "0", "--set", "fit.lightgbm.rounds=30"]


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENTOML_HOME": str(cwd / "bentoml")}
    return subprocess.Popen(
        [str(BIN / "flushcast"), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    return outputs


def test_two_trainings_and_two_promotions_at_once_on_postgresql(sim_store, tmp_path, postgres_uri):
    uri = ["--tracking-uri", postgres_uri]
    train = ["train", "--store", str(sim_store), *RECIPE, *uri]
    evaluate = ["evaluate", "--store", str(sim_store), "--json", "eval.json", *RECIPE, *uri]
    outputs = _finish(
        [_start(train, tmp_path), _start(train, tmp_path), _start(evaluate, tmp_path)]
    )
    registered = sorted(
        re.search(r"registered flushcast version (\d+)", out).group(1) for out in outputs[:2]
    )
    assert registered == ["1", "2"]  # no version lost, none registered twice
    c = MlflowClient(resolve(postgres_uri))
    for version in registered:
        found = c.get_model_version(MODEL_NAME, version)
        assert found.status == "READY"
        assert {"evaluation", "fingerprint"} <= set(found.tags)
    assert json.loads((tmp_path / "eval.json").read_text())["4"]["n_folds"] > 0

    # Both promoted at once (forced: the small market need not pass the gate).
    _finish([_start(["promote", v, "--force", *uri], tmp_path) for v in registered])
    champion = c.get_model_version_by_alias(MODEL_NAME, CHAMPION).version
    previous = c.get_model_version_by_alias(MODEL_NAME, ROLLBACK).version
    assert {str(champion), str(previous)} == {"1", "2"}  # one after the other, both recorded
    (said,) = _finish([_start(["rollback", *uri], tmp_path)])
    assert f"champion is version {previous} again" in said
    assert str(c.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == str(previous)

    # What `serve` imports and what `monitor` and `report` load, from the same URI.
    importer = "from flushcast.serving.importer import import_champion as i"
    code = f"import sys; {importer}; print(i(sys.argv[1]))"
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml")}
    imported = subprocess.run(
        [sys.executable, "-c", code, postgres_uri], env=env, capture_output=True, text=True
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    from flushcast.reporting.registered import load_predictor

    predictor, walk_forward = load_predictor(CHAMPION, postgres_uri)
    assert predictor.identity.model_version == str(previous)
    assert walk_forward is not None
