"""SHA-256 of every file of a model bundle, recorded when it is written, checked before parsing.

LightGBM's text-model parser aborts the whole process (SIGABRT, no Python exception) on a
truncated or malformed model file, so a corrupted or tampered bundle would put a server into a
crash loop. Checking the bytes first turns that into a clear error before LightGBM sees them.

The record is `SHA256SUMS` in the bundle folder, in `sha256sum` format, so
`sha256sum -c SHA256SUMS` checks a bundle by hand too. It guards against corruption and against
files changed after the bundle was written; it is not a signature: whoever can rewrite the
folder can rewrite the record as well.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flushcast.common.atomic import write_atomic

SUMS = "SHA256SUMS"
CHUNK = 1 << 20


class BundleIntegrityError(RuntimeError):
    """A bundle file is missing, changed or unrecorded: refuse to parse it."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def record(folder: Path) -> dict[str, str]:
    """Hash every file directly in `folder` (the bundle's files) into `SHA256SUMS`, last."""
    sums = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != SUMS}
    text = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    write_atomic(folder / SUMS, lambda tmp: tmp.write_text(text))
    return sums


def recorded(folder: Path) -> dict[str, str]:
    """The record of `folder`: file name -> SHA-256, as written by `record`."""
    path = folder / SUMS
    if not path.is_file():
        raise BundleIntegrityError(
            f"model bundle at {folder} has no {SUMS}: it was written before bundles recorded "
            "their hashes, or the record was removed; retrain (flushcast train) to get one"
        )
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name or "/" in name or name in (".", ".."):
            raise BundleIntegrityError(f"{path}, line {number}: not a `sha256sum` line")
        sums[name] = digest
    return sums


def verify(folder: str | Path, manifest: str) -> dict[str, str]:
    """Check every recorded file of `folder` against its SHA-256; the record on success.

    The manifest (which names every other file) must be among them: a manifest that was
    hashed names only files its writer hashed.
    """
    folder = Path(folder)
    sums = recorded(folder)
    if manifest not in sums:
        raise BundleIntegrityError(f"{folder / SUMS} does not record {manifest}")
    for name, digest in sums.items():
        path = folder / name
        if not path.is_file():
            raise BundleIntegrityError(f"model bundle file {path} is missing")
        if sha256(path) != digest:
            raise BundleIntegrityError(
                f"model bundle file {path} does not match its SHA-256 in {SUMS}: it was changed "
                "or damaged after the bundle was written; refusing to load it"
            )
    return sums
