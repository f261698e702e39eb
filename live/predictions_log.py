"""Every prediction the service makes, appended to Parquet: what `flushcast monitor` checks.

One row per prediction and horizon: when it was made, where it came from (`request`: a
/predict or /predict_batch call; `risk`: the cached prediction of a closed bar), the symbol,
venue and bar (`as_of`), the model version, the horizon, `p_flush`, `p_long_flush`, the risk
band, and a hash of the model inputs (so two rows with equal inputs are recognisably the same
question).

Appends are many and small, so rows are buffered in memory and written as one new part file per
flush (every `flush_s` seconds or `flush_rows` rows), under `date=YYYY-MM-DD/` folders: nothing
is ever rewritten. A part is written to a temporary name and renamed into place, so a kill
leaves either a whole part or none (readers skip temporary names); a kill loses at most the
buffer, never a written row. The cached prediction of a bar is written once, under a name made
of its model, series and bar, so two workers (or a restart) computing it again add nothing.

`compact` merges the parts of each finished day into one `compacted.parquet` whose metadata
names the parts it holds; readers skip parts so named, so a kill between writing it and
deleting the parts duplicates nothing.

Retention (`prune`, run by the writer's flush thread every `PRUNE_S` seconds): days older than
`KEEP_DAYS` are deleted, then the oldest files until the log fits in `MAX_BYTES`, so no client
can fill the disk however many predictions it asks for. Readers take a window (`since`) and
tolerate a file pruned under them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flushcast.common.atomic import atomic_path

if TYPE_CHECKING:
    from flushcast.forecast.identity import ModelIdentity
    from flushcast.forecast.rows import Rows
    from flushcast.serving.responses import Prediction

log = logging.getLogger("flushcast.predictions")

SCHEMA = pa.schema(
    [
        ("logged_at", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),
        ("symbol", pa.string()),
        ("venue", pa.string()),
        ("as_of", pa.timestamp("us", tz="UTC")),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("horizon_hours", pa.int16()),
        ("p_flush", pa.float64()),
        ("p_long_flush", pa.float64()),
        ("risk_band", pa.string()),
        ("inputs_hash", pa.string()),
    ]
)
FLUSH_S = 5.0
FLUSH_ROWS = 10_000
KEEP_DAYS = 90
"""Days of predictions kept: the monitor reads the last `live.monitor.CALIBRATION_DAYS`."""
MAX_BYTES = 2 * 1024**3
"""The most the log holds on disk (2 GiB: some 20 million rows); the oldest files go first."""
PRUNE_S = 60.0
KEEP_UNWRITTEN = 10
"""Flushes' worth of rows kept in memory while the disk refuses them (full, read-only)."""
PART_SUFFIX = ".parquet"
COMPACTED = "compacted.parquet"
_PARTS_KEY = b"flushcast_parts"


def inputs_hash(values: np.ndarray, symbol: str) -> str:
    """16 hex digits identifying one row of model inputs (NaN-exact: missing is part of it)."""
    digest = hashlib.blake2b(np.ascontiguousarray(values, dtype="<f8").tobytes(), digest_size=8)
    digest.update(symbol.encode())
    return digest.hexdigest()


def log_rows(
    rows: Rows,
    predictions: Sequence[Prediction],
    identity: ModelIdentity,
    source: str,
    logged_at: datetime,
) -> list[tuple]:
    """The log rows of scored feature rows, in SCHEMA order."""
    out = []
    for i, prediction in enumerate(predictions):
        digest = inputs_hash(rows.values[i], rows.symbols[i])
        for h in prediction.horizons:
            out.append(
                (
                    logged_at,
                    source,
                    prediction.symbol,
                    prediction.venue,
                    prediction.as_of,
                    identity.model_name,
                    identity.model_version,
                    h.horizon_hours,
                    h.p_flush,
                    h.p_long_flush,
                    h.risk_band,
                    digest,
                )
            )
    return out


