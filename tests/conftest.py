"""Shared fixtures: where the real data lives, and a fresh temporary store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.engine import CLUSTER_ENV, IN_PROCESS

# Tests run their walk-forwards in process unless one asks for a cluster: a LocalCluster per
# test would cost seconds each (tests/training/test_engine.py starts the clusters it compares).
os.environ.setdefault(CLUSTER_ENV, IN_PROCESS)

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real-data folder beside the checkout; tests that need it skip without it."""
    if not (REAL_DATA / "MANIFEST.json").is_file():
        pytest.skip(f"real data not found at {REAL_DATA} (it sits beside the checkout in CI)")
    return REAL_DATA
