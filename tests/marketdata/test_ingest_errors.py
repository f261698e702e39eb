"""Issue 12, items 12 to 16: every bad input a user can hand the ingest is exit 2 with one line
naming the file, its line and the column, and the store is unchanged."""

from __future__ import annotations

import gzip
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.marketdata import compressed
from flushcast.marketdata.store import MarketStore
from tests.marketdata.fixtures_binance import kline_rows, kline_zip, write_zip
from tests.marketdata.test_adapter_coinglass import coinglass_rows, write

runner = CliRunner()
HOURLY = "denizyts__Coinalyze-Backtester/src/csvFolder"
BYBIT = "Roflkemper__chat-bot-v2/data/historical/bybit_liquidations_2024.parquet"


def _snapshot(root: Path) -> dict:
    """Every stored byte."""
    if not root.exists():
        return {}
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root): p.read_bytes() for p in files}


def _ingest(store: Path, *args: str):
    result = runner.invoke(app, ["ingest", *args, "--store", str(store)])
    assert "Traceback" not in result.output
    return result, " ".join(result.output.split())


def _refused(store: Path, *args: str) -> str:
    """Run an ingest that must fail: exit 2, one line, store untouched; returns the message."""
    before = _snapshot(store)
    result, message = _ingest(store, *args)
    assert result.exit_code == 2, result.output
    assert message.startswith("error: file ")
    assert _snapshot(store) == before
    return message


def _pakchu(path: Path, rates: list[float], start: str = "2024-01-01") -> Path:
    times = pd.date_range(start, periods=len(rates), freq="8h", tz="UTC")
    ms = times.as_unit("ms").asi8
    frame = pd.DataFrame(
        {
            "funding_time_ms": ms,
            "funding_time_utc": times.strftime("%Y-%m-%d %H:%M:%S"),
            "symbol": "BTCUSDT",
            "funding_rate": rates,
        }
    )
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


@pytest.fixture
def kline_store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    path = kline_zip(tmp_path / "zips", "BTCUSDT", "2024-01", kline_rows("2024-01-01", 72))
    result, _ = _ingest(store, "binance-vision", str(path))
    assert result.exit_code == 0, result.output
    return store


def test_item12_funding_without_price_bars_says_ingest_a_price_source_first(tmp_path):
    path = _pakchu(tmp_path / "funding.csv", [1e-4, 2e-4, 1e-4])
    message = _refused(tmp_path / "store", "funding-csv", str(path))
    assert "funding.csv" in message and "ingest a price source (OHLC) for it first" in message


def test_item13_empty_coinalyze_file_is_refused(real_data, tmp_path):
    store = tmp_path / "store"
    folder = tmp_path / "export"
    folder.mkdir()
    ohlcv = folder / "SOLUSDT_PERP.A_ohlcv-history.csv"
    shutil.copy(real_data / HOURLY / ohlcv.name, ohlcv)
    assert _ingest(store, "coinalyze", str(ohlcv), "--tz", "+06:00")[0].exit_code == 0
    for content in ("", "\n\n"):
        empty = folder / "SOLUSDT_PERP.A_liquidation-history.csv"
        empty.write_text(content)
        message = _refused(store, "coinalyze", str(empty), "--tz", "+06:00")
        assert empty.name in message and "row 1" in message


def test_item13_truncated_last_coinglass_line_is_refused(tmp_path):
    path = write(tmp_path / "BTC_1h.csv", coinglass_rows("2024-08-05", 6, "1h"))
    text = path.read_text()
    path.write_text(text[: text.rstrip("\n").rfind(",", 0, len(text) - 40)])  # cut mid-line
    message = _refused(tmp_path / "store", "coinglass", str(path))
    assert "BTC_1h.csv, row 7" in message and "is the line cut short?" in message


def test_item13_high_below_low_is_refused_even_where_the_series_is_stored(tmp_path):
    rows = coinglass_rows("2024-08-05", 6, "1h")
    store = tmp_path / "store"
    path = write(tmp_path / "BTC_1h.csv", rows)
    assert _ingest(store, "coinglass", str(path))[0].exit_code == 0
    # Line 4: high a hair under low, within the 0.5 % the stored high would "agree" with.
    bad = rows.copy()
    bad.loc[2, "price_high"] = bad.loc[2, "price_low"] * 0.9999
    message = _refused(store, "coinglass", str(write(tmp_path / "BTC_1h.csv", bad)))
    assert "BTC_1h.csv, row 4, column 'high'" in message


