"""CoinGlass exports: units (USD, funding percent -> fraction), bar inference, symbol, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.adapters import coinglass
from flushcast.marketdata.ingest import read_canonical


def coinglass_rows(start: str, n: int, step: str, *, seed: int = 0) -> pd.DataFrame:
    """An export as documented: epoch-ms bar opens, USD liquidations and OI, funding in percent
    per 8 h, cvd all zeros."""
    rng = np.random.default_rng(seed)
    opens = pd.date_range(start, periods=n, freq=step, tz="UTC")
    close = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[60_000, close[:-1]]
    long = rng.exponential(2e5, n).round(2)
    short = rng.exponential(2e5, n).round(2)
    funding = rng.normal(0.01, 0.004, n).round(6)  # percent: 0.01 = 1 bp
    oi = 3e10 + np.cumsum(rng.normal(0, 1e7, n))
    frame = pd.DataFrame(
        {
            "timestamp": opens.as_unit("ms").asi8,
            "datetime_utc": opens.strftime("%Y-%m-%d %H:%M:%S"),
            "price_open": open_.round(2),
            "price_high": (np.maximum(open_, close) * 1.001).round(2),
            "price_low": (np.minimum(open_, close) * 0.999).round(2),
            "price_close": close.round(2),
            "liquidation_long_usd": long,
            "liquidation_short_usd": short,
            "liquidation_total_usd": (long + short).round(2),
        }
    )
    for prefix, values in (("funding", funding), ("oi", oi), ("oi_weight", oi * 0.9)):
        for stat in ("open", "high", "low", "close"):
            frame[f"{prefix}_{stat}"] = values.round(6)
    for stat in ("open", "high", "low", "close"):
        frame[f"cvd_{stat}"] = 0
    return frame[list(coinglass.COLUMNS)]


def write(path: Path, rows: pd.DataFrame) -> Path:
    rows.to_csv(path, index=False, lineterminator="\n")
    return path


def test_five_minute_export_becomes_hourly_usd_bars(tmp_path):
    rows = coinglass_rows("2024-08-05", 36, "5min")
    path = write(tmp_path / "export.csv", rows)

    frame = read_canonical("coinglass", [path], symbol="BTC")

    assert list(frame["timestamp"].dt.hour) == [0, 1, 2]
    assert set(frame["venue"]) == {"aggregate"} and set(frame["symbol"]) == {"BTC"}
    hourly = rows.groupby(np.arange(36) // 12)
    np.testing.assert_allclose(frame["liq_long_usd"], hourly["liquidation_long_usd"].sum())
    np.testing.assert_allclose(frame["liq_short_usd"], hourly["liquidation_short_usd"].sum())
    np.testing.assert_allclose(frame["oi_usd"], hourly["oi_close"].last())
    # percent per 8 h -> fraction per 8 h, the reading at the hour's close
    np.testing.assert_allclose(frame["funding_rate"], hourly["funding_close"].last() / 100)
    np.testing.assert_allclose(frame["high"], hourly["price_high"].max())
    assert frame["volume_usd"].isna().all()


def test_hourly_export_with_symbol_from_the_file_name(tmp_path):
    rows = coinglass_rows("2024-08-05", 6, "1h")
    path = write(tmp_path / "coinglass_ETH_1h.csv", rows)

    [source] = coinglass.read(path)

    assert (source.symbol, source.venue, source.kind) == ("ETH", "aggregate", "bars")
    assert source.data["timestamp"].iat[0] == pd.Timestamp("2024-08-05", tz="UTC")
    assert source.data["funding_rate"].iat[2] == pytest.approx(rows["funding_close"].iat[2] / 100)
    [other] = coinglass.read(path, symbol="ETHUSDT", venue="binance")
    assert (other.symbol, other.venue) == ("ETHUSDT", "binance")


def test_symbol_is_required_when_the_name_does_not_say(tmp_path):
    path = write(tmp_path / "export-1h.csv", coinglass_rows("2024-08-05", 3, "1h"))
    with pytest.raises(DataError, match="pass symbol"):
        coinglass.read(path)


def test_header_must_be_coinglass(tmp_path):
    rows = coinglass_rows("2024-08-05", 3, "1h").rename(columns={"funding_close": "fr_close"})
    path = write(tmp_path / "BTC.csv", rows)
    with pytest.raises(DataError, match="expected 'funding_close'") as err:
        coinglass.read(path)
    assert (err.value.row, err.value.column) == (1, "fr_close")


def test_unparsable_value_names_line_and_column(tmp_path):
    rows = coinglass_rows("2024-08-05", 5, "30min").astype(str)
    rows.loc[3, "oi_close"] = "n/a"
    path = write(tmp_path / "BTC.csv", rows)
    with pytest.raises(DataError, match="'n/a'") as err:
        coinglass.read(path)
    assert (err.value.row, err.value.column) == (5, "oi_close")


def test_total_that_is_not_long_plus_short_is_refused(tmp_path):
    rows = coinglass_rows("2024-08-05", 5, "1h")
    rows.loc[2, "liquidation_total_usd"] = rows.loc[2, "liquidation_long_usd"]
    path = write(tmp_path / "BTC.csv", rows)
    with pytest.raises(DataError, match="!= total") as err:
        coinglass.read(path)
    assert (err.value.row, err.value.column) == (4, "liquidation_total_usd")


def test_row_off_the_bar_grid_is_refused(tmp_path):
    rows = coinglass_rows("2024-08-05", 6, "1h")
    rows.loc[4, "timestamp"] += 60_000
    path = write(tmp_path / "BTC.csv", rows)
    with pytest.raises(DataError, match="not on the file's 60-minute bar grid") as err:
        coinglass.read(path)
    assert err.value.row == 6


def test_local_time_zone_is_refused(tmp_path):
    path = write(tmp_path / "BTC.csv", coinglass_rows("2024-08-05", 3, "1h"))
    with pytest.raises(DataError, match="UTC"):
        coinglass.read(path, tz="Asia/Almaty")
