"""Issue 22: one row must not poison a store, a small mapping must not exhaust memory, and every
bad name, path or file is one line with exit 2, never a traceback; the store is unchanged."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.common.errors import DataError
from flushcast.marketdata.store import MarketStore
from flushcast.simulator import simulate

runner = CliRunner()
HEADER = "timestamp,symbol,venue,open,high,low,close\n"


def canonical(path: Path, rows: list[str], symbol: str = "BTCUSDT") -> Path:
    lines = [f"{t},{symbol},binance,100,101,99,100\n" for t in rows]
    path.write_text(HEADER + "".join(lines))
    return path


def hours(n: int, start: str = "2024-01-01") -> list[str]:
    return [f"{start}T{h:02d}:00:00Z" for h in range(n)]


def ingest(store: Path, *args: str):
    result = runner.invoke(app, ["ingest", *args, "--store", str(store)])
    assert "Traceback" not in result.output, result.output
    return result, " ".join(result.output.split())


def refused(store: Path, *args: str) -> str:
    """An ingest that must fail: exit 2, one line, the store's bytes unchanged."""
    before = snapshot(store)
    result, message = ingest(store, *args)
    assert result.exit_code == 2, result.output
    assert message.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert snapshot(store) == before
    return message


def snapshot(root: Path) -> dict:
    if not root.is_dir():
        return {}
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "sentinel", ["0001-01-01T00:00:00Z", "1677-09-21T01:00:00Z", "1970-01-01T00:00:00Z",
                 "2200-01-01T00:00:00Z"],
)  # fmt: skip
def test_a_sentinel_date_is_refused_with_file_and_line(tmp_path: Path, sentinel: str) -> None:
    store = tmp_path / "store"
    assert (
        ingest(store, "canonical", str(canonical(tmp_path / "ok.csv", hours(3))))[0].exit_code == 0
    )
    bad = canonical(tmp_path / "bad.csv", [*hours(3, "2024-01-02"), sentinel])
    message = refused(store, "canonical", str(bad))
    assert f"file {bad}, row 5, column 'timestamp'" in message and "placeholder date" in message


def test_no_writer_can_store_a_row_outside_the_window(tmp_path: Path) -> None:
    """The rule sits in the per-cell checks every writer runs (ingest, collectors, the store
    itself), so no path stores a span of centuries that features, labels and gap counts would
    then walk bar by bar (3 rows and a 0001-01-01 row used to build a 17-million-bar grid)."""
    frame = simulate("default", ["BTCUSDT"], days=1, seed=1).frame.head(3)
    sentinel = frame.iloc[[0]].assign(timestamp=pd.Timestamp("0001-01-01", tz="UTC"))
    poisoned = pd.concat([sentinel.astype(frame.dtypes), frame], ignore_index=True)
    with pytest.raises(DataError, match="before 2009-01-01"):
        MarketStore(tmp_path / "store").write(poisoned)
    assert not (tmp_path / "store" / "MANIFEST.json").exists()


@pytest.mark.parametrize(
    ("symbol", "problem"),
    [("B" * 300, "longer than 64"), ("BTC\u202eTDSU", "characters outside"),
     ("..", "characters outside"), ("BTC USDT", "characters outside")],
)  # fmt: skip
def test_a_symbol_outside_the_documented_set_is_one_line(
    tmp_path: Path, symbol: str, problem: str
) -> None:
    store = tmp_path / "store"
    path = canonical(tmp_path / "x.csv", hours(3), symbol="BTCUSDT")
    message = refused(store, "canonical", str(path), "--symbol", symbol)
    assert problem in message and len(message) < 400


def test_a_store_path_naming_a_file_is_one_line(tmp_path: Path) -> None:
    store = tmp_path / "not-a-folder"
    store.write_text("hello")
    path = canonical(tmp_path / "x.csv", hours(3))
    message = refused(store, "canonical", str(path))
    assert f"file {store}: not a store" in message
    result = runner.invoke(app, ["features", "build", "--store", str(store), "--out",
                                 str(tmp_path / "f.parquet")])  # fmt: skip
    assert result.exit_code == 2 and "not a store" in result.output
    assert "Traceback" not in result.output


def _stored_file(store: Path) -> Path:
    (dataset,) = MarketStore(store).datasets()
    return dataset.path


def test_a_dataset_file_replaced_by_a_link_or_changed_is_named(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(store, "canonical", str(canonical(tmp_path / "x.csv", hours(3))))
    stored = _stored_file(store)
    original = stored.read_bytes()
    outside = tmp_path / "elsewhere.parquet"
    outside.write_bytes(b"not parquet at all")
    stored.unlink()
    stored.symlink_to(outside)
    more = canonical(tmp_path / "y.csv", hours(3, "2024-01-02"))
    message = refused(store, "canonical", str(more))
    assert f"file {stored}" in message and "link" in message
    stored.unlink()
    stored.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit changed by hand
    message = refused(store, "canonical", str(more))
    assert f"file {stored}" in message and "changed after it was written" in message
    stored.write_bytes(original)
    assert ingest(store, "canonical", str(more))[0].exit_code == 0


def laughs(levels: int = 9) -> str:
    """A flow list of nested aliases: `levels` levels of 9 make 9**levels strings expanded."""
    items = ["&a0 [" + ", ".join(["lol"] * 9) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("where", ["venue", "not_collected"])
def test_a_mapping_of_nested_aliases_is_refused_at_once(tmp_path: Path, where: str) -> None:
    """A 'billion laughs' mapping of a few hundred bytes is refused in one line, at once (an
    error message echoing the expanded value used to grow past 3 GB)."""
    venue = laughs() if where == "venue" else "binance"
    values = laughs() if where == "not_collected" else "[0]"
    mapping = tmp_path / "laughs.yaml"
    mapping.write_text(
        f"time: ts\nsymbol: BTCUSDT\nvenue: {venue}\nfiles:\n  - columns: {{close: c}}\n"
        f"    not_collected: {{values: {values}}}\n"
    )
    assert mapping.stat().st_size < 1000
    data = tmp_path / "x.csv"
    data.write_text("ts,c\n2024-01-01T00:00:00Z,1\n")
    started = time.perf_counter()
    message = refused(tmp_path / "store", "table", str(data), "--mapping", str(mapping))
    assert "aliases" in message and f"file {mapping}" in message
    assert time.perf_counter() - started < 5 and len(message) < 600


@pytest.mark.parametrize(
    "error", [OSError(errno.ENOSPC, "No space left on device"), PermissionError(errno.EACCES,
              "Permission denied")],
)  # fmt: skip
def test_a_full_disk_or_a_read_only_store_is_one_line_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError
) -> None:
    store = tmp_path / "store"
    ingest(store, "canonical", str(canonical(tmp_path / "ok.csv", hours(3))))

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr("flushcast.marketdata.store.pq.write_table", refuse)
    more = canonical(tmp_path / "more.csv", hours(3, "2024-01-02"))
    message = refused(store, "canonical", str(more))
    assert f"cannot write the store: {error.strerror}; nothing was changed" in message
    assert not list(store.rglob("*.staged"))
