"""One small model for the whole serving suite, trained on simulated data in a temp folder.

`sandbox` trains it in this process and puts it in a BentoML home (set before anything resolved
BentoML's home), so the service loads in-process; `registered` adds the MLflow registry (in a
subprocess) for the slow tests that serve or reload the champion.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd
import pytest
from starlette.testclient import TestClient

from tests.serving.sandbox import Sandbox, create, register


@pytest.fixture(scope="session")
def created(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from bentoml._internal.configuration.containers import BentoMLContainer

    folder = tmp_path_factory.mktemp("serving") / "sandbox"
    saved = {k: os.environ.get(k) for k in ("BENTOML_HOME", "FLUSHCAST_MODEL", "FLUSHCAST_STORE")}
    box = create(folder)
    os.environ.update(box.env())
    if BentoMLContainer.bentoml_home.get() != str(box.bentoml_home):
        pytest.fail("BentoML resolved its home before the sandbox set BENTOML_HOME")
    yield box
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def sandbox(created: Sandbox) -> Sandbox:
    """The in-process sandbox (modules that need the registry override it with `registered`)."""
    return created


@pytest.fixture(scope="session")
def registered(created: Sandbox) -> Sandbox:
    """The sandbox with its bundle registered, promoted and imported from MLflow (slow)."""
    return register(created)


@pytest.fixture(scope="session")
def market(created: Sandbox) -> pd.DataFrame:
    return pd.read_parquet(created.market)


@pytest.fixture(scope="session")
def service(created: Sandbox):
    """The BentoML service class instantiated in this process (loads and warms the model)."""
    from flushcast.service import Flushcast

    return Flushcast()


@pytest.fixture(scope="session")
def client(created: Sandbox) -> Iterator[TestClient]:
    """The service's ASGI app, as `bentoml serve` runs it, behind a test client."""
    from flushcast.service import Flushcast

    with TestClient(Flushcast.to_asgi(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def table(market: pd.DataFrame) -> pd.DataFrame:
    """The training feature table of the sandbox market (every bar, both symbols)."""
    from flushcast.features.build import build_features

    return build_features(market)
