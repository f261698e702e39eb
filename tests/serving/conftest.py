"""One small champion for the whole serving suite: trained on simulated data in a temp folder.

The sandbox trains and imports in its own process; this process then points BentoML at the
sandbox's home (before anything resolved BentoML's home) to load the service in-process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd
import pytest
from starlette.testclient import TestClient

from tests.serving.sandbox import Sandbox, build


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from bentoml._internal.configuration.containers import BentoMLContainer

    box = build(tmp_path_factory.mktemp("serving") / "sandbox")
    saved = {k: os.environ.get(k) for k in box.env()}
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
def market(sandbox: Sandbox) -> pd.DataFrame:
    return pd.read_parquet(sandbox.market)


@pytest.fixture(scope="session")
def service(sandbox: Sandbox):
    """The BentoML service class instantiated in this process (loads and warms the model)."""
    from serving.service import Flushcast

    return Flushcast()


@pytest.fixture(scope="session")
def client(sandbox: Sandbox) -> Iterator[TestClient]:
    """The service's ASGI app, as `bentoml serve` runs it, behind a test client."""
    from serving.service import Flushcast

    with TestClient(Flushcast.to_asgi(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def table(market: pd.DataFrame) -> pd.DataFrame:
    """The training feature table of the sandbox market (every bar, both symbols)."""
    from features.build import build_features

    return build_features(market)
