"""Coinalyze exports: time-zone shift, coin -> USD, dedupe, located errors, the 2024-08-05 flush."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.adapters import coinalyze

HOURLY = "denizyts__Coinalyze-Backtester/src/csvFolder"
FIVE_MIN = "denizyts__Coinalyze-Backtester/src/csvFolder2"
SPOT_2024 = "Roflkemper__chat-bot-v2/state/pattern_memory_BTCUSDT_1h_2024.csv"


def _one(path: Path, **kw) -> pd.DataFrame:
    (frame,) = coinalyze.read(path, **kw)
    return frame.data


def _spot(real_data: Path, column: str) -> pd.Series:
    # Binance spot klines, read directly only as an independent UTC price reference.
    spot = pd.read_csv(real_data / SPOT_2024, usecols=["open_time", column])
    return spot.set_index(pd.to_datetime(spot["open_time"], utc=True))[column]


def _relative_error(ours: pd.Series, reference: pd.Series) -> pd.Series:
    joined = pd.concat([ours, reference], axis=1, join="inner").dropna()
    assert len(joined) > 100
    return (joined.iloc[:, 0] / joined.iloc[:, 1] - 1).abs()


def test_hourly_export_lines_up_with_utc_prices_at_plus_six(real_data: Path) -> None:
    path = real_data / HOURLY / "BTCUSDT_PERP.A_ohlcv-history.csv"
    spot = _spot(real_data, "close")
    right = _relative_error(_one(path, tz="+06:00").set_index("timestamp")["close"], spot)
    naive_utc = _relative_error(_one(path, tz="UTC").set_index("timestamp")["close"], spot)
    off_by_one = _relative_error(_one(path, tz="+05:00").set_index("timestamp")["close"], spot)
    # Perp vs spot differ only by the basis (~0.05 %) at the right offset.
    assert right.quantile(0.99) < 0.005
    assert naive_utc.quantile(0.99) > 0.02 and naive_utc.median() > 5 * right.median()
    assert off_by_one.median() > 3 * right.median()


def test_five_minute_export_lines_up_at_plus_three(real_data: Path) -> None:
    path = real_data / FIVE_MIN / "BTCUSDT_PERP.A_ohlcv-history.csv"
    bars = _one(path, tz="+03:00")
    assert (bars["timestamp"].diff().dropna() == pd.Timedelta("5min")).mean() > 0.99
    opens = bars.set_index("timestamp")["open"]
    on_hour = opens[opens.index.minute == 0]  # a 5-min bar at hh:00 opens with the hour
    spot = _spot(real_data, "open")
    right = _relative_error(on_hour, spot)
    wrong = _relative_error(_one(path, tz="UTC").set_index("timestamp")["open"], spot)
    assert right.quantile(0.99) < 0.005
    assert wrong.median() > 5 * right.median()


def test_units_and_row_counts(real_data: Path) -> None:
    folder = real_data / HOURLY
    ohlcv = _one(folder / "BTCUSDT_PERP.A_ohlcv-history.csv", tz="+06:00")
    oi = _one(folder / "BTCUSDT_PERP.A_open-interest-history.csv", tz="+06:00")
    ratio = _one(folder / "BTCUSDT_PERP.A_long-short-ratio-history.csv", tz="+06:00")
    assert len(ohlcv) == 1465 and len(oi) == 1465  # no repeated lines in these two files
    assert len(ratio) == 1465 - 2  # two verbatim repeated lines dropped
    # Binance BTCUSDT perp OI in mid-2024: several billion USD (~75k BTC at ~$60k).
    assert oi["oi_usd"].between(3e9, 1e10).all()
    # Hourly volume is hundreds of millions of USD; takers buy about half of it.
    assert 1e8 < ohlcv["volume_usd"].median() < 5e9
    assert 0.3 < (ohlcv["taker_buy_volume_usd"] / ohlcv["volume_usd"]).median() < 0.7
    assert ratio["long_short_ratio"].between(0.5, 5).all()


def test_liquidations_dedupe_and_convert_with_sibling_prices(real_data: Path) -> None:
    path = real_data / HOURLY / "BTCUSDT_PERP.A_liquidation-history.csv"
    liq = _one(path, tz="+06:00")
    raw = pd.read_csv(path, header=None, names=["t", "long", "short"])
    prices = pd.read_csv(path.with_name("BTCUSDT_PERP.A_ohlcv-history.csv"), header=None)
    assert raw["t"].duplicated().sum() > 0  # the export repeats lines verbatim
    assert liq["timestamp"].is_unique and liq["timestamp"].is_monotonic_increasing
    # Every distinct time with a price bar survives, nothing else.
    assert len(liq) == raw["t"].drop_duplicates().isin(prices[0]).sum()
    # USD / coin is the bar's price: BTC traded between $49k and $72k in this window.
    first = raw.drop_duplicates("t")
    first = first.set_index(pd.to_datetime(first["t"]) - pd.Timedelta("6h"))
    joined = liq.set_index(liq["timestamp"].dt.tz_localize(None)).join(first)
    implied = (joined["liq_long_usd"] / joined["long"]).dropna()
    assert len(implied) > 1000 and implied.between(49_000, 72_000).all()


def test_symbol_venue_and_overrides(real_data: Path) -> None:
    path = real_data / HOURLY / "SOLUSDT_PERP.A_open-interest-history.csv"
    (frame,) = coinalyze.read(path, tz="+06:00")
    assert (frame.symbol, frame.venue, frame.kind) == ("SOLUSDT", "binance", "bars")
    (other,) = coinalyze.read(path, tz="+06:00", symbol="SOL", venue="binance-futures")
    assert (other.symbol, other.venue) == ("SOL", "binance-futures")


# --- bad files, written in tmp_path ------------------------------------------------------------

OHLCV_LINES = [
    "2024-08-05 06:00:00,100,110,90,105,10,5,3,2",
    "2024-08-05 07:00:00,105,106,95,96,12,4,3,1",
    "2024-08-05 08:00:00,96,99,94,98,8,4,3,2",
]


def _write(folder: Path, kind: str, lines: list[str]) -> Path:
    path = folder / f"TESTUSDT_PERP.A_{kind}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_small_export_converts_exactly(tmp_path: Path) -> None:
    _write(tmp_path, "ohlcv-history", OHLCV_LINES)
    liq = _write(
        tmp_path,
        "liquidation-history",
        ["2024-08-05 06:00:00,2,0", "2024-08-05 07:00:00,1,0.5", "2024-08-05 07:00:00,1,0.5"],
    )
    data = _one(liq, tz="UTC+6")
    assert list(data["timestamp"]) == [
        pd.Timestamp("2024-08-05 00:00", tz="UTC"),
        pd.Timestamp("2024-08-05 01:00", tz="UTC"),
    ]
    # Typical prices (110+90+105)/3 and (106+95+96)/3.
    assert data["liq_long_usd"].tolist() == pytest.approx([2 * 305 / 3, 297 / 3])
    assert data["liq_short_usd"].tolist() == pytest.approx([0.0, 0.5 * 297 / 3])
    oi = _write(tmp_path, "open-interest-history", ["2024-08-05 08:00:00,5,6,4,7"])
    assert _one(oi, tz="+06:00")["oi_usd"].tolist() == [7 * 98.0]


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (
            "2024-08-05 07:00:00,105,106,95,96,12,4,3",
            r"row 2, column 'buy_trades': 8 fields, expected 9",
        ),
        ("2024-08-05 07:00:00,105,1O6,95,96,12,4,3,1", r"row 2, column 'high': cannot parse '1O6'"),
        ("2024-08-05 07:00:00,105,106,95,96,12,4,3,1,9", r"row 2: 10 fields, expected 9"),
        ("05/08/2024 07:00,105,106,95,96,12,4,3,1", r"row 2, column 't': cannot parse"),
        ("2024-08-05 06:00:00,100,110,90,104,10,5,3,2", r"row 2, column 'close'.*different values"),
    ],
)
def test_bad_lines_are_located(tmp_path: Path, line: str, pattern: str) -> None:
    path = _write(tmp_path, "ohlcv-history", [OHLCV_LINES[0], line, OHLCV_LINES[2]])
    with pytest.raises(DataError, match=rf"file .*TESTUSDT_PERP\.A_ohlcv-history\.csv, {pattern}"):
        coinalyze.read(path, tz="+06:00")


def test_missing_tz_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "ohlcv-history", OHLCV_LINES)
    with pytest.raises(DataError, match=r"TESTUSDT_PERP\.A_ohlcv-history\.csv.*pass tz"):
        coinalyze.read(path)


def test_off_grid_tz_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "ohlcv-history", OHLCV_LINES)
    with pytest.raises(DataError, match=r"row 1, column 't'.*not on a .*01:00:00 boundary"):
        coinalyze.read(path, tz="+05:30")


def test_coin_amounts_need_the_ohlcv_sibling(tmp_path: Path, real_data: Path) -> None:
    source = real_data / HOURLY / "ETHUSDT_PERP.A_liquidation-history.csv"
    alone = tmp_path / source.name
    shutil.copy(source, alone)
    with pytest.raises(DataError, match=r"ohlcv file ETHUSDT_PERP\.A_ohlcv-history\.csv"):
        coinalyze.read(alone, tz="+06:00")


def test_unknown_name_and_exchange_code(tmp_path: Path) -> None:
    odd = tmp_path / "BTCUSDT_funding.csv"
    odd.write_text(OHLCV_LINES[0] + "\n")
    with pytest.raises(DataError, match="not a Coinalyze export name"):
        coinalyze.read(odd, tz="+06:00")
    unknown = tmp_path / "BTCUSD_PERP.Z_ohlcv-history.csv"
    unknown.write_text("\n".join(OHLCV_LINES) + "\n")
    with pytest.raises(DataError, match="unknown Coinalyze exchange code 'Z'"):
        coinalyze.read(unknown, tz="+06:00")
    assert coinalyze.read(unknown, tz="+06:00", venue="kraken")[0].venue == "kraken"


# --- acceptance: the 2024-08-05 long flush through the ingest pipeline -------------------------


def test_august_5_long_liquidations_dwarf_the_month(real_data: Path) -> None:
    from flushcast.marketdata.ingest import read_canonical

    paths = sorted((real_data / HOURLY).glob("*.csv"))
    frame = read_canonical("coinalyze", paths, tz="+06:00")
    assert set(frame["symbol"]) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    for symbol, rows in frame.groupby("symbol", observed=True):
        liq = rows.set_index("timestamp")["liq_long_usd"]
        august = liq.loc["2024-08-01":"2024-08-31"]
        flush = liq.loc["2024-08-05"]
        # Measured: 59x (SOL) to 87x (BTC) the August median hour.
        assert flush.max() > 20 * august.median(), symbol
