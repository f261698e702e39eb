"""The feature table's shape, the registry, missing inputs, gaps and cross-series features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.features import FEATURES, build_features, build_latest, max_lookback, names
from flushcast.features.registry import FAMILIES
from flushcast.marketdata.schema import COLUMNS, OPTIONAL_COLUMNS
from tests.features.conftest import synthetic_frame


def test_one_row_per_input_row_with_every_registered_feature(frame: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1.0, random_state=0)
    table = build_features(shuffled)
    assert list(table.columns) == ["timestamp", "symbol", "venue", *names()]
    assert len(table) == len(frame)
    keys = ["symbol", "venue", "timestamp"]
    pd.testing.assert_frame_equal(
        table[keys].astype({"symbol": str, "venue": str}),
        frame[keys].astype({"symbol": str, "venue": str}),
    )
    assert isinstance(table["symbol"].dtype, pd.CategoricalDtype)
    assert table.iloc[-1][names()].notna().sum() > 40


def test_registry_entries_are_complete() -> None:
    families = {f.FAMILY for f in FAMILIES}
    for spec in FEATURES.values():
        assert spec.family in families, spec.name
        assert spec.unit and spec.description.endswith("."), spec.name
        assert 1 <= spec.lookback <= max_lookback(), spec.name
        assert set(spec.inputs) <= set(COLUMNS), spec.name
    assert max_lookback(pd.Timedelta("1min")) > 60 * (max_lookback() - 1)


def test_missing_inputs_are_nan_never_a_crash() -> None:
    # Two symbols: features read from another series (ETH's, breadth) need one to be there.
    frame = synthetic_frame(("BTCUSDT", "ETHUSDT"), bars=1100)  # the 60-day σ ratio needs 45 days
    frame = frame.assign(**{c: np.nan for c in OPTIONAL_COLUMNS})
    table = build_features(frame)
    for spec in FEATURES.values():
        values = table[spec.name]
        if set(spec.inputs) & set(OPTIONAL_COLUMNS):
            assert values.isna().all(), spec.name
        else:
            assert values.iloc[-1:].notna().all(), spec.name


def test_gaps_are_not_filled() -> None:
    frame = synthetic_frame(bars=100)
    gap = frame["timestamp"].iloc[50]
    table = build_features(frame[frame["timestamp"] != gap]).set_index("timestamp")
    after = gap + pd.Timedelta(hours=1)
    # The bar after the gap has no previous bar, so 1-hour changes are missing, not guessed.
    assert np.isnan(table.loc[after, "oi_change_last_bar"])
    assert np.isnan(table.loc[after, "return_last_bar"])
    assert np.isnan(table.loc[gap + pd.Timedelta(hours=24), "return_24h"])
    # 24-hour sums need every bar: missing while the window covers the gap.
    assert np.isnan(table.loc[gap + pd.Timedelta(hours=23), "liq_24h_over_oi"])
    assert np.isfinite(table.loc[gap + pd.Timedelta(hours=24), "liq_24h_over_oi"])
    assert np.isfinite(table.loc[after + pd.Timedelta(hours=1), "return_last_bar"])


def test_hand_checked_values_on_a_small_frame() -> None:
    frame = synthetic_frame(bars=30)
    table = build_features(frame)
    row, raw, prev = table.iloc[-1], frame.iloc[-1], frame.iloc[-2]
    assert row["funding_bp"] == pytest.approx(raw["funding_rate"] * 1e4)
    assert row["funding_annualised_pct"] == pytest.approx(raw["funding_rate"] * 1095 * 100)
    assert row["oi_change_last_bar"] == pytest.approx(100 * (raw["oi_usd"] / prev["oi_usd"] - 1))
    liq = frame["liq_long_usd"] + frame["liq_short_usd"]
    assert row["liq_4h_over_oi"] == pytest.approx(100 * liq.iloc[-4:].sum() / raw["oi_usd"])
    longs, shorts = frame["liq_long_usd"].iloc[-24:].sum(), frame["liq_short_usd"].iloc[-24:].sum()
    assert row["liq_imbalance_24h"] == pytest.approx((longs - shorts) / (longs + shorts))
    hi24 = frame["high"].iloc[-24:].max()
    assert row["dist_high_24h"] == pytest.approx(100 * (raw["close"] / hi24 - 1))
    assert row["hour_of_day"] == raw["timestamp"].hour
    # 2024-01-02 05:00 is a Tuesday.
    assert row["is_weekend"] == 0.0


def test_cross_venue_spread_and_btc_context() -> None:
    frame = synthetic_frame(("BTCUSDT", "ETHUSDT"), ("binance", "bybit"), bars=48, seed=3)
    frame.loc[frame["venue"] == "binance", "funding_rate"] = 0.0001
    frame.loc[frame["venue"] == "bybit", "funding_rate"] = 0.0003
    table = build_features(frame)
    spread = table.groupby("venue", observed=True)["funding_spread_venues_bp"]
    np.testing.assert_allclose(spread.get_group("binance"), -2.0)
    np.testing.assert_allclose(spread.get_group("bybit"), 2.0)
    eth = table[(table["symbol"] == "ETHUSDT") & (table["venue"] == "bybit")].set_index("timestamp")
    btc = table[(table["symbol"] == "BTCUSDT") & (table["venue"] == "bybit")].set_index("timestamp")
    np.testing.assert_array_equal(eth["btc_return_24h"], btc["return_24h"])
    assert eth["btc_return_24h"].notna().any()
    single = build_features(synthetic_frame(("ETHUSDT",), bars=30))
    assert single["funding_spread_venues_bp"].isna().all()
    assert single["btc_return_last_bar"].isna().all()


def test_latest_is_one_row_per_series(frame: pd.DataFrame) -> None:
    latest = build_latest(frame)
    assert len(latest) == 4
    assert (latest["timestamp"] == frame["timestamp"].max()).all()


def test_bad_frame_is_a_data_error(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="close"):
        build_features(frame.drop(columns="close"))
    broken = frame.copy()
    broken.loc[5, "high"] = broken.loc[5, "low"] / 2
    with pytest.raises(DataError, match="high"):
        build_features(broken)
