"""Schemathesis against a served sandbox model: the spec says what the service answers.

`st run` with every check over the served /docs.json, bounded by `schemathesis.toml` beside
this file (50 examples per operation and phase, fixed seed), plus the hook check that a
schema-valid request is refused only for data problems (`schemathesis_hooks.py`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flushcast.serving import ROOT
from tests.serving.sandbox import Sandbox, running_server


@pytest.fixture(scope="module")
def sandbox(registered: Sandbox) -> Sandbox:
    """These tests serve or reload the MLflow champion: the registered sandbox."""
    return registered


pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def test_schemathesis_finds_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    serve = [sys.executable, "-m", "flushcast.serve_cli", "serve", "--model", sandbox.tag]
    serve += ["--workers", "1", "--store", str(sandbox.store)]
    # Live operation on, so its routes answer too; the sandbox's simulated bars are years old,
    # so /risk is told to tolerate that rather than answer 503 "too stale".
    serve += ["--live", str(tmp_path / "live"), "--stale-after", "1e6", "--stale-limit", "1e6"]
    serve += ["--tracking-uri", sandbox.tracking_uri]  # POST /reload reads the champion
    with running_server(serve, sandbox.env(), tmp_path / "serve.log", timeout=120) as (port, _):
        st = Path(sys.executable).with_name("st")
        command = [str(st), "--config-file", str(HERE / "schemathesis.toml"), "run"]
        command += [f"http://127.0.0.1:{port}/docs.json", "--checks", "all", "--no-color"]
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.serving.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
        }
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
    log = (tmp_path / "serve.log").read_text()
    assert "client error 400" in log and "Traceback" not in log
