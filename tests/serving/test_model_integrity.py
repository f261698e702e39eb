"""Tampered or damaged model bundles are a clear error, never a LightGBM abort (SIGABRT).

Every load runs in a child process: before bundles carried SHA-256 records, these files
aborted the process that parsed them, which would take the test runner down with it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from flushcast.models.integrity import SUMS, record, recorded, sha256
from tests.serving.sandbox import Sandbox

Tamper = Callable[[Path], None]


def _edit(name: str, change: Callable[[str], str]) -> Tamper:
    def tamper(folder: Path) -> None:
        path = folder / name
        path.write_text(change(path.read_text()))

    return tamper


TAMPERED: dict[str, Tamper] = {
    "truncated model": _edit("flush_4h.txt", lambda t: t[: len(t) // 2]),
    "split_feature out of range": _edit(
        "flush_4h.txt", lambda t: re.sub(r"split_feature=\d+", "split_feature=99999", t, count=1)
    ),
    "left_child out of range": _edit(
        "flush_4h.txt", lambda t: re.sub(r"left_child=-?\d+", "left_child=77777", t, count=1)
    ),
    "num_leaves=2e9": _edit(
        "direction_12h.txt", lambda t: re.sub(r"num_leaves=\d+", "num_leaves=2000000000", t)
    ),
    "manifest edited": _edit("bundle.json", lambda t: t + "\n"),
    "model file removed": lambda folder: (folder / "flush_12h.txt").unlink(),
    "no record": lambda folder: (folder / SUMS).unlink(),
}
MESSAGES = {
    "model file removed": "is missing",
    "no record": f"has no {SUMS}",
}


def _bentoml_model(sandbox: Sandbox) -> Path:
    import bentoml

    return Path(bentoml.models.get(sandbox.tag).path)


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_the_written_record_covers_every_bundle_file(sandbox: Sandbox) -> None:
    folder = _bentoml_model(sandbox)
    sums = recorded(folder)
    assert set(sums) == {"bundle.json", "flush_4h.txt", "flush_12h.txt"} | {
        "direction_4h.txt",
        "direction_12h.txt",
    }
    assert all(sha256(folder / name) == digest for name, digest in sums.items())


def test_tampered_bundles_fail_to_load_with_a_message_not_an_abort(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    source = _bentoml_model(sandbox)
    folders = {}
    for i, (case, tamper) in enumerate(TAMPERED.items()):
        folders[case] = tmp_path / str(i)
        shutil.copytree(source, folders[case])
        tamper(folders[case])
    shutil.copytree(source, tmp_path / "intact")
    code = f"""
import json
from flushcast.models.bundle import Bundle
from flushcast.models.integrity import BundleIntegrityError
out = {{}}
for case, folder in {json.dumps({k: str(v) for k, v in folders.items()})}.items():
    try:
        Bundle.load(folder)
        out[case] = "loaded"
    except BundleIntegrityError as exc:
        out[case] = str(exc)
out["intact"] = sorted(Bundle.load({str(tmp_path / "intact")!r}).horizons)
print(json.dumps(out))
"""
    result = _run(code)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out.pop("intact") == [4, 12]
    for case, message in out.items():
        assert MESSAGES.get(case, "does not match its SHA-256") in message, (case, message)


@pytest.mark.slow
def test_serve_refuses_a_tampered_model_at_start_up(sandbox: Sandbox, tmp_path: Path) -> None:
    home = tmp_path / "bentoml"
    shutil.copytree(sandbox.bentoml_home, home)
    _, version = sandbox.tag.split(":")
    TAMPERED["truncated model"](home / "models" / "flushcast" / version)
    command = [sys.executable, "-m", "flushcast.serve_cli", "serve", "--model", sandbox.tag]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BENTOML_HOME": str(home)},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "flush_4h.txt does not match its SHA-256" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_importer_does_not_reuse_a_tampered_copy(registered: Sandbox, tmp_path: Path) -> None:
    sandbox = registered
    """A stored copy labelled with the champion's identity is reused only if its files match."""
    home = tmp_path / "bentoml"
    shutil.copytree(sandbox.bentoml_home, home)
    code = (
        "from flushcast.serving.importer import import_champion; "
        f"print(import_champion({sandbox.tracking_uri!r}))"
    )
    env = {"BENTOML_HOME": str(home)}
    again = _run(code, env)
    assert again.stdout.strip().splitlines()[-1] == sandbox.tag, again.stderr[-2000:]
    _, version = sandbox.tag.split(":")
    TAMPERED["left_child out of range"](home / "models" / "flushcast" / version)
    fresh = _run(code, env)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    tag = fresh.stdout.strip().splitlines()[-1]
    assert tag.startswith("flushcast:") and tag != sandbox.tag


@pytest.mark.slow
def test_the_mlflow_pyfunc_loader_verifies_the_bundle(registered: Sandbox, tmp_path: Path) -> None:
    sandbox = registered
    """Any MLflow consumer (`mlflow.pyfunc.load_model`) gets the integrity error, not an abort."""
    (model,) = [p.parent for p in sandbox.folder.glob("artifacts/**/MLmodel")]
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    bundle = next(copy.glob("**/bundle"))
    load = f"import mlflow.pyfunc; mlflow.pyfunc.load_model({str(copy)!r}); print('loaded')"
    assert _run(load).stdout.strip().endswith("loaded")
    TAMPERED["num_leaves=2e9"](bundle)
    result = _run(load)
    assert result.returncode == 1, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert "direction_12h.txt does not match its SHA-256" in result.stderr


def _recalibrated(key: str, value: object) -> Tamper:
    """An edit of every 4 h calibrator parameter `key`, checksums recomputed: what an attacker
    who can write the bundle (or a buggy exporter) produces; the integrity record passes."""

    def tamper(folder: Path) -> None:
        manifest = json.loads((folder / "bundle.json").read_text())
        manifest["horizons"]["4"]["calibrator"][key] = value
        (folder / "bundle.json").write_text(json.dumps(manifest))
        record(folder)

    return tamper


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [("a", float("nan"), "NaN is not a number"), ("b", float("inf"), "Infinity is not"),
     ("prior", "1e400", "1e400 is not a finite number"), ("weight", 7.0, "weight 7.0 outside"),
     ("a", -1.0, "must increase"), ("scale", 0.0, "scale 0.0")],
)  # fmt: skip
def test_a_bundle_with_numbers_out_of_range_is_refused_at_load(
    sandbox: Sandbox, tmp_path: Path, key: str, value: object, problem: str
) -> None:
    from flushcast.models.bundle import Bundle, BundleMismatch

    folder = tmp_path / "bundle"
    shutil.copytree(_bentoml_model(sandbox), folder)
    _recalibrated(key, value)(folder)
    if value == "1e400":  # as the JSON number 1e400, which Python reads as infinity
        text = (folder / "bundle.json").read_text().replace('"1e400"', "1e400")
        (folder / "bundle.json").write_text(text)
        record(folder)
    with pytest.raises(BundleMismatch, match=problem):
        Bundle.load(folder)
