"""Users' own exports through a YAML mapping: the committed mapping of the shared daily export
(aliases, zero-padding, percent funding, USD OI), coin amounts valued at the close, and a bad
mapping named by its key."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.adapters.mapping import load_mapping
from flushcast.marketdata.ingest import ingest, read_canonical
from flushcast.marketdata.store import MarketStore

ROOT = Path(__file__).resolve().parents[2]
DAILY = "Le1Ma1__CoinglassAutoPull/data_1d"
LE1MA1 = ROOT / "docs/mappings/le1ma1_coinglass_1d.yaml"
CANDLES = ROOT / "docs/mappings/0xknxwledge_candles_1h.yaml"


@pytest.fixture(scope="module")
def daily(real_data) -> pd.DataFrame:
    files = sorted((real_data / DAILY).glob("*.csv"))
    return read_canonical("table", files, mapping=LE1MA1)


def test_shared_daily_export_through_the_committed_mapping(daily):
    assert sorted(daily["symbol"].unique()) == [
        "ADAUSDT", "BNBUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"
    ]  # fmt: skip
    btc = daily[daily["symbol"] == "BTCUSDT"].set_index("timestamp")
    assert (
        btc.index.hour == 0
    ).all() and btc.index.to_series().diff().dropna().max() == pd.Timedelta("1D")
    crash = btc.loc[pd.Timestamp("2021-05-19", tz="UTC")]
    assert 1.3e9 < crash["liq_long_usd"] < 1.5e9  # the 2021-05-19 long flush
    assert crash["low"] < 33_000 < 42_000 < crash["open"]
    # Zero-padding before 2020-12-23 means "not collected": NaN, not 0.
    assert btc.loc[:"2020-12-22", "liq_long_usd"].isna().all()
    assert btc.loc["2020-12-23":, "liq_long_usd"].notna().all()
    # Funding percent -> fraction per 8 h; OI the USD total (tens of billions, not coins).
    assert btc["funding_rate"].abs().median() < 5e-4
    assert 1e10 < btc.loc[pd.Timestamp("2023-12-31", tz="UTC"), "oi_usd"] < 3e10
    assert btc["taker_buy_volume_usd"].gt(0).all()


def test_daily_export_is_stored_at_one_day(real_data, tmp_path):
    files = sorted((real_data / DAILY).glob("*.csv"))
    store = MarketStore(tmp_path)
    report = ingest("table", files, store, mapping=LE1MA1)
    assert {d.bar for d in report.datasets} == {pd.Timedelta("1D")}
    assert store.common_bar() == pd.Timedelta("1D")
    assert store.bar("BTCUSDT", "coinglass") == pd.Timedelta("1D")


def test_coin_amounts_are_valued_at_the_bar_close(real_data):
    path = real_data / "0xknxwledge__group-m-finm33150-final/data/candles.parquet"
    frame = read_canonical("table", [path], mapping=CANDLES, bar=pd.Timedelta("4h"))
    assert sorted(frame["symbol"].unique()) == ["ETHUSDT", "SOLUSDT"]
    raw = pd.read_parquet(path)
    eth = raw[(raw["venue"] == "binance") & (raw["coin"] == "ETH")].set_index("timestamp")
    first = frame[frame["symbol"] == "ETHUSDT"].iloc[0]
    hours = eth.loc[first["timestamp"] : first["timestamp"] + pd.Timedelta("3h")]
    assert len(hours) == 4
    assert first["volume_usd"] == pytest.approx((hours["v"] * hours["c"]).sum())
    assert first["high"] == hours["h"].max() and first["close"] == hours["c"].iat[-1]


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


GOOD = """
bar: 1d
venue: mine
time: {column: day, zone: UTC}
symbol: {column: coin}
files:
  - match: "*.csv"
    columns: {open: o, high: h, low: l, close: c}
"""


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("bar: 1d", "bar: 3x"), "bar"),
        (("venue: mine", "venu: mine"), "venu"),
        (("zone: UTC}", "zone: UTC, fmt: iso}"), "time.fmt"),
        (("symbol: {column: coin}", "symbol: {column: coin, value: BTC}"), "symbol"),
        (("open: o,", "opn: o,"), "files[0].columns.opn"),
        (("close: c}", "close: {column: c, unit: percent}}"), "files[0].columns.close.unit"),
        (("close: c}", "close: c, funding_rate: {column: f, unit: pct}}"),
         "files[0].columns.funding_rate.unit"),
        (("high: h, ", ""), "files[0].columns"),
        (('match: "*.csv"', 'match: "*.csv"\n    not_collected: {values: [zero]}'),
         "files[0].not_collected.values"),
        (("files:", "file:"), "file"),
    ],
)  # fmt: skip
def test_bad_mapping_names_the_key(tmp_path, change, key):
    old, new = change
    assert old in GOOD
    path = _mapping(tmp_path, GOOD.replace(old, new))
    with pytest.raises(DataError, match=re.escape(f"mapping key '{key}'")) as err:
        load_mapping(path)
    assert err.value.file == str(path)


def test_mapped_column_missing_from_the_file_names_the_key_and_column(tmp_path):
    data = tmp_path / "prices.csv"
    data.write_text("day,coin,o,h,l,close\n2024-01-01,BTC,1,2,0.5,1.5\n")
    with pytest.raises(DataError, match=r"columns\.close") as err:
        read_canonical("table", [data], mapping=_mapping(tmp_path, GOOD))
    assert (err.value.file, err.value.column) == (str(data), "c")


def test_bad_cell_names_line_and_column(tmp_path):
    data = tmp_path / "prices.csv"
    data.write_text("day,coin,o,h,l,c\n2024-01-01,BTC,1,2,0.5,1.5\n2024-01-02,BTC,1,0.9,0.5,1.5\n")
    with pytest.raises(DataError, match="high is below") as err:
        read_canonical("table", [data], mapping=_mapping(tmp_path, GOOD))
    assert (err.value.file, err.value.row, err.value.column) == (str(data), 3, "high")
    data.write_text("day,coin,o,h,l,c\n2024-01-01,BTC,1,2,0.5,1.5\n2024-01-02 06:00,BTC,1,2,1,1\n")
    with pytest.raises(DataError, match="not aligned to the 1d bar") as err:
        read_canonical("table", [data], mapping=_mapping(tmp_path, GOOD))
    assert err.value.row == 3


def test_unmatched_file_and_missing_mapping_are_clear(tmp_path):
    data = tmp_path / "prices.txt"
    data.write_text("day,coin,o,h,l,c\n")
    with pytest.raises(DataError, match="matches the file name"):
        read_canonical("table", [data], mapping=_mapping(tmp_path, GOOD))
    with pytest.raises(DataError, match="no such mapping file"):
        read_canonical("table", [data], mapping=tmp_path / "none.yaml")


def test_leading_zeros_only_are_not_collected(tmp_path):
    data = tmp_path / "liq.csv"
    rows = ["day,coin,o,h,l,c,liq"]
    for i, liq in enumerate([0, 0, 5, 0, 7]):
        rows.append(f"2024-01-0{i + 1},BTC,1,2,0.5,1.5,{liq}")
    data.write_text("\n".join(rows) + "\n")
    text = GOOD.replace("close: c}", "close: c, liq_long_usd: liq}") + (
        "    not_collected: {values: [0], leading: true}\n"
    )
    frame = read_canonical("table", [data], mapping=_mapping(tmp_path, text))
    np.testing.assert_array_equal(frame["liq_long_usd"], [np.nan, np.nan, 5, 0, 7])
