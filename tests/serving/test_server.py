"""Real servers on loopback: `flushcast serve` from source, and a built bento after `build`."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from flushcast.serving import MODEL_ENV, READ_TIMEOUT_ENV
from tests.serving.payloads import feature_row
from tests.serving.sandbox import Sandbox, running_server


@pytest.fixture(scope="module")
def sandbox(registered: Sandbox) -> Sandbox:
    """These tests serve or reload the MLflow champion: the registered sandbox."""
    return registered


pytestmark = pytest.mark.slow


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """A server on a free loopback port (see `running_server`); yields its base URL."""
    with contextlib.ExitStack() as stack:
        try:
            port, _ = stack.enter_context(running_server(command, env, log, timeout=120))
        except RuntimeError as exc:  # it never got ready: say why, with its log
            pytest.fail(str(exc))
        yield f"http://127.0.0.1:{port}"


def _identity(tag: str) -> dict[str, str]:
    import bentoml

    metadata = bentoml.models.get(tag).info.metadata
    return {k: metadata[k] for k in ("model_name", "model_version", "run_id")} | {"promoted": True}


def _closed_within(url: str, seconds: float) -> bool:
    """Whether the server closes a connection that sends half a request line within `seconds`."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=seconds) as conn:
        conn.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        try:
            return conn.recv(1024) == b""
        except TimeoutError:
            return False


def _docs_page_loads_nothing_from_outside(url: str, http: httpx.Client, tmp_path: Path) -> None:
    """The docs page is flushcast's, drawn from packaged files: every request the browser makes
    goes to the service (a risk desk's browser must load nothing from outside)."""
    import json

    from flushcast.reporting.browser import check_page, executable

    page = http.get("/")
    assert page.status_code == 200 and "googletagmanager" not in page.text
    assert "<title>flushcast 0.1.0: API</title>" in page.text
    spec = http.get("/docs.json").json()
    assert spec["info"]["title"] == "flushcast" and "BentoML" not in json.dumps(spec["info"])
    assert all(spec["paths"][r]["post"]["summary"] for r in ("/predict", "/explain"))
    if executable() is None:
        if os.environ.get("FLUSHCAST_BROWSER_TEST") == "required":
            pytest.fail("chromium not installed; FLUSHCAST_BROWSER_TEST=required")
        return  # the browser half needs Debian's chromium (`make test-slow` installs it)
    ready = "document.querySelectorAll('.opblock').length > 5"
    check = check_page(f"{url}/", ready=ready)
    assert check.errors == []
    assert check.fetched and all(r.startswith(f"{url}/") for r in check.fetched), check.requests
    assert any(r.endswith("/docs-ui.json") for r in check.requests)
    (tmp_path / "docs.png").write_bytes(check.screenshot)


def test_serve_answers_and_survives_bad_input(
    sandbox: Sandbox, table: pd.DataFrame, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "flushcast.serve_cli", "serve", "--model", sandbox.tag]
    env = {**sandbox.env(), READ_TIMEOUT_ENV: "1"}
    with (
        running([*command, "--workers", "1"], env, tmp_path / "log") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        assert _closed_within(url, 5)  # the worker runs uvicorn with the header deadline
        identity = http.get("/model").json()["model"]
        assert identity == _identity(sandbox.tag)
        body = {"symbol": "ETHUSDT", "features": feature_row(table, 200)}
        good = http.post("/predict", json=body)
        assert good.status_code == 200 and good.json()["model"] == identity
        json_type = {"content-type": "application/json"}
        table_body = {"columns": ["x"], "rows": [{"symbol": "A", "values": []}]}
        bad = [
            http.post("/predict", content=b"\x80\x04.", headers={"content-type": "text/plain"}),
            http.post("/predict", content=b'{"symbol": NaN}', headers=json_type),
            http.post("/predict", json={**body, "symbol": ""}),
            http.post("/predict_batch", json={"table": table_body}),
        ]
        assert [r.status_code for r in bad] == [415, 400, 400, 400]
        assert http.get("/readyz").status_code == 200
        assert http.post("/predict", json=body).json() == good.json()
        _docs_page_loads_nothing_from_outside(url, http, tmp_path)
    log = (tmp_path / "log").read_text()
    assert log.count("client error 400") == 3 and "client error 415" in log
    assert "Traceback" not in log and "[ERROR]" not in log


def test_build_packages_the_champion_and_the_bento_serves_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`flushcast build` makes a bento holding the champion; served, it answers with that model
    even when a newer model sits in the local store."""
    import bentoml

    env = {k: v for k, v in os.environ.items() if k != MODEL_ENV}
    command = [
        sys.executable,
        "-m",
        "flushcast.serve_cli",
        "build",
        "--tracking-uri",
        sandbox.tracking_uri,
    ]
    subprocess.run(command, env=env, check=True, capture_output=True)
    bento = bentoml.bentos.get("flushcast:latest")
    (model,) = bento.info.services[0].models
    assert str(model.tag) == sandbox.tag
    archive = bentoml.bentos.export_bento(bento.tag, str(tmp_path / "flushcast.bento"))
    with tarfile.open(archive) as tar:
        names = {name.removeprefix("./") for name in tar.getnames()}
    assert f"models/flushcast/{model.tag.version}/bundle.json" in names
    # laid out as the wheel installs it: one flushcast package, the service inside it
    assert "src/flushcast/serving/service.py" in names
    assert not any(name.startswith(("src/serving/", "src/common/")) for name in names)

    decoy = bentoml.models.get(sandbox.tag)
    metadata = {**decoy.info.metadata, "model_version": "99", "run_id": "decoy"}
    with bentoml.models.create("flushcast", metadata=metadata) as newer:
        shutil.copytree(decoy.path, newer.path, dirs_exist_ok=True)
    try:
        serve = [sys.executable, "-m", "bentoml", "serve", str(bento.tag)]
        with running(serve, {}, tmp_path / "log") as url:
            assert httpx.get(f"{url}/model").json()["model"] == _identity(sandbox.tag)
    finally:
        bentoml.models.delete(newer.tag)


def test_serve_without_a_champion_says_so(sandbox: Sandbox, tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    command = [sys.executable, "-m", "flushcast.serve_cli", "serve", "--tracking-uri", empty]
    environment = {**os.environ, **sandbox.env()}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "no version or alias 'champion'" in result.stderr
    assert "flushcast serve --version latest" in result.stderr  # the way forward, named