def test_item14_final_check_names_the_file_line_of_the_bad_value(kline_store, tmp_path):
    rates = [1e-4] * 9
    rates[4] = 0.07  # percent written as a fraction: 7 % per 8 h
    path = _pakchu(tmp_path / "funding.csv", rates)
    message = _refused(kline_store, "funding-csv", str(path))
    assert "funding.csv, row 6, column 'funding_rate'" in message and "unit error" in message


def test_item14_merged_prices_from_two_files_name_the_file_and_line(tmp_path):
    frame = kline_rows("2024-01-01", 6)
    times = pd.to_datetime(frame["open_time"], unit="ms", utc=True)
    oc = pd.DataFrame({"timestamp": times, "symbol": "BTCUSDT", "venue": "binance"})
    hl = oc.copy()
    oc["open"], oc["close"] = frame["open"], frame["close"]
    hl["high"], hl["low"] = frame["high"], frame["low"]
    top = max(frame.loc[3, "open"], frame.loc[3, "close"])
    hl.loc[3, "high"] = (top + frame.loc[3, "low"]) / 2  # fine alone, below open or close merged
    oc.to_csv(tmp_path / "oc.csv", index=False)
    hl.to_csv(tmp_path / "hl.csv", index=False)
    message = _refused(
        tmp_path / "store", "canonical", str(tmp_path / "oc.csv"), str(tmp_path / "hl.csv")
    )
    assert "hl.csv, row 5, column 'high'" in message and "high is below open or close" in message


def test_item15_zip_bomb_is_refused_before_it_is_inflated(kline_store, tmp_path):
    bomb = tmp_path / "BTCUSDT-1h-2024-02.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("BTCUSDT-1h-2024-02.csv", b"0" * (64 * 2**20))
    assert bomb.stat().st_size < 2**20
    message = _refused(kline_store, "binance-vision", str(bomb))
    assert "BTCUSDT-1h-2024-02.csv" in message and "decompression bomb" in message


def test_item15_gzip_bomb_and_oversized_members_are_refused(tmp_path, monkeypatch):
    bomb = tmp_path / "BTCUSDT_funding.csv.gz"
    bomb.write_bytes(
        gzip.compress(
            b"funding_time_ms,funding_time_utc,symbol,funding_rate\n" + b"0" * (32 * 2**20)
        )
    )
    message = _refused(tmp_path / "store", "funding-csv", str(bomb))
    assert "decompression bomb" in message
    # The size cap holds even where the ratio is plausible (and a zip's header could lie).
    monkeypatch.setattr(compressed, "MAX_BYTES", 2000)
    rows = kline_rows("2024-01-01", 48)
    text = io.StringIO()
    rows.to_csv(text, index=False)
    path = write_zip(tmp_path / "BTCUSDT-1h-2024-01.zip", "BTCUSDT-1h-2024-01.csv", text.getvalue())
    message = _refused(tmp_path / "store", "binance-vision", str(path))
    assert "limits: 2,000 bytes" in message


def test_item16_tz_is_refused_for_files_with_epoch_times(real_data, tmp_path):
    funding = _pakchu(tmp_path / "funding.csv", [1e-4, 2e-4, 1e-4])
    message = _refused(tmp_path / "store", "funding-csv", str(funding), "--tz", "+03:00")
    assert "does not apply" in message
    message = _refused(
        tmp_path / "store", "liquidation-events", str(real_data / BYBIT), "--tz", "Asia/Tokyo"
    )
    assert "does not apply" in message
    # UTC itself is harmless.
    result, _ = _ingest(tmp_path / "s2", "funding-csv", str(funding), "--tz", "UTC")
    assert "does not apply" not in result.output


def test_options_of_one_source_are_refused_for_another(tmp_path):
    path = _pakchu(tmp_path / "funding.csv", [1e-4, 2e-4])
    result, message = _ingest(tmp_path / "store", "funding-csv", str(path), "--series", "price")
    assert result.exit_code == 2 and "--series applies to coinglass-api only" in message
    result, message = _ingest(tmp_path / "store", "table", str(path))
    assert result.exit_code == 2 and "table needs --mapping" in message


def test_store_unchanged_after_each_refusal(kline_store):
    """The refusals above leave the store alone; here the stored rows themselves are intact."""
    frame = MarketStore(kline_store).read()
    assert len(frame) == 72 and np.isfinite(frame["close"]).all()
