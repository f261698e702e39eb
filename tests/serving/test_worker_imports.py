"""What a serving worker loads: the model's identity comes without MLflow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flushcast.serving import ROOT

PROBE = (
    "import sys, flushcast.service; "
    "print(sorted(m for m in ('mlflow', 'training.registry') if m in sys.modules))"
)


@pytest.mark.slow  # a fresh interpreter importing BentoML: seconds
def test_a_serving_worker_imports_no_mlflow() -> None:
    """The shipped service module (what each worker imports) needs the registry's identity
    dataclass, not the registry: MLflow costs every worker seconds and memory for three strings."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
