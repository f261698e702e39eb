"""Issue 12, items 10, 11 and 17: two writers keep each other's data, a kill -9 at any rename
leaves the store all-old or all-new, readers follow the manifest, re-ingesting changes no byte."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.ingest import ingest
from flushcast.marketdata.store import MANIFEST, MarketStore
from tests.marketdata.fixtures_binance import (
    funding_rows,
    funding_zip,
    kline_rows,
    kline_zip,
    metrics_rows,
    metrics_zip,
)

from .synthetic import bars

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
ROOT = Path(__file__).resolve().parents[2]


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _priced_store(tmp_path: Path) -> tuple[Path, list[Path], list[Path], list[Path]]:
    """A store holding two days of hourly klines for three symbols, and zips that add funding
    and open interest to all three."""
    zips = tmp_path / "zips"
    klines = [
        kline_zip(zips, s, "2024-01", kline_rows("2024-01-01", 48, seed=i))
        for i, s in enumerate(SYMBOLS)
    ]
    funding = [
        funding_zip(zips, s, "2024-01", funding_rows("2024-01", seed=i))
        for i, s in enumerate(SYMBOLS)
    ]
    metrics = [
        metrics_zip(zips, s, day, metrics_rows(day, s, seed=i))
        for i, s in enumerate(SYMBOLS)
        for day in ("2024-01-01", "2024-01-02")
    ]
    store = tmp_path / "store"
    ingest("binance-vision", klines, MarketStore(store))
    return store, klines, funding, metrics


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


KILL_AT = """
import os, signal, sys
from pathlib import Path
kill_at, store, files = int(sys.argv[1]), sys.argv[2], [Path(p) for p in sys.argv[3:]]
calls = [0]
def counted(real):
    def call(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
os.replace, os.rename, os.unlink = counted(os.replace), counted(os.rename), counted(os.unlink)
from flushcast.marketdata.ingest import ingest
from flushcast.marketdata.store import MarketStore
ingest("binance-vision", files, MarketStore(store))
print(calls[0])
"""


@pytest.mark.slow
def test_kill_9_at_every_rename_leaves_the_store_all_old_or_all_new(tmp_path):
    store, _, funding, _ = _priced_store(tmp_path)
    old = MarketStore(store).read()
    # The same ingest, run to the end in a copy, gives the new state and counts the renames
    # and deletions (every point a kill can fall between).
    reference = tmp_path / "reference"
    subprocess.run(["cp", "-a", str(store), str(reference)], check=True)
    done = _run(KILL_AT, "0", str(reference), *map(str, funding))
    assert done.returncode == 0, done.stderr
    events = int(done.stdout.split()[-1])
    new = MarketStore(reference).read()
    assert new["funding_rate"].notna().sum() > 0 and old["funding_rate"].isna().all()
    assert 4 <= events <= 20  # 3 datasets + the manifest, and the clean-up: bounded
    seen = set()
    for kill_at in range(1, events + 1):
        trial = tmp_path / f"trial{kill_at}"
        subprocess.run(["cp", "-a", str(store), str(trial)], check=True)
        result = _run(KILL_AT, str(kill_at), str(trial), *map(str, funding))
        assert result.returncode == -9, (kill_at, result.stderr)
        state = MarketStore(trial).read()
        if state.equals(old):
            seen.add("old")
        else:
            pd.testing.assert_frame_equal(state, new)  # never a mix
            seen.add("new")
        # The next write finishes the job and leaves nothing behind.
        ingest("binance-vision", funding, MarketStore(trial))
        pd.testing.assert_frame_equal(MarketStore(trial).read(), new)
        leftovers = [p for p in trial.rglob("*") if p.name.endswith(".staged")]
        assert leftovers == []
        assert _snapshot(trial) == _snapshot(reference)
    assert seen == {"old", "new"}


CONCURRENT = """
import sys, time
from pathlib import Path
import flushcast.marketdata.ingest as pipeline
from flushcast.marketdata.store import MarketStore
store, role, signals, files = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4:]
build = pipeline._build
def build_then_wait(*args, **kwargs):
    result = build(*args, **kwargs)
    (signals / "first-merged").touch()  # read and merged, not yet written
    deadline = time.monotonic() + 30
    while not (signals / "second-started").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1)  # the second ingest reads the store now (or waits for the lock)
    return result
if role == "first":
    pipeline._build = build_then_wait
else:
    (signals / "second-started").touch()
