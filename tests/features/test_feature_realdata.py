"""Hand-checked feature values on small slices of real data (../shared/data/real).

Every expected number is worked out in a comment from the raw file rows quoted beside it, so
the test checks the feature definitions and units, not a value copied from a run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.features import build_features, build_latest, liquidation_heatmap, max_lookback
from flushcast.features.registry import missing_at
from flushcast.marketdata.adapters.funding_csv import read as read_funding
from flushcast.marketdata.ingest import read_canonical
from flushcast.marketdata.merge import funding_on_bars
from flushcast.marketdata.schema import conform
from tests.features.conftest import check_bar_size

pytestmark = pytest.mark.realdata

COINALYZE = "denizyts__Coinalyze-Backtester/src/csvFolder"
DAILY = "Le1Ma1__CoinglassAutoPull/data_1d"
LE1MA1 = Path(__file__).resolve().parents[2] / "docs/mappings/le1ma1_coinglass_1d.yaml"
SUPERVIK = (
    "supervik__historical-funding-rates-fetcher/data/BTC-USDT/"
    "BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv"
)


@pytest.fixture(scope="module")
def btc_table(real_data: Path) -> pd.DataFrame:
    # Coinalyze hourly files are naive UTC+6; the adapter converts coins to USD.
    folder = real_data / COINALYZE
    frame = read_canonical("coinalyze", sorted(folder.glob("BTCUSDT_PERP.A_*.csv")), tz="+06:00")
    return build_features(frame).set_index("timestamp")


def at(table: pd.DataFrame, when: str) -> pd.Series:
    return table.loc[pd.Timestamp(when, tz="UTC")]


def test_open_interest_on_the_2024_08_05_flush(btc_table: pd.DataFrame) -> None:
    # Raw rows (local = UTC+6), OI close in BTC and price close:
    #   2024-08-05 03:00  OI 87879.024  close 58443.9   (UTC 08-04 21:00)
    #   2024-08-05 06:00  OI 87383.315  close 56143.9   (UTC 00:00)
    #   2024-08-05 07:00  OI 80251.143  close 54389.5   (UTC 01:00)
    #   2024-08-05 09:00  OI 79769.290  close 53864.1   (UTC 03:00)
    # oi_usd = OI coins × close. 1 h change at 01:00: 80251.143*54389.5 / (87383.315*56143.9)
    # = 4.36482e9 / 4.90604e9 → -11.03 %, a flush (≤ -3 %).
    row = at(btc_table, "2024-08-05 01:00")
    assert row["oi_change_last_bar"] == pytest.approx(-11.0316, abs=1e-3)
    assert row["oi_hours_since_flush"] == 0.0
    # 4 h: OI 4.36482e9 vs 87879.024*58443.9 = 5.13600e9 → -15.02 %; price 54389.5 vs 58443.9
    # fell too → quadrant 3, longs closing.
    assert row["oi_change_4h"] == pytest.approx(-15.0151, abs=1e-3)
    assert row["oi_quadrant_4h"] == 3.0
    # Two hours on: rebuild since the flush bar = 79769.29*53864.1 / 4.36482e9 - 1
    # = 4.29670e9 / 4.36482e9 - 1 = -1.5606 %.
    later = at(btc_table, "2024-08-05 03:00")
    assert later["oi_hours_since_flush"] == 2.0
    assert later["oi_rebuild_since_flush"] == pytest.approx(-1.5606, abs=1e-3)


def test_liquidations_on_the_2024_08_05_flush(btc_table: pd.DataFrame) -> None:
    # Raw liquidation row local 07:00 (UTC 01:00): long 151.964 BTC, short 41.665 BTC. The
    # adapter prices them at the bar's typical price (56273.7+52601.5+54389.5)/3 = 54421.57,
    # so the total is 193.629 BTC × 54421.57 = 10.5377e6 USD; OI 4.36482e9 → 0.2414 % of OI.
    row = at(btc_table, "2024-08-05 01:00")
    assert row["liq_last_bar_over_oi"] == pytest.approx(0.24143, abs=1e-4)
    # Imbalance: (151.964 - 41.665) / 193.629 = 0.5696: mostly longs were liquidated.
    assert row["liq_imbalance_last_bar"] == pytest.approx(0.56964, abs=1e-4)
    # The biggest hour of the month is a spike: at most a few hours since one.
    assert row["liq_z_30d"] > 3.0
    assert row["liq_hours_since_spike"] == 0.0


def test_context_and_volatility_on_the_flush(btc_table: pd.DataFrame) -> None:
    row = at(btc_table, "2024-08-05 01:00")
    # Close 54389.5 after 56143.9: 54389.5 / 56143.9 - 1 = -3.1249 %.
    assert row["return_last_bar"] == pytest.approx(-3.1249, abs=1e-3)
    # BTC at ~54,000: round levels every 1,000; nearest 54,000 → (54389.5-54000)/54389.5.
    assert row["dist_round_number_pct"] == pytest.approx(0.71612, abs=1e-4)
    # Monday 01:00 UTC.
    assert (row["hour_of_day"], row["is_weekend"]) == (1.0, 0.0)
    # A 3 % hourly drop after a week of ~0.5 % hours is a large move, and the day's range is
    # far wider than usual: the 24 h / 168 h volatility ratio is well above 1.
    assert row["hours_since_large_move"] <= 1.0
    assert row["rv_ratio_24h_168h"] > 1.5
    # BTC is its own context symbol.
    assert row["btc_return_last_bar"] == row["return_last_bar"]


def test_heatmap_empties_below_price_in_the_crash(real_data: Path) -> None:
    folder = real_data / COINALYZE
    frame = read_canonical("coinalyze", sorted(folder.glob("BTCUSDT_PERP.A_*.csv")), tz="+06:00")
    hm = liquidation_heatmap(frame)
    i = hm.timestamps.get_loc(pd.Timestamp("2024-08-05 01:00", tz="UTC"))
    # The bar's low 52601.5 cleared every estimated long level at or above it.
    above_low = hm.price_levels >= 52601.5 * (1 + 0.0025)
    assert hm.long_density[i, above_low].sum() == 0.0
    assert hm.long_density[i - 1, above_low].sum() > 0.0
    # Tracked notional per side never exceeds the OI it was built from.
    oi = frame.set_index("timestamp")["oi_usd"].reindex(hm.timestamps).ffill().to_numpy()
    assert (hm.long_density.sum(axis=1) <= oi * (1 + 1e-9)).all()


def test_latest_equals_batch_on_real_data(real_data: Path, btc_table: pd.DataFrame) -> None:
    folder = real_data / COINALYZE
    frame = read_canonical("coinalyze", sorted(folder.glob("SOLUSDT_PERP.A_*.csv")), tz="+06:00")
    batch = build_features(frame).iloc[-1]
    latest = build_latest(frame.tail(max_lookback())).iloc[0]
    names = [c for c in batch.index if c not in ("timestamp", "symbol", "venue")]
    np.testing.assert_allclose(
        latest[names].to_numpy(float), batch[names].to_numpy(float), rtol=1e-7, atol=1e-9
    )


def test_funding_on_real_binance_settlements(real_data: Path) -> None:
    # supervik Binance funding, naive UTC+3. Raw rows (local time → UTC):
    #   2021-02-11 11:00 0.00083070 → 08:00 UTC;  2021-02-12 11:00 0.00125630 → 08:00 UTC
    settlements = read_funding(real_data / SUPERVIK, tz="+03:00")[0].data
    opens = pd.Series(pd.date_range("2021-01-01", "2021-02-28", freq="1h", tz="UTC", unit="us"))
    frame = conform(
        pd.DataFrame(
            {
                "timestamp": opens,
                "symbol": "BTCUSDT",
                "venue": "binance",
                **dict.fromkeys(("open", "high", "low", "close"), 1.0),
                "funding_rate": funding_on_bars(settlements, opens).to_numpy(),
            }
        )
    )
    row = build_features(frame).set_index("timestamp").loc[pd.Timestamp("2021-02-12 10:00Z")]
    # In force at the 10:00 bar: 0.00125630 → 12.563 bp; a year of it: ×1095 = 137.56 %.
    assert row["funding_bp"] == pytest.approx(12.5630)
    assert row["funding_annualised_pct"] == pytest.approx(137.56485)
    # 24 h earlier the 0.00083070 rate was in force: 12.5630 - 8.3070 = 4.256 bp.
    assert row["funding_change_24h"] == pytest.approx(4.2560)
    # Every settlement from 2021-02-08 19:00 local on is above 3 bp (smallest 0.00075946).
    assert row["funding_hot_share_72h"] == 1.0
    assert row["funding_z_30d"] > 0.0


def test_daily_coinglass_has_no_window_shorter_than_its_bar(real_data: Path) -> None:
    day = pd.Timedelta(days=1)
    frame = read_canonical("table", sorted((real_data / DAILY).glob("*.csv")), mapping=LE1MA1)
    table = build_features(frame[frame["symbol"].isin(["BTCUSDT", "ETHUSDT"])], bar=day)
    check_bar_size(table, day)
    btc = table[table["symbol"] == "BTCUSDT"].set_index("timestamp")
    row = btc.loc[pd.Timestamp("2021-05-19", tz="UTC")]
    # futures_oi_agg_1d.csv, BTC oi_total_close (USD): 2021-05-18 17409454454.0,
    # 2021-05-19 12493364737.0 → 12493364737 / 17409454454 - 1 = -28.238 % over the day.
    assert row["oi_change_24h"] == pytest.approx(-28.2380, abs=1e-3)
    # The 4 h change and the last bar's would be that same day's change again: missing.
    assert {"oi_change_4h", "oi_change_last_bar", "hour_of_day"} <= set(missing_at(day))
    assert row[["oi_change_4h", "oi_change_last_bar", "hour_of_day"]].isna().all()
    assert btc.loc["2021":, "oi_change_24h"].notna().mean() > 0.95
