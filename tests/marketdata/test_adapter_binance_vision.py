"""Binance Vision archives: kinds, units, snapshot placement, deduplication and error messages."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.adapters import binance_vision
from flushcast.marketdata.ingest import read_canonical
from tests.marketdata.fixtures_binance import (
    funding_rows,
    funding_zip,
    kline_rows,
    kline_zip,
    liquidation_rows,
    liquidation_zip,
    metrics_rows,
    metrics_zip,
    write_zip,
)


def _utc(ms: pd.Series) -> pd.Series:
    return pd.to_datetime(ms, unit="ms", utc=True).astype("datetime64[us, UTC]")


@pytest.mark.parametrize(("header", "micros"), [(True, False), (False, False), (True, True)])
def test_klines_in_usd_with_or_without_header_and_in_ms_or_us(tmp_path, header, micros):
    rows = kline_rows("2024-01-01", 48)
    path = kline_zip(tmp_path, "BTCUSDT", "2024-01", rows, header=header, micros=micros)

    [frame] = binance_vision.read(path)

    assert (frame.symbol, frame.venue, frame.kind, frame.name) == (
        "BTCUSDT",
        "binance",
        "bars",
        path.name,
    )
    data = frame.data
    pd.testing.assert_series_equal(data["timestamp"], _utc(rows["open_time"]), check_names=False)
    np.testing.assert_allclose(data["close"], rows["close"])
    # USD-M volumes: the quote (USDT) columns, not coin units.
    np.testing.assert_allclose(data["volume_usd"], rows["quote_volume"])
    np.testing.assert_allclose(data["taker_buy_volume_usd"], rows["taker_buy_quote_volume"])


def test_coin_m_kline_volume_is_contracts_times_face_value(tmp_path):
    rows = kline_rows("2024-01-01", 24)
    path = kline_zip(tmp_path, "ETHUSD_PERP", "2024-01-01", rows)

    [frame] = binance_vision.read(path)

    np.testing.assert_allclose(frame.data["volume_usd"], rows["volume"] * 10)
    np.testing.assert_allclose(frame.data["taker_buy_volume_usd"], rows["taker_buy_volume"] * 10)


def test_metrics_give_each_hour_the_oi_at_its_close_never_a_later_one(tmp_path):
    day1, day2 = metrics_rows("2024-01-01", seed=1), metrics_rows("2024-01-02", seed=2)
    shuffled = day1.sample(frac=1.0, random_state=0)  # rows can arrive out of order
    paths = [
        kline_zip(tmp_path, "BTCUSDT", "2024-01", kline_rows("2024-01-01", 48)),
        metrics_zip(tmp_path, "BTCUSDT", "2024-01-01", shuffled),
        metrics_zip(tmp_path, "BTCUSDT", "2024-01-02", day2),
    ]

    frame = read_canonical("binance-vision", paths)

    snapshots = pd.concat([day1, day2]).set_index(
        pd.to_datetime(pd.concat([day1, day2])["create_time"]).dt.tz_localize("UTC")
    )
    closes = frame["timestamp"] + pd.Timedelta("1h")
    # The 23:00 bar of day one closes with day two's 00:00 snapshot, from the other file.
    expected_oi = snapshots["sum_open_interest_value"].reindex(closes)
    np.testing.assert_allclose(frame["oi_usd"], expected_oi.to_numpy())
    expected_ratio = snapshots["count_long_short_ratio"].reindex(closes)
    np.testing.assert_allclose(frame["long_short_ratio"], expected_ratio.to_numpy())
    assert frame["oi_usd"].iloc[:-1].notna().all()
    # The last bar closes at 2024-01-03 00:00, a snapshot no file holds: unknown, not borrowed.
    assert np.isnan(frame["oi_usd"].iloc[-1])


def test_metrics_snapshot_after_the_close_does_not_leak_into_the_bar(tmp_path):
    rows = metrics_rows("2024-01-01")
    later = rows["create_time"] == "2024-01-01 01:05:00"
    rows.loc[later, "sum_open_interest_value"] = 9.99e12
    path = metrics_zip(tmp_path, "BTCUSDT", "2024-01-01", rows)

    [frame] = binance_vision.read(path)

    data = frame.data.set_index("timestamp")["oi_usd"]
    assert data[pd.Timestamp("2024-01-01 00:00", tz="UTC")] < 1e12
    # 01:05 is inside the next bar, which closes with 02:00.
    assert data[pd.Timestamp("2024-01-01 01:00", tz="UTC")] < 1e12


def test_metrics_hour_without_its_closing_snapshot_is_unknown_not_borrowed(tmp_path):
    rows = metrics_rows("2024-01-01")
    rows["sum_open_interest_value"] = rows["sum_open_interest_value"].astype(object)
    rows.loc[rows["create_time"] == "2024-01-01 02:00:00", "sum_open_interest_value"] = ""
    rows = rows[rows["create_time"] != "2024-01-01 04:00:00"]
    path = metrics_zip(tmp_path, "BTCUSDT", "2024-01-01", rows)

    [frame] = binance_vision.read(path)

    oi = frame.data.set_index("timestamp")["oi_usd"]
    assert np.isnan(oi[pd.Timestamp("2024-01-01 01:00", tz="UTC")])  # empty cell at close
    assert pd.Timestamp("2024-01-01 03:00", tz="UTC") not in oi.index  # no row at close
    assert oi.drop(pd.Timestamp("2024-01-01 01:00", tz="UTC")).notna().all()


def test_funding_settlements_rescaled_to_8h(tmp_path):
    rows = funding_rows("2024-01", interval_hours=4)
    path = funding_zip(tmp_path, "BTCUSDT", "2024-01", rows)

    [frame] = binance_vision.read(path)

    assert frame.kind == "funding"
    pd.testing.assert_series_equal(
        frame.data["timestamp"], _utc(rows["calc_time"]), check_names=False
    )
    np.testing.assert_allclose(frame.data["funding_rate"], rows["last_funding_rate"] * 2)


def test_funding_lands_on_bars_from_its_settlement_on(tmp_path):
    rows = funding_rows("2024-01")
    paths = [
        kline_zip(tmp_path, "BTCUSDT", "2024-01", kline_rows("2024-01-01", 48)),
        funding_zip(tmp_path, "BTCUSDT", "2024-01", rows),
    ]

    frame = read_canonical("binance-vision", paths).set_index("timestamp")

    # Settled at 08:00:00.00x: not yet in force at the close of the 07:00 bar, in force at 08:00's.
    assert frame.at[pd.Timestamp("2024-01-01 07:00", tz="UTC"), "funding_rate"] == pytest.approx(
        rows["last_funding_rate"].iat[0]
    )
    assert frame.at[pd.Timestamp("2024-01-01 08:00", tz="UTC"), "funding_rate"] == pytest.approx(
        rows["last_funding_rate"].iat[1]
    )


def test_coin_m_liquidations_deduplicated_sided_and_in_usd(tmp_path):
    rows = liquidation_rows(
        [
            ("2023-01-01 00:10", "SELL", 7, 16_500.0),
            ("2023-01-01 00:40", "SELL", 3, 16_480.0),
            ("2023-01-01 00:50", "BUY", 5, 16_550.0),
            ("2023-01-01 05:00", "BUY", 2, 16_700.0),
        ]
    )
    path = liquidation_zip(tmp_path, "BTCUSD_PERP", "2023-01-01", rows)

    [frame] = binance_vision.read(path)

    bars = frame.data.set_index("timestamp")
    # One day of feed: 24 hourly rows, 0 where nothing was liquidated.
    assert len(bars) == 24 and bars.index[0] == pd.Timestamp("2023-01-01", tz="UTC")
    # BTC COIN-M contract = 100 USD; every order is written twice in the archive, counted once.
    assert bars["liq_long_usd"].iat[0] == 1_000.0  # SELL closes longs: 7 + 3 contracts
    assert bars["liq_short_usd"].iat[0] == 500.0
    assert bars["liq_short_usd"].iat[5] == 200.0
    assert bars[["liq_long_usd", "liq_short_usd"]].drop(bars.index[[0, 5]]).eq(0).all().all()


def test_other_coin_m_contracts_are_ten_usd(tmp_path):
    rows = liquidation_rows([("2023-01-01 03:30", "SELL", 4, 1_200.0)])
    path = liquidation_zip(tmp_path, "ETHUSD_PERP", "2023-01-01", rows)

    [frame] = binance_vision.read(path, symbol="ETHUSDT")

    assert frame.symbol == "ETHUSDT"  # stored under the override; units from the archive name
    assert frame.data["liq_long_usd"].sum() == 40.0


def test_kind_and_symbol_from_header_when_the_name_says_nothing(tmp_path):
    rows = metrics_rows("2024-01-01", symbol="ETHUSDT")
    path = write_zip(tmp_path / "download.zip", "data.csv", rows.to_csv(index=False))

    [frame] = binance_vision.read(path)

    assert frame.symbol == "ETHUSDT"
    assert "oi_usd" in frame.data


def test_zip_without_csv_is_a_data_error(tmp_path):
    path = tmp_path / "BTCUSDT-1h-2024-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "nothing here")
    with pytest.raises(DataError, match=r"BTCUSDT-1h-2024-01\.zip.*expected one CSV"):
        binance_vision.read(path)


def test_not_a_zip_is_a_data_error(tmp_path):
    path = tmp_path / "BTCUSDT-1h-2024-01.zip"
    path.write_bytes(b"<html>404</html>")
    with pytest.raises(DataError, match="not a readable zip"):
        binance_vision.read(path)


def test_bad_header_names_member_and_column(tmp_path):
    text = "calc_time,interval,last_funding_rate\n1704067200000,8,0.0001\n"
    path = write_zip(tmp_path / "BTCUSDT-fundingRate-2024-01.zip", "x.csv", text)
    with pytest.raises(DataError) as err:
        binance_vision.read(path)
    assert err.value.file.endswith("BTCUSDT-fundingRate-2024-01.zip:x.csv")
    assert err.value.column == "interval"
    assert "funding_interval_hours" in str(err.value)


def test_unparsable_number_names_member_line_and_column(tmp_path):
    rows = kline_rows("2024-01-01", 5).astype(str)
    rows.loc[3, "close"] = "42k"
    path = kline_zip(tmp_path, "BTCUSDT", "2024-01-01", rows)
    with pytest.raises(DataError) as err:
        binance_vision.read(path)
    assert err.value.file == f"{path}:BTCUSDT-1h-2024-01-01.csv"
    assert (err.value.row, err.value.column) == (5, "close")  # header is line 1
    assert "'42k'" in str(err.value)


def test_conflicting_duplicate_bar_is_a_data_error(tmp_path):
    rows = kline_rows("2024-01-01", 5)
    twin = rows.iloc[[2]].assign(close=rows["close"].iat[2] + 10)
    path = kline_zip(tmp_path, "BTCUSDT", "2024-01-01", pd.concat([rows, twin]))
    with pytest.raises(DataError, match="more than once with different values") as err:
        binance_vision.read(path)
    assert (err.value.row, err.value.column) == (7, "close")  # the twin is the 7th line


def test_unknown_side_and_unknown_header_and_local_tz_are_refused(tmp_path):
    rows = liquidation_rows([("2023-01-01 00:10", "SELL", 7, 16_500.0)])
    rows.loc[1, "side"] = "LONG"
    path = liquidation_zip(tmp_path, "BTCUSD_PERP", "2023-01-01", rows)
    with pytest.raises(DataError) as err:
        binance_vision.read(path)
    assert (err.value.row, err.value.column) == (3, "side")

    other = write_zip(tmp_path / "x.zip", "x.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match="unrecognised header"):
        binance_vision.read(other)

    klines = kline_zip(tmp_path, "BTCUSDT", "2024-01", kline_rows("2024-01-01", 3))
    with pytest.raises(DataError, match="UTC"):
        binance_vision.read(klines, tz="+03:00")