pipeline.ingest("binance-vision", [Path(p) for p in files], MarketStore(store))
"""


@pytest.mark.slow
def test_two_ingests_at_once_keep_both(tmp_path):
    store, _, funding, metrics = _priced_store(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start(role: str, files: list[Path]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(store), role, str(tmp_path), *map(str, files)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start("first", funding)
    deadline = time.monotonic() + 60
    while not (tmp_path / "first-merged").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()
    second = start("second", metrics)  # starts while the first has merged but not written
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    frame = MarketStore(store).read()
    for symbol, rows in frame.groupby("symbol", observed=True):
        assert rows["funding_rate"].notna().all(), symbol
        assert rows["oi_usd"].notna().sum() >= 46, symbol  # the last hour closes next day
    assert "waiting for another writer" in outputs[1][1]


def test_a_writer_that_cannot_get_the_lock_gives_up_with_a_data_error(tmp_path):
    holder = MarketStore(tmp_path)
    holder.write(bars(5))
    before = _snapshot(tmp_path)
    with holder.locked(), pytest.raises(DataError, match="stayed locked"):
        MarketStore(tmp_path, lock_timeout=0.2).write(bars(5, symbol="ETHUSDT"))
    assert _snapshot(tmp_path) == before


def test_a_second_writer_waits_then_keeps_the_first_ones_data(tmp_path):
    store = MarketStore(tmp_path)
    store.write(bars(5))
    released = threading.Event()

    def hold():
        with MarketStore(tmp_path).locked():
            time.sleep(0.3)
        released.set()

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.05)
    MarketStore(tmp_path).write(bars(5, symbol="ETHUSDT"))
    assert released.is_set()
    thread.join()
    assert [d.symbol for d in store.datasets()] == ["BTCUSDT", "ETHUSDT"]


def test_staged_leftovers_of_a_killed_writer_are_cleaned_by_the_next_write(tmp_path):
    store = MarketStore(tmp_path)
    store.write(bars(5))
    (tmp_path / "binance" / ".ETHUSDT.4242.staged").write_bytes(b"half a parquet")
    (tmp_path / "binance" / "ETHUSDT.0123456789abcdef.parquet").write_bytes(b"renamed, never named")
    (tmp_path / f".{MANIFEST}.4242.staged").write_text("{")
    assert [d.symbol for d in store.datasets()] == ["BTCUSDT"]  # readers follow the manifest
    store.write(bars(5, symbol="SOLUSDT"))
    names = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert not [n for n in names if n.endswith(".staged") or n.startswith("ETHUSDT")]
    assert [d.symbol for d in store.datasets()] == ["BTCUSDT", "SOLUSDT"]


def test_a_reader_racing_a_commit_rereads_the_manifest(tmp_path, monkeypatch):
    store = MarketStore(tmp_path)
    store.write(pd.concat([bars(5), bars(5, symbol="ETHUSDT")], ignore_index=True))
    newer = bars(6, symbol="ETHUSDT", seed=9)
    real_read = pd.read_parquet
    calls = []

    def read_while_a_writer_commits(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:  # after this reader took the manifest: a writer replaces ETHUSDT
            MarketStore(tmp_path).write(newer)
            return real_read(path, *args, **kwargs)
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(pd, "read_parquet", read_while_a_writer_commits)
    frame = store.read()
    eth = frame[frame["symbol"] == "ETHUSDT"].reset_index(drop=True)
    pd.testing.assert_frame_equal(eth, newer, check_categorical=False)
    assert len(calls) > 2  # the first attempt found its ETHUSDT version gone and started over


def test_reingesting_the_same_files_leaves_every_byte(tmp_path):
    store, klines, funding, metrics = _priced_store(tmp_path)
    ingest("binance-vision", funding + metrics, MarketStore(store))
    before = _snapshot(store)
    ingest("binance-vision", klines + funding + metrics, MarketStore(store))
    ingest("binance-vision", funding, MarketStore(store))
    assert _snapshot(store) == before
    sources = MarketStore(store).provenance("BTCUSDT", "binance")["columns"]
    assert all(len(names) == len(set(names)) for names in sources.values())
    assert sources["open"] == ["BTCUSDT-1h-2024-01.zip"]


def test_stores_written_before_the_manifest_read_as_hourly_and_migrate(tmp_path):
    legacy = tmp_path / "binance" / "BTCUSDT.parquet"
    legacy.parent.mkdir()
    bars(10).to_parquet(legacy, index=False)
    store = MarketStore(tmp_path)
    assert [(d.symbol, d.bar) for d in store.datasets()] == [("BTCUSDT", pd.Timedelta("1h"))]
    pd.testing.assert_frame_equal(store.read(), bars(10), check_categorical=False)
    store.write(bars(12, symbol="ETHUSDT"))
    assert (tmp_path / MANIFEST).is_file()
    assert [d.symbol for d in store.datasets()] == ["BTCUSDT", "ETHUSDT"]
    assert store.bar("BTCUSDT", "binance") == pd.Timedelta("1h")
    assert len(store.read(["BTCUSDT"])) == 10