def _table(rows: list[tuple]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in SCHEMA]
    return pa.Table.from_arrays(
        [pa.array(list(col), type=f.type) for col, f in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA,
    )


class PredictionLog:
    """A folder of Parquet parts; `record` buffers, `flush` writes one part."""

    def __init__(
        self,
        folder: str | Path,
        flush_s: float = FLUSH_S,
        flush_rows: int = FLUSH_ROWS,
        keep_days: float = KEEP_DAYS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.folder = Path(folder)
        self.flush_s = flush_s
        self.flush_rows = flush_rows
        self.keep_days = keep_days
        self.max_bytes = max_bytes
        self._buffer: list[tuple] = []
        self.dropped = 0
        """Rows lost because the disk refused them for too long."""
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, rows: list[tuple]) -> None:
        with self._lock:
            self._buffer.extend(rows)
            full = len(self._buffer) >= self.flush_rows
        if full and time.monotonic() >= self._retry_at:
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffer as one part. If it cannot be written (a full or read-only disk),
        the rows wait for the next flush, up to `KEEP_UNWRITTEN` flushes' worth; beyond that
        the oldest are dropped and counted (`dropped`): serving never fails for its log."""
        with self._lock:
            rows, self._buffer = self._buffer, []
            self._seq += 1
            seq = self._seq
        if not rows:
            return None
        now = datetime.now(UTC)
        name = f"part-{now:%Y%m%dT%H%M%S%f}-{os.getpid()}-{seq:06d}{PART_SUFFIX}"
        try:
            return self._write(_table(rows), self._partition(rows[0][0]) / name)
        except OSError as exc:
            self._retry_at = time.monotonic() + self.flush_s  # not at every request meanwhile
            with self._lock:
                self._buffer = rows + self._buffer
                excess = len(self._buffer) - KEEP_UNWRITTEN * self.flush_rows
                if excess > 0:
                    del self._buffer[:excess]
                    self.dropped += excess
            log.error(
                "prediction log %s not written (%s): %d rows wait, %d dropped so far",
                self.folder, exc.strerror or exc, len(self._buffer), self.dropped,
            )  # fmt: skip
            return None

    def write_once(self, name: str, rows: list[tuple]) -> Path | None:
        """Write `rows` as part `name` unless a part of that name exists (cached predictions)."""
        if not rows:
            return None
        target = self._partition(rows[0][0]) / f"{name}{PART_SUFFIX}"
        if target.exists():
            return None
        try:
            return self._write(_table(rows), target)
        except OSError as exc:  # the live loop goes on (alerts, monitor) without this part
            log.error("prediction log part %s not written: %s", target, exc.strerror or exc)
            return None

    def _partition(self, when: datetime) -> Path:
        return self.folder / f"date={when:%Y-%m-%d}"

    @staticmethod
    def _write(table: pa.Table, target: Path) -> Path:
        with atomic_path(target) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        return target

    def start(self) -> PredictionLog:
        """Flush in a daemon thread every `flush_s` seconds, and prune every `PRUNE_S`."""

        def loop() -> None:
            pruned = 0.0
            while not self._stop.wait(self.flush_s):
                self.flush()
                if time.monotonic() - pruned >= PRUNE_S:
                    pruned = time.monotonic()
                    self.prune()

        self._thread = threading.Thread(target=loop, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.flush()

    def prune(self, now: datetime | None = None) -> int:
        """Apply the retention of this log (see the module doc); files deleted."""
        try:
            return prune(self.folder, now or datetime.now(UTC), self.keep_days, self.max_bytes)
        except OSError as exc:  # a full or read-only disk must not stop the flush thread
            log.error("prediction log %s not pruned: %s", self.folder, exc)
            return 0


def _day(folder: Path) -> tuple[list[pa.Table], list[str]]:
    """A day's tables (the compacted file, then parts it does not hold) and the part names."""
    tables, held = [], set()
    compacted = folder / COMPACTED
    with contextlib.suppress(FileNotFoundError):  # absent, or pruned while this reads
        table = pq.read_table(compacted, schema=SCHEMA)
        held = set(json.loads((pq.read_schema(compacted).metadata or {})[_PARTS_KEY]))
        tables.append(table)
    parts = sorted(p for p in folder.glob(f"*{PART_SUFFIX}") if p.name != COMPACTED)
    fresh = [p for p in parts if p.name not in held]
    for part in fresh:
        try:
            tables.append(pq.read_table(part, schema=SCHEMA))
        except FileNotFoundError:
            continue  # pruned or compacted meanwhile
    return tables, sorted(held | {p.name for p in fresh})


def compact(folder: str | Path, before: datetime) -> int:
    """Merge the parts of every day before `before`'s into its `compacted.parquet`; days done."""
    done = 0
    for day in sorted(Path(folder).glob("date=*")):
        if day.name >= f"date={before:%Y-%m-%d}":
            continue
        parts = [p for p in day.glob(f"*{PART_SUFFIX}") if p.name != COMPACTED]
        if not parts:
            continue
        tables, names = _day(day)
        table = pa.concat_tables(tables)
        meta = {**(table.schema.metadata or {}), _PARTS_KEY: json.dumps(names).encode()}
        with atomic_path(day / COMPACTED) as tmp:
            pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
        for part in parts:
            part.unlink(missing_ok=True)
        done += 1
    return done


def prune(folder: str | Path, now: datetime, keep_days: float, max_bytes: int) -> int:
    """Delete days logged more than `keep_days` before `now`, then the oldest files (by day,
    then by name: time-stamped) until the log holds at most `max_bytes`. Files deleted."""
    oldest_kept = f"date={now - timedelta(days=keep_days):%Y-%m-%d}"
    deleted = 0
    files: list[tuple[str, str, Path, int]] = []
    for day in Path(folder).glob("date=*"):
        for path in day.iterdir():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if day.name < oldest_kept:
                path.unlink(missing_ok=True)
                deleted += 1
            else:
                files.append((day.name, path.name, path, size))
    total = sum(size for *_, size in files)
    for _, _, path, size in sorted(files):
        if total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size
        deleted += 1
    for day in Path(folder).glob("date=*"):
        with contextlib.suppress(OSError):
            day.rmdir()  # only if empty
    return deleted


def read_recent(folder: str | Path, days: float) -> pd.DataFrame:
    """The rows logged in the `days` before the log's latest day (its own end, not the wall
    clock's: a replayed or copied log reads the same): one window, never the whole history."""
    latest = max((d.name for d in Path(folder).glob("date=*")), default=None)
    if latest is None:
        return read_log(folder)
    end = datetime.strptime(latest.removeprefix("date="), "%Y-%m-%d").replace(tzinfo=UTC)
    return read_log(folder, since=end - timedelta(days=days))


def read_log(folder: str | Path, since: datetime | None = None) -> pd.DataFrame:
    """Every logged row from `since` on (all without it); temporary files of an interrupted
    write, and files pruned while this reads, are skipped."""
    days = sorted(Path(folder).glob("date=*"))
    if since is not None:
        days = [d for d in days if d.name >= f"date={since:%Y-%m-%d}"]
    tables = [t for day in days for t in _day(day)[0]]
    if not tables:
        return _table([]).to_pandas()
    frame = pa.concat_tables(tables).to_pandas()
    if since is not None:
        frame = frame[frame["logged_at"] >= pd.Timestamp(since)]
    return frame.reset_index(drop=True)
