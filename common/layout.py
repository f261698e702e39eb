"""The installed layout of a checkout: one `flushcast` package, the top-level folders inside it.

The repository keeps `common/`, `features/`, `models/`, ... at its top level; the wheel installs
them as `flushcast.common`, `flushcast.features`, ... (`[tool.setuptools.package-dir]` in
pyproject.toml says which folder is which package). Two tools need that layout as real folders:
`bentoml build`, which copies files by path, and `lint-imports`, whose import graph (grimp)
walks the root package's folder. `stage` copies the checkout into it, read from the same table
setuptools reads, so the bento and the layer check see exactly what the wheel installs.

    python -m flushcast.common.layout DEST     # stage the checkout into DEST (replaced)
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
"""The repository this file sits in (an editable install imports it from there)."""


def package_dirs(root: Path = CHECKOUT) -> dict[str, Path]:
    """Installed package name → its folder in the checkout (`flushcast.models` → `models/`)."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    mapping = config.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    if not mapping:
        raise ValueError(f"{root / 'pyproject.toml'}: no [tool.setuptools.package-dir] table")
    return {name: root / folder for name, folder in mapping.items()}


def stage(dest: Path, root: Path = CHECKOUT) -> Path:
    """Copy the checkout's packages into `dest` with the wheel's layout; `dest` is replaced.

    Parents are copied before their subpackages (`flushcast/` before `flushcast/models/`), so
    a mapped folder always wins over a same-named one inside its parent.
    """
    if dest.exists():
        shutil.rmtree(dest)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name, folder in sorted(package_dirs(root).items(), key=lambda item: item[0].count(".")):
        shutil.copytree(folder, dest / name.replace(".", "/"), ignore=skip, dirs_exist_ok=True)
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m flushcast.common.layout DEST")
    print(stage(Path(sys.argv[1]).resolve()))
