"""Reading a file's bytes whole, decompressing .zip/.gz/.bz2/.xz within fixed limits.

A small archive can expand without bound (1 MB of zeros compresses to about 1 KB), and every
reader holds the whole text in memory, so the uncompressed size and the compression ratio are
capped before and while decompressing; a file over a cap is refused naming its member and the
cap, never half-read.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
from pathlib import Path
from typing import BinaryIO

from flushcast.common.errors import DataError

MAX_BYTES = 512 * 2**20
"""Largest uncompressed file accepted (a month of 1-second Binance klines is about 300 MB)."""

MAX_RATIO = 100
"""Largest compression ratio accepted: market CSVs deflate 4 to 20 times, bombs 1000 times."""

_STREAMS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_CHUNK = 1 << 20


def _bounded(stream: BinaryIO, compressed: int, where: str) -> bytes:
    limit = min(MAX_BYTES, max(compressed, 1) * MAX_RATIO)
    chunks, size = [], 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise DataError(_too_big(size, compressed, over=True), file=where)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(size: int, compressed: int, *, over: bool = False) -> str:
    more = "more than " if over else ""
    return (
        f"expands to {more}{size:,} bytes from {compressed:,} (limits: {MAX_BYTES:,} bytes, "
        f"ratio {MAX_RATIO}); refusing a possible decompression bomb"
    )


def zip_member(path: Path, *, suffix: str = ".csv") -> tuple[str, bytes]:
    """The one member of a zip whose name ends with `suffix`: its display name
    (`file.zip:member.csv`) and bytes."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if i.filename.lower().endswith(suffix)]
            if len(members) != 1:
                found = ", ".join(archive.namelist()) or "nothing"
                what = suffix[1:].upper() or "file"
                raise DataError(f"expected one {what} in the zip, found {found}", file=path)
            info = members[0]
            where = f"{path}:{info.filename}"
            declared_ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > MAX_BYTES or declared_ratio > MAX_RATIO:
                raise DataError(_too_big(info.file_size, info.compress_size), file=where)
            with archive.open(info) as stream:
                return where, _bounded(stream, info.compress_size, where)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise DataError(f"not a readable zip archive ({exc})", file=path) from None


def read_bytes(path: Path) -> bytes:
    """The bytes of `path`, decompressed by its suffix (.zip with one member, .gz, .bz2, .xz)."""
    path = Path(path)
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if suffix == ".zip":
        return zip_member(path, suffix="")[1]
    if suffix in _STREAMS:
        try:
            with _STREAMS[suffix](path, "rb") as stream:
                return _bounded(stream, size, str(path))
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise DataError(f"not a readable {suffix[1:]} file ({exc})", file=path) from None
    if size > MAX_BYTES:
        raise DataError(f"{size:,} bytes is more than the {MAX_BYTES:,} accepted", file=path)
    return path.read_bytes()
