"""`flushcast ingest` and `data info` on real exports: merge, idempotence, clean refusal."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.marketdata.store import MarketStore

runner = CliRunner()
HOURLY = "denizyts__Coinalyze-Backtester/src/csvFolder"
FUNDING = "pakchu__rllm/data/binance_um_lorc_2024_2025/SOLUSDT_funding_2024_2025.csv.gz"


def _snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def sol_files(real_data, tmp_path):
    """The SOL hourly Coinalyze export, copied so a test may damage its copy."""
    folder = tmp_path / "export"
    folder.mkdir()
    for path in (real_data / HOURLY).glob("SOLUSDT_PERP.A_*.csv"):
        shutil.copy(path, folder / path.name)
    return sorted(folder.glob("*.csv"))


def _ingest(store, *args):
    return runner.invoke(app, ["ingest", *args, "--store", str(store)])


def test_ingest_then_funding_fills_the_same_bars(real_data, sol_files, tmp_path):
    store = tmp_path / "store"
    result = _ingest(store, "coinalyze", *map(str, sol_files), "--tz", "+06:00")
    assert result.exit_code == 0, result.output
    frame = MarketStore(store).read(["SOLUSDT"], "binance")
    assert frame["funding_rate"].isna().all()
    assert frame["liq_long_usd"].notna().mean() > 0.9

    result = _ingest(store, "funding-csv", str(real_data / FUNDING))
    assert result.exit_code == 0, result.output
    merged = MarketStore(store).read(["SOLUSDT"], "binance")
    assert len(merged) == len(frame)
    pd.testing.assert_series_equal(merged["close"], frame["close"])
    assert merged["funding_rate"].notna().all()
    # In force from the 08:00 settlement on: the bar opening 07:00 UTC (closing 08:00) has it.
    sources = MarketStore(store).provenance("SOLUSDT", "binance")["columns"]
    assert any("ohlcv" in s for s in sources["close"])
    assert any("funding" in s for s in sources["funding_rate"])

    info = runner.invoke(app, ["data", "info", "--store", str(store)])
    assert info.exit_code == 0, info.output
    assert "SOLUSDT" in info.output and "binance" in info.output


def test_reingesting_the_same_files_is_idempotent(sol_files, tmp_path):
    store = tmp_path / "store"
    assert _ingest(store, "coinalyze", *map(str, sol_files), "--tz", "+06:00").exit_code == 0
    first = MarketStore(store).read()
    assert _ingest(store, "coinalyze", *map(str, sol_files), "--tz", "+06:00").exit_code == 0
    pd.testing.assert_frame_equal(MarketStore(store).read(), first)


def test_wrong_time_zone_against_stored_prices_is_refused(sol_files, tmp_path):
    store = tmp_path / "store"
    ohlcv = [p for p in sol_files if "ohlcv" in p.name]
    assert _ingest(store, "coinalyze", *map(str, ohlcv), "--tz", "+06:00").exit_code == 0
    before = _snapshot(store)
    result = _ingest(store, "coinalyze", *map(str, ohlcv), "--tz", "+03:00")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "disagree" in message and "time zone" in message
    assert any(f"column '{c}'" in message for c in ("open", "high", "low", "close"))
    assert _snapshot(store) == before


def test_malformed_file_exits_2_naming_file_row_column_and_keeps_store(sol_files, tmp_path):
    store = tmp_path / "store"
    assert _ingest(store, "coinalyze", *map(str, sol_files), "--tz", "+06:00").exit_code == 0
    before = _snapshot(store)
    liq = next(p for p in sol_files if "liquidation" in p.name)
    lines = liq.read_text().splitlines()
    fields = lines[9].split(",")
    lines[9] = ",".join([fields[0], "12..5", fields[2]])
    liq.write_text("\n".join(lines) + "\n")
    result = _ingest(store, "coinalyze", *map(str, sol_files), "--tz", "+06:00")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert liq.name in message and "row 10" in message and "long" in message
    assert "Traceback" not in result.output
    assert _snapshot(store) == before


def test_unknown_source_and_missing_file_are_clear_errors(tmp_path):
    result = _ingest(tmp_path, "bloomberg", str(tmp_path / "x.csv"))
    assert result.exit_code == 2 and "unknown source" in result.output
    result = _ingest(tmp_path, "coinalyze", str(tmp_path / "nope.csv"), "--tz", "UTC")
    assert result.exit_code == 2 and "no such file" in result.output
