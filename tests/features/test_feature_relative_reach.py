"""The relative (each symbol against the others at the same bar), reach (distance to the
30-day extremes in the label's σ) and vol_regime (that σ against the month before) families:
values by hand, missing inputs, every bar size, and point in time (a value at bar t reads no
later bar, and of other symbols only bar t), the last with the demean family (each feature
against its own 30-day mean; its own tests: `test_feature_demean.py`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.features import build_features, build_latest, max_lookback
from flushcast.features.registry import FEATURES, missing_at
from flushcast.features.relative import RELATIVE
from tests.features.conftest import synthetic_frame
from tests.features.test_feature_new_families import at_bar

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
RELATIVE_COLUMNS = [n for n, s in FEATURES.items() if s.family == "relative"]
COLUMNS = [*RELATIVE_COLUMNS, "dist_extreme_30d_sigma", "sigma_ratio_30d_prior_30d"]
DEMEAN_COLUMNS = [n for n, s in FEATURES.items() if s.family == "demean"]


def test_relative_is_the_own_value_minus_the_others_mean_at_the_same_bar() -> None:
    frame = synthetic_frame(SYMBOLS, bars=24 * 35, seed=11)
    # SOL misses one bar: there BTC is compared with ETH alone, and SOL has no value.
    gap = frame["timestamp"].iloc[24 * 33]
    frame = frame[~((frame["symbol"] == "SOLUSDT") & (frame["timestamp"] == gap))]
    table = build_features(frame).set_index(["timestamp", "symbol"])
    t = frame["timestamp"].iloc[24 * 34 + 5]
    for name, (base, logged) in RELATIVE.items():
        own = table[base].map(np.log1p) if logged else table[base]
        mine, eth, sol = (own.loc[(t, s)] for s in SYMBOLS)
        assert table.loc[(t, "BTCUSDT"), name] == pytest.approx(mine - (eth + sol) / 2), name
        assert table.loc[(t, "SOLUSDT"), name] == pytest.approx(sol - (mine + eth) / 2), name
        at_gap = own.loc[(gap, "BTCUSDT")] - own.loc[(gap, "ETHUSDT")]
        assert table.loc[(gap, "BTCUSDT"), name] == pytest.approx(at_gap), name
    assert table.loc[t, RELATIVE_COLUMNS].notna().all().all()


def test_one_symbol_has_no_relative_features_and_the_others_are_untouched() -> None:
    frame = synthetic_frame(("SOLUSDT",), bars=24 * 35, seed=2)
    table = build_features(frame)
    assert table[RELATIVE_COLUMNS].isna().all().all()
    assert table["dist_extreme_30d_sigma"].notna().any()


def test_relative_is_skipped_only_when_the_model_does_not_need_it() -> None:
    frame = synthetic_frame(SYMBOLS, bars=300, seed=3)
    full = build_features(frame)
    assert full[RELATIVE_COLUMNS].notna().any().any()  # the family does say something here
    lean = build_features(frame, needed=["funding_bp", "dist_extreme_30d_sigma"])
    assert lean[RELATIVE_COLUMNS].isna().all().all()
    skipped = [*RELATIVE_COLUMNS, *(n for n, s in FEATURES.items() if s.family == "breadth")]
    pd.testing.assert_frame_equal(lean.drop(columns=skipped), full.drop(columns=skipped))
    one = build_features(frame, needed=["rel_return_24h"])
    pd.testing.assert_frame_equal(one[RELATIVE_COLUMNS], full[RELATIVE_COLUMNS])


def test_reach_by_hand() -> None:
    frame = synthetic_frame(("BTCUSDT",), bars=24 * 40, seed=5)
    got = build_features(frame)["dist_extreme_30d_sigma"].to_numpy()
    close, high, low = (frame[c].to_numpy() for c in ("close", "high", "low"))
    i, n = len(frame) - 1, 720
    sigma = np.std(np.diff(np.log(close[i - n : i + 1])), ddof=1) * np.sqrt(24)
    up = np.log(high[i - n + 1 : i + 1].max() / close[i])
    down = np.log(close[i] / low[i - n + 1 : i + 1].min())
    assert got[i] == pytest.approx(min(up, down) / sigma)
    assert np.nanmin(got) >= 0
    # Closing at a new 30-day high: nothing left to reach.
    top = frame.copy()
    top.loc[top.index[-1], ["high", "close"]] = high[i - n :].max() * 1.01
    assert build_features(top)["dist_extreme_30d_sigma"].iloc[-1] == 0.0


def test_sigma_ratio_by_hand() -> None:
    frame = synthetic_frame(("BTCUSDT",), bars=24 * 61, seed=6)
    got = build_features(frame)["sigma_ratio_30d_prior_30d"].to_numpy()
    ret = np.diff(np.log(frame["close"].to_numpy()))  # ret[k] is the return into bar k + 1
    i = len(frame) - 1
    now = np.std(ret[i - 720 : i], ddof=1)  # the 720 returns into bars i-719 … i
    before = np.std(ret[i - 1438 : i - 720], ddof=1)  # the 718 into bars i-1437 … i-720
    assert got[i] == pytest.approx(np.log(now / before))
    # Calmer last month than the one before: below 0.
    calm = frame.copy()
    tail = calm.index[-700:]
    level = calm.loc[tail[0] - 1, "close"]
    drift = level * np.exp(np.cumsum(np.full(len(tail), 1e-4)) + 1e-4 * np.sin(np.arange(700)))
    calm.loc[tail, ["open", "high", "low", "close"]] = np.c_[drift, drift, drift, drift]
    assert build_features(calm)["sigma_ratio_30d_prior_30d"].iloc[-1] < -1


@pytest.mark.parametrize("bar", ["1h", "4h", "1D"])
def test_built_at_every_bar_size(bar: str) -> None:
    step = pd.Timedelta(bar)
    frame = at_bar(synthetic_frame(SYMBOLS, bars=24 * 61 if bar == "1h" else 400, seed=4), bar)
    table = build_features(frame, bar=step)
    absent = set(missing_at(step))
    for name in COLUMNS:
        if name in absent:
            assert table[name].isna().all(), name
        else:
            assert table[name].notna().any(), (bar, name)
    assert ("rel_liq_surprise_4h" in absent) == (bar == "1D")  # its 4 h window is below a day


@pytest.mark.parametrize("bar", ["1h", "4h", "1D"])
def test_point_in_time_across_symbols(bar: str) -> None:
    """Rewriting every bar after t, of every symbol, moves nothing at or before t; rewriting
    another symbol's bar t moves this one's relative value at t (it reads that closed bar) and
    nothing before t; the lookback window alone gives the batch's last bar."""
    step = pd.Timedelta(bar)
    size = 24 * 61 if bar == "1h" else 400
    full = at_bar(synthetic_frame(SYMBOLS, bars=size, seed=7), bar)
    other = at_bar(synthetic_frame(SYMBOLS, bars=size, seed=8), bar)
    cutoff = full["timestamp"].iloc[-40]
    past = full[full["timestamp"] <= cutoff]
    changed = pd.concat([past, other[other["timestamp"] > cutoff]], ignore_index=True)
    on_past = build_features(past, bar=step)
    table = build_features(changed, bar=step)
    earlier = table[table["timestamp"] <= cutoff].reset_index(drop=True)
    pd.testing.assert_frame_equal(earlier[COLUMNS], on_past[COLUMNS])
    assert on_past[DEMEAN_COLUMNS].notna().any().all()
    pd.testing.assert_frame_equal(earlier[DEMEAN_COLUMNS], on_past[DEMEAN_COLUMNS])

    eth_at_cutoff = (past["symbol"] == "ETHUSDT") & (past["timestamp"] == cutoff)
    bumped = past.copy()
    bumped.loc[eth_at_cutoff, "close"] *= 1.05
    bumped.loc[eth_at_cutoff, ["high"]] = bumped.loc[eth_at_cutoff, ["high", "close"]].max(axis=1)
    moved = build_features(bumped, bar=step)
    btc = (moved["symbol"] == "BTCUSDT").to_numpy()
    now = (moved["timestamp"] == cutoff).to_numpy()
    got, was = (f.loc[btc & now, "rel_return_24h"].iloc[0] for f in (moved, on_past))
    assert got != pytest.approx(was)
    before = (moved["timestamp"] < cutoff).to_numpy()
    pd.testing.assert_frame_equal(moved.loc[before, COLUMNS], on_past.loc[before, COLUMNS])

    end = changed["timestamp"].max()
    window = changed[changed["timestamp"] > end - max_lookback(step) * step]
    latest = build_latest(window, bar=step)
    last = table.groupby("symbol", observed=True).tail(1).reset_index(drop=True)
    pd.testing.assert_frame_equal(latest[COLUMNS], last[COLUMNS])
    pd.testing.assert_frame_equal(latest[DEMEAN_COLUMNS], last[DEMEAN_COLUMNS])
