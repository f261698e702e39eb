"""The prediction log: buffered appends as whole Parquet parts; a kill leaves no half part."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from flushcast.live.predictions_log import (
    KEEP_UNWRITTEN,
    SCHEMA,
    PredictionLog,
    compact,
    inputs_hash,
    read_log,
    read_recent,
)

T0 = datetime(2024, 3, 5, tzinfo=UTC)


def row(i: int, when: datetime = T0) -> tuple:
    return (
        when,
        "request",
        "BTCUSDT",
        "binance",
        when,
        "flushcast",
        "1",
        12,
        i / 1e6,
        0.5,
        "low",
        f"{i:016x}",
    )


def test_appends_are_buffered_and_written_as_whole_parts_per_day(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=1000)
    for i in range(2500):
        log.record([row(i)])
    assert len(list(tmp_path.rglob("*.parquet"))) == 2  # two full buffers, 500 rows pending
    log.record([row(9999, T0 + timedelta(days=1))])
    log.flush()
    parts = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*.parquet"))
    assert parts == ["date=2024-03-05"] * 3
    frame = read_log(tmp_path)
    assert len(frame) == 2501 and frame["p_flush"].iloc[:2500].tolist() == [
        i / 1e6 for i in range(2500)
    ]
    assert pq.read_schema(next(tmp_path.rglob("*.parquet"))).equals(SCHEMA)


def test_a_cached_prediction_is_written_once_under_its_name(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    assert log.write_once("risk-v1-abc", [row(1)]) is not None
    assert log.write_once("risk-v1-abc", [row(2)]) is None  # another worker, or a restart
    assert read_log(tmp_path)["p_flush"].tolist() == [1e-6]


def test_compaction_merges_finished_days_and_a_kill_midway_duplicates_nothing(
    tmp_path: Path,
) -> None:
    log = PredictionLog(tmp_path)
    for day in range(3):
        for i in range(4):
            log.record([row(10 * day + i, T0 + timedelta(days=day, hours=i))])
            log.flush()
    assert compact(tmp_path, before=T0 + timedelta(days=2)) == 2
    assert [len(list(d.glob("*.parquet"))) for d in sorted(tmp_path.glob("date=*"))] == [1, 1, 4]
    expected = sorted(read_log(tmp_path)["p_flush"])
    assert len(expected) == 12

    # A kill after the compacted file was written but before the parts were deleted:
    log.record([row(99, T0 + timedelta(days=2, hours=9))])
    log.flush()
    last = tmp_path / "date=2024-03-07"
    kept = {p.name: p.read_bytes() for p in last.glob("part-*.parquet")}
    compact(tmp_path, before=T0 + timedelta(days=3))
    for name, data in kept.items():
        (last / name).write_bytes(data)  # the parts are back, as if never deleted
    assert sorted(read_log(tmp_path)["p_flush"]) == sorted([*expected, 99 / 1e6])


WRITER = """
import sys
from datetime import UTC, datetime
from flushcast.live.predictions_log import PredictionLog
log = PredictionLog(sys.argv[1], flush_rows=2000)
when = datetime(2024, 3, 5, tzinfo=UTC)
row = (when, "request", "BTCUSDT", "binance", when, "flushcast", "1", 12, 0.01, 0.5, "low", "0")
print("ready", flush=True)
while True:
    log.record([row] * 500)
"""


@pytest.mark.slow
def test_a_kill_leaves_whole_parts_only(tmp_path: Path) -> None:
    """SIGKILL a writer appending as fast as it can; every part left is readable and whole."""
    for trial in range(3):
        folder = tmp_path / str(trial)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        time.sleep(0.3 + 0.1 * trial)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        parts = list(folder.rglob("*.parquet"))
        assert parts, "the writer wrote nothing before the kill"
        frame = read_log(folder)  # a half-written part would fail here
        assert len(frame) == 2000 * len(parts)
        leftovers = [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".parquet"]
        assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers)


def test_inputs_hash_tells_rows_apart_and_treats_missing_as_a_value() -> None:
    a = np.array([1.0, np.nan, 3.0])
    assert inputs_hash(a, "BTCUSDT") == inputs_hash(a.copy(), "BTCUSDT")
    assert inputs_hash(a, "BTCUSDT") != inputs_hash(a, "ETHUSDT")
    assert inputs_hash(a, "BTCUSDT") != inputs_hash(np.array([1.0, 0.0, 3.0]), "BTCUSDT")


def test_retention_drops_old_days_then_the_oldest_files_beyond_the_size_budget(
    tmp_path: Path,
) -> None:
    log = PredictionLog(tmp_path, keep_days=30, max_bytes=10**9)
    for days_ago in (100, 31, 29, 1, 0):
        log.record([row(i, T0 - timedelta(days=days_ago)) for i in range(50)])
        log.flush()
    assert log.prune(now=T0) == 2  # the days 100 and 31 days back
    kept = read_log(tmp_path)
    assert sorted({t.date() for t in kept["logged_at"]}) == [
        (T0 - timedelta(days=d)).date() for d in (29, 1, 0)
    ]
    part = next(tmp_path.glob("date=*/*.parquet")).stat().st_size
    small = PredictionLog(tmp_path, keep_days=30, max_bytes=int(part * 1.5))
    small.prune(now=T0)
    sizes = [p.stat().st_size for p in tmp_path.glob("date=*/*.parquet")]
    assert sum(sizes) <= part * 1.5 and len(sizes) == 1
    assert read_log(tmp_path)["logged_at"].min() == T0  # the newest day is what stays


def test_the_flush_thread_prunes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("flushcast.live.predictions_log.PRUNE_S", 0.0)
    old = PredictionLog(tmp_path)
    old.record([row(1, datetime.now(UTC) - timedelta(days=400))])
    old.flush()
    log = PredictionLog(tmp_path, flush_s=0.05).start()
    deadline = time.monotonic() + 10
    while list(tmp_path.glob("date=*/*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    log.close()
    assert not list(tmp_path.glob("date=*/*.parquet"))


def test_a_reader_of_a_window_opens_no_file_before_it(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    log.record([row(1, T0 - timedelta(days=60))])
    log.flush()
    log.record([row(2, T0)])
    log.flush()
    (tmp_path / f"date={T0 - timedelta(days=60):%Y-%m-%d}" / "part-x.parquet").write_bytes(b"bad")
    assert read_log(tmp_path, since=T0 - timedelta(days=30))["p_flush"].tolist() == [2 / 1e6]
    assert read_recent(tmp_path, days=30)["p_flush"].tolist() == [2 / 1e6]  # the log's own end


def test_a_full_disk_never_fails_a_request_and_rows_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(tmp_path, flush_s=0.0, flush_rows=10)
    write = PredictionLog._write

    def full(table: object, target: Path) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PredictionLog, "_write", staticmethod(full))
    for i in range(25):
        log.record([row(i)])  # what a request does: it must not raise
    assert log.write_once("risk-x", [row(99)]) is None  # nor the live loop's cached part
    monkeypatch.setattr(PredictionLog, "_write", staticmethod(write))
    log.flush()
    assert sorted(read_log(tmp_path)["p_flush"]) == [i / 1e6 for i in range(25)]
    assert log.dropped == 0


def test_rows_beyond_what_waits_are_dropped_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(tmp_path, flush_s=0.0, flush_rows=2)

    def full(table: object, target: Path) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PredictionLog, "_write", staticmethod(full))
    for i in range(50):
        log.record([row(i)])
    log.flush()
    assert log.dropped == 50 - KEEP_UNWRITTEN * 2 and len(log._buffer) == KEEP_UNWRITTEN * 2
