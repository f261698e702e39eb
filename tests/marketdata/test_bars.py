"""The bar size is a property of a dataset: parsed and named one way, recorded in the store,
validated (timestamps on its grid), shown by `data info`; finer sources aggregate into a coarser
bar on request, never the other way."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.common.errors import DataError
from flushcast.marketdata.ingest import ingest
from flushcast.marketdata.schema import BAR, STORED_BARS, bar_name, parse_bar
from flushcast.marketdata.store import MarketStore
from tests.marketdata.fixtures_binance import kline_rows, kline_zip

from .synthetic import bars

H4 = pd.Timedelta("4h")


@pytest.mark.parametrize(
    ("text", "bar"), [("1h", "1h"), ("4h", "4h"), ("1d", "1D"), ("1D", "1D"), ("5m", "5min")]
)
def test_bar_names_round_trip(text, bar):
    assert parse_bar(text) == pd.Timedelta(bar)
    assert parse_bar(bar_name(parse_bar(text))) == parse_bar(text)


def test_bad_bar_text_is_refused():
    for text in ("", "4", "h", "0h", "1w", "-1h"):
        with pytest.raises(ValueError, match="not a bar size"):
            parse_bar(text)
    assert pd.Timedelta("2h") not in STORED_BARS


def test_store_records_and_validates_each_dataset_at_its_bar(tmp_path):
    store = MarketStore(tmp_path)
    four = bars(12, freq="4h")
    store.write(four, bar=H4)
    store.write(bars(24, symbol="ETHUSDT"))
    assert store.bar("BTCUSDT", "binance") == H4
    assert store.bar("ETHUSDT", "binance") == BAR
    assert [d.bar for d in store.datasets()] == [H4, BAR]
    assert len(store.read()) == 36
    # Rows off the 4 h grid are refused for a 4 h series (they would pass as hourly).
    shifted = four.assign(timestamp=four["timestamp"] + pd.Timedelta("1h"))
    with pytest.raises(DataError, match="not aligned to the 4h bar"):
        store.write(shifted)
    with pytest.raises(DataError, match="cannot store 2h bars"):
        store.write(bars(6, freq="2h", symbol="XRPUSDT"), bar=pd.Timedelta("2h"))


def test_common_bar_names_the_series_when_they_differ(tmp_path):
    store = MarketStore(tmp_path)
    store.write(bars(12, freq="4h"), bar=H4)
    store.write(bars(24, symbol="ETHUSDT"))
    assert store.common_bar(["BTCUSDT"]) == H4
    with pytest.raises(DataError, match=r"BTCUSDT binance 4h, ETHUSDT binance 1h"):
        store.common_bar()
    with pytest.raises(DataError, match="no datasets"):
        store.common_bar(["DOGEUSDT"])


@pytest.fixture
def hourly_zip(tmp_path):
    return kline_zip(tmp_path / "zips", "BTCUSDT", "2024-01", kline_rows("2024-01-01", 50))


def test_hourly_source_aggregates_to_four_hours_on_request(tmp_path, hourly_zip):
    store = MarketStore(tmp_path / "store")
    report = ingest("binance-vision", [hourly_zip], store, bar=H4)
    [ds] = report.datasets
    assert (ds.bar, ds.rows, ds.dropped_incomplete) == (H4, 12, 1)  # 50 h: 12 bars, 2 h left
    frame = store.read()
    rows = kline_rows("2024-01-01", 50)
    assert frame["high"].iat[0] == rows["high"].iloc[:4].max()
    assert frame["close"].iat[1] == rows["close"].iat[7]
    assert store.bar("BTCUSDT", "binance") == H4
    # Later hourly files join the 4 h series without asking again.
    more = kline_zip(tmp_path / "zips2", "BTCUSDT", "2024-02", kline_rows("2024-01-03", 24))
    assert ingest("binance-vision", [more], store).datasets[0].bar == H4


def test_bars_are_never_split_nor_silently_changed(tmp_path, hourly_zip):
    store = MarketStore(tmp_path / "store")
    ingest("binance-vision", [hourly_zip], store, bar=H4)
    with pytest.raises(DataError, match="stored at 4h bars; --bar 1d would change them"):
        ingest("binance-vision", [hourly_zip], store, bar=pd.Timedelta("1D"))
    four = tmp_path / "four.csv"
    bars(12, freq="4h", symbol="ETHUSDT").to_csv(four, index=False)
    with pytest.raises(DataError, match="never split"):
        ingest("canonical", [four], MarketStore(tmp_path / "other"), bar=BAR)
    hourly = tmp_path / "hourly.csv"
    bars(24, symbol="ETHUSDT", start="2024-08-03").to_csv(hourly, index=False)
    with pytest.raises(DataError, match=r"different bars: 1h .*, 4h .*pass --bar"):
        ingest("canonical", [four, hourly], MarketStore(tmp_path / "third"))
    both = ingest("canonical", [four, hourly], MarketStore(tmp_path / "third"), bar=H4)
    assert both.datasets[0].rows == 18


def test_data_info_shows_the_bar(tmp_path):
    store = MarketStore(tmp_path)
    store.write(bars(12, freq="4h"), bar=H4)
    store.write(bars(10, freq="1D", symbol="ETHUSDT"), bar=pd.Timedelta("1D"))
    result = CliRunner().invoke(app, ["data", "info", "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    btc = next(line for line in result.output.splitlines() if "BTCUSDT" in line)
    eth = next(line for line in result.output.splitlines() if "ETHUSDT" in line)
    assert "│ 4h " in btc and "2024-08-03 00:00" in btc  # end = last open + 4 h
    assert "│ 1d " in eth and "│ 0 " in eth  # no gaps counted between daily bars
