"""Shared fixtures: where the real data lives, and a fresh temporary store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from flushcast.common.engine import CLUSTER_ENV, IN_PROCESS

# Tests run their walk-forwards in process unless one asks for a cluster: a LocalCluster per
# test would cost seconds each (tests/training/test_engine.py starts the clusters it compares).
os.environ.setdefault(CLUSTER_ENV, IN_PROCESS)

POSTGRES_ENV = "FLUSHCAST_TEST_POSTGRES"
"""A PostgreSQL server URI the registry tests may create databases on (`make test-slow` sets
it after `.ci/postgres` has installed and started Debian's server)."""

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real-data folder beside the checkout; tests that need it skip without it."""
    if not (REAL_DATA / "MANIFEST.json").is_file():
        pytest.skip(f"real data not found at {REAL_DATA} (it sits beside the checkout in CI)")
    return REAL_DATA


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (`postgresql://...`, as a user writes
    it), dropped afterwards; skips with the reason when no server is configured or reachable."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV}=postgresql://USER:PW@HOST/DB")
    import psycopg

    name = f"flushcast_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_ENV} unreachable: {str(exc).strip()[:200]}")
    yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
