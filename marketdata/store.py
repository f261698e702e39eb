"""The local store: canonical frames as Parquet, one dataset per (symbol, venue), each at its bar.

Layout:

    ROOT/MANIFEST.json                       the commit point: which file is each dataset, its bar
    ROOT/<venue>/<symbol>.<digest>.parquet   immutable dataset versions (digest: of the file bytes)

A write stages every new version beside its final name, renames them into their (new, unused)
version names, and then switches the whole store in one rename of the manifest; readers follow
the manifest only. So a reader, or a writer killed at any instant, sees the old state or the new
one, never a mix. Versions the manifest no longer names, and `.staged` files of a killed writer,
are deleted by the next write. Writers take an exclusive lock (an flock on the ROOT folder
itself, no lock file) for their whole read-merge-write cycle (`locked`), so two ingests into one
store never lose each other's rows. Identical content gives the identical version name, so
writing what is stored changes no byte.

Stores written before the manifest existed (`ROOT/<venue>/<symbol>.parquet`, hourly) are read
as they are and take a manifest at their next write.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flushcast.common.errors import DataError
from flushcast.marketdata.schema import (
    BAR,
    COLUMNS,
    STORED_BARS,
    bar_name,
    conform,
    empty_frame,
    name_problem,
    parse_bar,
)
from flushcast.marketdata.validate import ValidationReport, validate

MANIFEST = "MANIFEST.json"
FORMAT = 1
LOCK_TIMEOUT_S = 600.0
"""How long a writer waits for another writer of the same store before giving up."""

READ_ATTEMPTS = 5
"""A reader that finds a version deleted under it (a writer committed meanwhile) rereads the
manifest and starts again, at most this many times."""

_META_KEY = b"flushcast"
_BAR_KEY = b"flushcast.bar"
_VERSION = re.compile(r"^(?P<symbol>.+)\.[0-9a-f]{16}\.parquet$")
_STAGED = re.compile(r"^\..+\.\d+\.staged$")


@dataclass(frozen=True)
class Dataset:
    """One stored series: a symbol on a venue, at its bar size."""

    symbol: str
    venue: str
    path: Path
    bar: pd.Timedelta = BAR
    rows: int | None = None


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()[:16]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Delete a file no manifest names; one that cannot be deleted (a read-only store) is
    left for a later write, never an error: readers follow the manifest only."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _check_name(text: str, what: str) -> None:
    problem = name_problem(text, what)
    if problem is not None:
        raise DataError(f"{problem}: it cannot name a stored dataset", column=what)


class MarketStore:
    """A folder of canonical frames. Cheap to create; reads nothing until asked."""

    def __init__(self, root: str | Path, *, lock_timeout: float = LOCK_TIMEOUT_S) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self._owner: int | None = None
        self._depth = 0

    # ---- reading -------------------------------------------------------------------------

    def _check_root(self) -> None:
        """A store is a folder: a path naming anything else is refused in one line."""
        if self.root.exists() and not self.root.is_dir():
            raise DataError("not a store: it is a file, and a store is a folder", file=self.root)

    def _manifest(self) -> dict | None:
        self._check_root()
        path = self.root / MANIFEST
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            manifest = json.loads(text)
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format {manifest.get('format')!r}, expected {FORMAT}")
            return manifest
        except (ValueError, AttributeError) as exc:
            raise DataError(f"unreadable store manifest: {exc}", file=path) from None

    def _entries(self, manifest: dict | None) -> list[Dataset]:
        if manifest is None:
            if not self.root.is_dir():
                return []
            return [
                Dataset(symbol=p.stem, venue=p.parent.name, path=p)
                for p in sorted(self.root.glob("*/*.parquet"))
                if not p.parent.name.startswith(".")
            ]
        return [
            Dataset(
                symbol=e["symbol"],
                venue=e["venue"],
                path=self.root / e["file"],
                bar=parse_bar(e["bar"]),
                rows=e["rows"],
            )
            for e in manifest["datasets"]
        ]

    def datasets(self) -> list[Dataset]:
        """Every stored series, sorted by venue then symbol, as the manifest names them."""
        return self._entries(self._manifest())

    def _chosen(
        self, datasets: Iterable[Dataset], symbols: list[str] | None, venue: str | None
    ) -> list[Dataset]:
        return [
            d
            for d in datasets
            if (symbols is None or d.symbol in symbols) and (venue is None or d.venue == venue)
        ]

    def _find(self, symbol: str, venue: str) -> Dataset | None:
        return next((d for d in self.datasets() if d.symbol == symbol and d.venue == venue), None)

    def path(self, symbol: str, venue: str) -> Path:
        """The file holding the dataset now (where a legacy store would keep it, if absent)."""
        found = self._find(symbol, venue)
        return found.path if found is not None else self.root / venue / f"{symbol}.parquet"

    def bar(self, symbol: str, venue: str) -> pd.Timedelta:
        """The bar size the series is stored at (1 h for stores written before bars were kept)."""
        found = self._find(symbol, venue)
        if found is None:
            raise DataError(f"no dataset {symbol} on {venue} in store {self.root}")
        return found.bar

    def common_bar(
        self, symbols: list[str] | None = None, venue: str | None = None
    ) -> pd.Timedelta:
        """The one bar size of the chosen datasets; a DataError names them when they differ."""
        chosen = self._chosen(self.datasets(), symbols, venue)
        if not chosen:
            raise DataError(f"no datasets in store {self.root} match the selection")
        bars = {d.bar for d in chosen}
        if len(bars) > 1:
            listing = ", ".join(f"{d.symbol} {d.venue} {bar_name(d.bar)}" for d in chosen)
            raise DataError(
                f"the chosen series have different bar sizes ({listing}); choose series of one "
                "bar size, or ingest the finer ones again with --bar"
            )
        return bars.pop()

    def read(self, symbols: list[str] | None = None, venue: str | None = None) -> pd.DataFrame:
        """All stored rows of the chosen symbols (and venue), sorted as the schema wants.

        Every dataset is validated at its own bar. The datasets come from one manifest: if a
        writer commits while this reads, the read starts again from the new manifest.
        """
        for attempt in range(READ_ATTEMPTS):
            chosen = self._chosen(self.datasets(), symbols, venue)
            if not chosen:
                return empty_frame()
            try:
                frames = [self._read_one(d) for d in chosen]
            except FileNotFoundError as exc:
                if attempt == READ_ATTEMPTS - 1:
                    raise DataError(
                        "the store manifest names a file that is missing (deleted by hand?)",
                        file=exc.filename,
                    ) from None
                continue
            return conform(pd.concat(frames, ignore_index=True))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _read_one(self, dataset: Dataset) -> pd.DataFrame:
        data = self._verified(dataset.path)  # FileNotFoundError: a writer committed meanwhile
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"not a readable dataset file: {exc}", file=dataset.path) from None
        validate(conform(frame), bar=dataset.bar, file=str(dataset.path))
        return frame

    def _verified(self, path: Path) -> bytes:
        """The bytes of a stored file, checked: a regular file inside the store (no link leads
        out of it), whose content has the digest its name carries (so a file replaced or
        changed by hand is named, not read as data). Read once, so the check and the parse
        see the same bytes."""
        root = self.root.resolve()
        if path.is_symlink() or not path.resolve().is_relative_to(root):
            raise DataError(
                "the stored file is a link, or leads outside the store: a store holds its own "
                "files only (copy the data in with `flushcast ingest`)",
                file=path,
            )
        data = path.read_bytes()
        match = _VERSION.match(path.name)
        if match is not None:
            digest = hashlib.sha256(data).hexdigest()[:16]
            named = path.name.removesuffix(".parquet").rsplit(".", 1)[1]
            if digest != named:
                raise DataError(
                    f"the file's content (digest {digest}) is not the version its name says "
                    f"({named}): it was changed after it was written; restore it, or remove the "
                    "series from the store and ingest it again",
                    file=path,
                )
        return data

    def provenance(self, symbol: str, venue: str) -> dict:
        """Where each column of a dataset came from, as recorded when it was written."""
        path = self.path(symbol, venue)
        if not path.is_file():
            return {}
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta.get(_META_KEY, b"{}"))

    # ---- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's writer lock (re-entrant within one thread).

        A second writer waits, saying so once on stderr, and gives up with a DataError after
        `lock_timeout` seconds. The lock is an flock on the ROOT folder (no lock file): the kernel
        drops it when the holder dies, so a killed ingest never leaves the store locked.
        """
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._check_root()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"cannot create the store folder: {exc.strerror}", file=self.root
            ) from None
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self._acquire(fd)
            self._owner, self._depth = me, 1
            try:
                yield
            finally:
                self._owner, self._depth = None, 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _acquire(self, fd: int) -> None:
        deadline = time.monotonic() + self.lock_timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                raise DataError(
                    f"store {self.root} is being written by another process and stayed locked "
                    f"for {self.lock_timeout:g} s; nothing was written, try again later"
                )
            if not told:
                print(
                    f"waiting for another writer of store {self.root} to finish…",
                    file=sys.stderr,
                    flush=True,
                )
                told = True
            time.sleep(0.05)

    def write(
        self,
        frame: pd.DataFrame,
        provenance: Mapping[tuple[str, str], dict] | None = None,
        *,
        bar: pd.Timedelta | Mapping[tuple[str, str], pd.Timedelta] | None = None,
    ) -> ValidationReport:
        """Replace the datasets present in `frame` with its rows, all at once.

        `frame` holds one or more (symbol, venue) series; each replaces the stored dataset of the
        same key whole (merging with what is stored is the caller's business, see `ingest`).
        `bar` is the bar of every series, or a bar per (symbol, venue); by default a series keeps
        the bar it is stored at, and a new one is hourly. Each series is validated at its bar.
        """
        frame = conform(frame).sort_values(["symbol", "venue", "timestamp"], kind="stable")
        frame = frame.reset_index(drop=True)
        if frame.empty:
            raise DataError("nothing to write: the frame has no rows")
        provenance = provenance or {}
        with self.locked():
            manifest = self._manifest()
            current = {(d.symbol, d.venue): d for d in self._entries(manifest)}
            groups = [
                ((str(s), str(v)), part.reset_index(drop=True))
                for (s, v), part in frame.groupby(["symbol", "venue"], observed=True, sort=True)
            ]
            report = ValidationReport(rows=0)
            bars: dict[tuple[str, str], pd.Timedelta] = {}
            for key, part in groups:
                _check_name(key[0], "symbol")
                _check_name(key[1], "venue")
                bars[key] = self._bar_for(key, bar, current)
                part_report = validate(part, bar=bars[key])
                report.rows += part_report.rows
                report.gaps.extend(part_report.gaps)
            self._collect_garbage()
            entries = dict(current)
            staged: list[Path] = []
            try:
                for key, part in groups:
                    entries[key] = self._stage(
                        key, part, bars[key], provenance.get(key, {}), staged
                    )
                self._commit(manifest, entries)
            except OSError as exc:  # a full disk, a read-only store: the old state stands
                raise DataError(
                    f"cannot write the store: {exc.strerror or exc}; nothing was changed",
                    file=exc.filename or self.root,
                ) from None
            finally:
                for tmp in staged:
                    tmp.unlink(missing_ok=True)
                self._collect_garbage()
        return report

    def _bar_for(
        self,
        key: tuple[str, str],
        bar: pd.Timedelta | Mapping[tuple[str, str], pd.Timedelta] | None,
        current: Mapping[tuple[str, str], Dataset],
    ) -> pd.Timedelta:
        chosen = bar.get(key) if isinstance(bar, Mapping) else bar
        if chosen is None:
            chosen = current[key].bar if key in current else BAR
        chosen = pd.Timedelta(chosen)
        if chosen not in STORED_BARS:
            names = ", ".join(bar_name(b) for b in STORED_BARS)
            raise DataError(f"{key[0]} {key[1]}: cannot store {bar_name(chosen)} bars ({names})")
        return chosen

    def _stage(
        self,
        key: tuple[str, str],
        part: pd.DataFrame,
        bar: pd.Timedelta,
        provenance: dict,
        staged: list[Path],
    ) -> Dataset:
        """Write one dataset version under its content name (not yet visible to readers)."""
        symbol, venue = key
        folder = self.root / venue
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{symbol}.{os.getpid()}.staged"
        staged.append(tmp)
        table = pa.Table.from_pandas(part[list(COLUMNS)], preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[_META_KEY] = json.dumps(provenance, sort_keys=True).encode()
        meta[_BAR_KEY] = bar_name(bar).encode()
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        final = folder / f"{symbol}.{_digest(tmp)}.parquet"
        if final.is_file():
            tmp.unlink()  # the same content is stored already
        else:
            os.replace(tmp, final)
        staged.remove(tmp)
        return Dataset(symbol=symbol, venue=venue, path=final, bar=bar, rows=len(part))

    def _commit(self, manifest: dict | None, entries: Mapping[tuple[str, str], Dataset]) -> None:
        """Switch the store to `entries` in one rename of the manifest (nothing if unchanged)."""
        datasets = [
            {
                "symbol": d.symbol,
                "venue": d.venue,
                "bar": bar_name(d.bar),
                "file": d.path.relative_to(self.root).as_posix(),
                "rows": d.rows if d.rows is not None else pq.read_metadata(d.path).num_rows,
            }
            for d in sorted(entries.values(), key=lambda d: (d.venue, d.symbol))
        ]
        if manifest is not None and manifest["datasets"] == datasets:
            return
        generation = (manifest or {}).get("generation", 0) + 1
        text = json.dumps(
            {"format": FORMAT, "generation": generation, "datasets": datasets},
            indent=1,
            sort_keys=True,
        )
        tmp = self.root / f".{MANIFEST}.{os.getpid()}.staged"
        try:
            with tmp.open("w") as handle:
                handle.write(text + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / MANIFEST)  # the commit
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def _collect_garbage(self) -> None:
        """Delete what the manifest on disk does not name: versions replaced by a commit, or
        renamed by a writer that failed or was killed before it committed, and `.staged` files.
        Runs under the lock, so no other writer's files are in flight."""
        if not self.root.is_dir():
            return
        current = self.datasets()
        keep = {d.path.resolve() for d in current}
        # A legacy `<symbol>.parquet` is ours only in a venue folder the manifest knows.
        venues = {d.venue for d in current} if (self.root / MANIFEST).is_file() else set()
        for leftover in self.root.glob(".*.staged"):
            _remove(leftover)
        for folder in self.root.iterdir():
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            for path in folder.iterdir():
                name = path.name
                ours = _STAGED.match(name) or _VERSION.match(name)
                legacy = folder.name in venues and name.endswith(".parquet")
                if (ours or legacy) and path.resolve() not in keep:
                    _remove(path)
