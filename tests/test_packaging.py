"""The wheel installs one top-level package, `flushcast`; the repository keeps its folders.

Why: while the wheel put `common`, `models`, `features`, ... at the top of site-packages, a
data scientist's own `common.py` or `features/` beside a script shadowed flushcast's code
(`fc.load_market` failed with "No module named 'common.errors'; 'common' is not a package").
pyproject.toml maps each top-level package folder under `flushcast` (`[tool.setuptools.
package-dir]`); these tests hold the table to the tree, the code to `flushcast.X` imports, and
the built wheel to one top-level name.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from flushcast.common.layout import package_dirs

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NOT_INSTALLED = {"flushcast", "tests", "benchmarks", "notebooks"}
"""Top-level folders the wheel does not install as subpackages (flushcast is the package)."""


def _package_folders() -> set[str]:
    return {
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() and p.name not in NOT_INSTALLED and p.name.isidentifier()
    }


def test_pyproject_maps_every_package_folder_under_flushcast() -> None:
    mapping = {name: folder.relative_to(ROOT).as_posix() for name, folder in package_dirs().items()}
    assert mapping == {"flushcast": "flushcast"} | {f"flushcast.{d}": d for d in _package_folders()}

    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = {
        ".".join((name, *init.parent.relative_to(folder).parts))
        for name, folder in package_dirs().items()
        for init in folder.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert sorted(listed) == sorted(found), "re-run apply_packaging.py (or list the package)"


def test_the_code_imports_the_project_as_flushcast() -> None:
    """`import models...` would find a user's models.py first (and the wheel has no `models`)."""
    folders = _package_folders()
    roots = [*package_dirs().values(), ROOT / "tests", ROOT / "benchmarks"]
    bare = []
    for path in sorted({p for root in roots for p in root.rglob("*.py")}):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if any(name.split(".")[0] in folders for name in names):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bare, f"import the project as flushcast.X: {bare}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from a copy of the checkout's sources (a stale build/ cannot leak)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in package_dirs().values():
        shutil.copytree(folder, source / folder.name, ignore=skip)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out)]
    subprocess.run([*command, str(source)], check=True, capture_output=True, timeout=600)
    (built,) = out.glob("flushcast-*.whl")
    return built


@pytest.fixture(scope="module")
def clean_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with nothing but the wheel installed (by pip, as a user would)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    return venv


def _site_packages(venv: Path) -> Path:
    (site,) = venv.glob("lib/python3.*/site-packages")
    return site


@pytest.mark.slow
def test_the_wheel_installs_only_flushcast(wheel: Path, clean_venv: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        names = set(archive.namelist())
    version = wheel.name.split("-")[1]
    assert top == {"flushcast", f"flushcast-{version}.dist-info"}
    # package data travels with its package: the events calendar and the report's templates
    assert any(n.startswith("flushcast/features/data/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("flushcast/reporting/templates/") for n in names)

    installed = {p.name for p in _site_packages(clean_venv).iterdir()}
    assert installed == {"flushcast", f"flushcast-{version}.dist-info"}


USER_SCRIPT = """
import json, sys
import common, models, features          # the user's own helpers, beside the script
import flushcast as fc

market = fc.load_market(sys.argv[1])
table = fc.build_features(market)
print(json.dumps({
    "flushcast": fc.__file__,
    "rows": len(market),
    "feature_rows": len(table),
    "mine": [common.HELPER, models.HELPER, features.HELPER],
}))
"""


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data scientist's folder: a script beside its own common.py, models.py, features/."""
    folder = tmp_path_factory.mktemp("analysis")
    (folder / "common.py").write_text("HELPER = 'my common'\n")
    (folder / "models.py").write_text("HELPER = 'my models'\n")
    (folder / "features").mkdir()
    (folder / "features" / "__init__.py").write_text("HELPER = 'my features'\n")
    (folder / "study.py").write_text(USER_SCRIPT)
    store = folder / "store"
    simulate = [str(BIN / "flushcast"), "simulate", "--store", str(store), "--symbols", "BTCUSDT"]
    subprocess.run([*simulate, "--days", "10"], check=True, capture_output=True, timeout=300)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("install", ["wheel", "checkout"])
def test_a_script_beside_its_own_common_models_features_uses_flushcast(
    install: str, user_folder: Path, request: pytest.FixtureRequest
) -> None:
    """Both installs: the built wheel in a clean venv (dependencies borrowed from this one
    through a .pth line, which puts no project code on the path) and the editable checkout."""
    if install == "wheel":
        venv = request.getfixturevalue("clean_venv")
        site = _site_packages(venv)
        (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
        python = venv / "bin" / "python"
    else:
        python = Path(sys.executable)
    result = subprocess.run(
        [str(python), "study.py", str(user_folder / "store")],
        cwd=user_folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["mine"] == ["my common", "my models", "my features"]
    assert answer["rows"] > 0 and answer["feature_rows"] == answer["rows"]
    if install == "wheel":
        assert Path(answer["flushcast"]).is_relative_to(_site_packages(venv))
    else:
        assert Path(answer["flushcast"]).is_relative_to(ROOT)
