"""Funding CSVs: layouts from headers, time zones, per-8h rescaling, located errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.adapters import funding_csv

SUPERVIK = "supervik__historical-funding-rates-fetcher/data"
PAKCHU = "pakchu__rllm/data"


def _one(path: Path, **kw) -> pd.DataFrame:
    (frame,) = funding_csv.read(path, **kw)
    assert frame.kind == "funding"
    return frame.data


def test_supervik_binance_at_plus_three_matches_pakchu_utc_settlements(real_data: Path) -> None:
    supervik = _one(
        real_data
        / SUPERVIK
        / "BTC-USDT/BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv",
        tz="+03:00",
    )
    pakchu = _one(real_data / PAKCHU / "binance_um_btcusdt_funding_marks_2020_2023.csv.gz")
    joined = supervik.merge(pakchu, on="timestamp", suffixes=("_s", "_p"))
    assert len(joined) == len(pakchu) == 4383
    assert np.allclose(joined["funding_rate_s"], joined["funding_rate_p"])
    assert set(pakchu["timestamp"].dt.hour) == {0, 8, 16}
    shifted = _one(
        real_data
        / SUPERVIK
        / "BTC-USDT/BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv",
        tz="UTC",
    )
    assert shifted.merge(pakchu, on="timestamp").empty


def test_pakchu_layouts_are_recognised(real_data: Path) -> None:
    (frame,) = funding_csv.read(
        real_data / PAKCHU / "binance_um_lorc_2024_2025/ETHUSDT_funding_2024_2025.csv.gz"
    )
    assert (frame.symbol, frame.venue) == ("ETHUSDT", "binance")
    assert len(frame.data) == 2007
    # Binance ETH funding: about 1 bp per 8 h, never above the 3 % clamp.
    assert 2e-5 < frame.data["funding_rate"].abs().median() < 3e-4
    assert frame.data["funding_rate"].abs().max() < 0.03
    # Millisecond jitter in settlement times is rounded away.
    assert (frame.data["timestamp"].dt.microsecond == 0).all()


def test_marks_only_file_is_refused(real_data: Path) -> None:
    path = next((real_data / PAKCHU / "binance_um_afch_funding_marks_2023").glob("*.csv.gz"))
    with pytest.raises(DataError, match=r"row 1: .*no funding rate"):
        funding_csv.read(path)


def test_hourly_dydx_is_rescaled_to_8h(real_data: Path) -> None:
    path = real_data / SUPERVIK / "ETH-USDT/ETH-USDT_dydx_2022-01-01_2024-01-01_funding_history.csv"
    (frame,) = funding_csv.read(path, tz="+03:00")
    raw = pd.read_csv(path)
    assert frame.venue == "dydx" and len(frame.data) == len(raw) == 17520
    assert np.allclose(frame.data["funding_rate"], raw["Funding Rate"] * 8)
    assert 2e-5 < frame.data["funding_rate"].abs().median() < 3e-4


def test_gate_is_utc_and_venue_comes_from_the_name(real_data: Path) -> None:
    path = real_data / SUPERVIK / "BTC-USDT/BTC-USDT_gate_2020-01-01_2024-01-01_funding_history.csv"
    (frame,) = funding_csv.read(path, tz="UTC")
    assert (frame.symbol, frame.venue) == ("BTCUSDT", "gate")
    assert set(frame.data["timestamp"].dt.hour) == {0, 8, 16}


# --- small files in tmp_path ----------------------------------------------------------------


def _supervik(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "SOL-USDT_bybit_2024-01-01_2024-02-01_funding_history.csv"
    path.write_text("Symbol,Date,Funding Rate\n" + "\n".join(rows) + "\n")
    return path


FOUR_HOURLY = [
    "SOL-USDT,2024-01-01 03:00:00,0.0001",
    "SOL-USDT,2024-01-01 07:00:00,0.0002",
    "SOL-USDT,2024-01-01 11:00:00,-0.0001",
]


def test_four_hour_interval_doubles_to_8h(tmp_path: Path) -> None:
    data = _one(_supervik(tmp_path, FOUR_HOURLY), tz="+03:00")
    assert data["funding_rate"].tolist() == pytest.approx([0.0002, 0.0004, -0.0002])
    assert data["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")


def test_missing_tz_for_naive_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"SOL-USDT_bybit.*column 'Date'.*pass tz"):
        funding_csv.read(_supervik(tmp_path, FOUR_HOURLY))


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ("SOL-USDT,2024-01-01 07:00:00,0.0O2", r"row 3, column 'Funding Rate': cannot parse"),
        ("SOL-USDT,2024-01-01 07:00:00", r"row 3, column 'Funding Rate': 2 fields, expected 3"),
        ("SOL-USDT,2024-01-01 03:00:00,0.0005", r"row 3, column 'Funding Rate'.*different values"),
        ("SOL-USDT,yesterday,0.0002", r"row 3, column 'Date': cannot parse 'yesterday'"),
    ],
)
def test_bad_rows_are_located(tmp_path: Path, row: str, pattern: str) -> None:
    path = _supervik(tmp_path, [FOUR_HOURLY[0], row, FOUR_HOURLY[2]])
    with pytest.raises(DataError, match=rf"SOL-USDT_bybit.*{pattern}"):
        funding_csv.read(path, tz="+03:00")


def test_unknown_header_and_gzip(tmp_path: Path) -> None:
    odd = tmp_path / "rates.csv"
    odd.write_text("when,rate\n2024-01-01,0.0001\n")
    with pytest.raises(DataError, match=r"rates\.csv, row 1: unrecognised funding CSV header"):
        funding_csv.read(odd)
    packed = tmp_path / "XRPUSDT_funding.csv.gz"
    with gzip.open(packed, "wt") as out:
        out.write("date,symbol,funding_rate,funding_time,mark_price\n")
        out.write("2024-01-01 00:00:00.000000,XRPUSDT,0.0001,1704067200000,\n")
        out.write("2024-01-01 08:00:00.008000,XRPUSDT,0.0003,1704096000008,0.61\n")
    data = _one(packed, venue="binance")
    assert list(data["timestamp"]) == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 08:00", tz="UTC"),
    ]
    assert data["funding_rate"].tolist() == pytest.approx([0.0001, 0.0003])
