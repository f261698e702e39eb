"""The demean family (each feature against its own symbol's trailing 30-day mean): values by
hand, gaps and missing inputs, every bar size, and point in time (a value at bar t reads no
later bar, and the lookback window alone gives the batch's last bar)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.features import build_features, build_latest, max_lookback
from flushcast.features.demean import SOURCES, name_of
from flushcast.features.registry import FEATURES, missing_at
from flushcast.features.spec import lookback_bars
from tests.features.conftest import synthetic_frame
from tests.features.test_feature_new_families import at_bar

COLUMNS = [n for n, s in FEATURES.items() if s.family == "demean"]


def test_the_family_is_its_sources_each_with_the_window_added_to_its_lookback() -> None:
    assert [name_of(s) for s in SOURCES] == COLUMNS and 5 <= len(COLUMNS) <= 10
    for source in SOURCES:
        spec, base = FEATURES[name_of(source)], FEATURES[source]
        assert spec.lookback == base.lookback + 720 - 1
        assert spec.inputs == base.inputs and 720 in spec.windows
    # No model's bars_needed grows: the family reads no further back than the registry did.
    assert max(FEATURES[n].lookback for n in COLUMNS) <= 1439 == max_lookback()


def test_demeaned_is_the_value_minus_the_mean_of_the_last_30_days_by_hand() -> None:
    frame = synthetic_frame(("BTCUSDT",), bars=24 * 40, seed=21)
    # One bar missing in the last month: the mean is over the 719 bars the series has, and of
    # those over the values its source has (the 24 h sums across the gap are missing).
    gap = frame["timestamp"].iloc[-100]
    frame = frame[frame["timestamp"] != gap].reset_index(drop=True)
    table = build_features(frame)
    stamps = table["timestamp"]
    t = stamps.iloc[-1]
    month = (stamps > t - pd.Timedelta(hours=720)).to_numpy()
    assert month.sum() == 719
    for source in SOURCES:
        x = table[source].to_numpy()
        expected = x[-1] - np.nanmean(x[month])
        assert table[name_of(source)].iloc[-1] == pytest.approx(expected), source
    # the 23 bars after the gap whose 24 h window holds it
    assert np.isnan(table["liq_24h_over_oi"].to_numpy()[month]).sum() == 23
    # Half the window (360 bars) present is needed, as in every rolling window of the project.
    first = table["dm_atr_24h_pct"].first_valid_index()
    source_first = table["atr_24h_pct"].first_valid_index()
    assert first == source_first + 359


def test_a_coin_always_hot_reads_zero_when_today_is_its_usual() -> None:
    """The point of the family: a constant level, however high, is not news."""
    frame = synthetic_frame(("BTCUSDT",), bars=24 * 35, seed=22)
    steady = frame.copy()
    steady["oi_usd"] = 1e9 * np.exp(0.002 * np.arange(len(frame)))  # +0.2 % every hour
    table = build_features(steady)
    assert table["oi_change_72h"].iloc[-1] > 15
    assert table["dm_oi_change_72h"].iloc[-1] == pytest.approx(0.0, abs=1e-9)


def test_missing_where_the_source_is_missing() -> None:
    frame = synthetic_frame(("BTCUSDT",), bars=24 * 35, seed=23)
    frame["oi_usd"] = np.nan
    table = build_features(frame)
    oi_based = [name_of(s) for s in SOURCES if "oi_usd" in FEATURES[s].inputs]
    assert oi_based and table[oi_based].isna().all().all()
    assert table["dm_atr_24h_pct"].notna().any()
    # A bar whose own value is missing has no demeaned value, though its month has a mean.
    frame = synthetic_frame(("BTCUSDT",), bars=24 * 35, seed=23)
    frame.loc[frame.index[-5], "oi_usd"] = np.nan
    table = build_features(frame)
    assert np.isnan(table["oi_z_30d"].iloc[-5]) and np.isnan(table["dm_oi_z_30d"].iloc[-5])
    assert np.isfinite(table["dm_oi_z_30d"].iloc[-4])


@pytest.mark.parametrize("bar", ["1h", "4h", "1D"])
def test_built_at_every_bar_size_where_its_source_is(bar: str) -> None:
    step = pd.Timedelta(bar)
    frame = at_bar(
        synthetic_frame(("BTCUSDT", "ETHUSDT"), bars=24 * 35 if bar == "1h" else 200), bar
    )
    table = build_features(frame, bar=step)
    absent = set(missing_at(step))
    for source in SOURCES:
        assert (name_of(source) in absent) == (source in absent), (bar, source)
        if source not in absent:
            assert table[name_of(source)].notna().any(), (bar, source)


@pytest.mark.parametrize("bar", ["1h", "4h", "1D"])
def test_the_family_s_own_lookback_gives_the_batch_s_last_bar(bar: str) -> None:
    """The lookback is declared, not borrowed from a longer feature: a window of exactly the
    family's longest lookback (with gaps at 1 h) gives the batch values of the last bar (what
    serving computes). Point in time over every later bar: `test_feature_relative_reach.py`."""
    step = pd.Timedelta(bar)
    size = 24 * 61 if bar == "1h" else 400
    hourly = synthetic_frame(("BTCUSDT", "ETHUSDT"), bars=size, seed=24, drop=0.02)
    market = hourly if bar == "1h" else at_bar(hourly, bar)  # relabelled: the gaps close
    last = build_features(market, bar=step).groupby("symbol", observed=True).tail(1)
    assert last[COLUMNS].notna().any().all()  # a gap in the last day: liq_24h_over_oi is not
    own = lookback_bars(max(FEATURES[n].lookback for n in COLUMNS), step)
    # Each series' own last `own` bars of time (relabelled series end apart).
    end = market.groupby("symbol", observed=True)["timestamp"].transform("max")
    latest = build_latest(market[market["timestamp"] > end - own * step], bar=step)
    # Tight: a window one bar short moves the 1 h values by about 1e-6.
    got, batch = latest[COLUMNS], last[COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, batch, rtol=1e-10, atol=1e-10)


def test_demean_is_left_out_only_when_the_model_does_not_need_it() -> None:
    """The service builds what its model reads: without a demeaned input the family is not
    computed (missing), and nothing else changes; with one, every value is the batch's."""
    frame = synthetic_frame(("BTCUSDT", "ETHUSDT"), bars=24 * 35, seed=26)
    full = build_features(frame)
    assert full[COLUMNS].notna().any().all()
    lean = build_features(frame, needed=["funding_bp", "oi_z_30d"])
    assert lean[COLUMNS].isna().all().all()
    skipped = [n for n, s in FEATURES.items() if s.family in ("demean", "breadth", "relative")]
    pd.testing.assert_frame_equal(lean.drop(columns=skipped), full.drop(columns=skipped))
    one = build_features(frame, needed=["dm_oi_z_30d"])
    pd.testing.assert_frame_equal(one[COLUMNS], full[COLUMNS])
