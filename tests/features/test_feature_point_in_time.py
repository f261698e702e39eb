"""Point-in-time and window-equivalence properties of the whole feature table.

Appending, truncating or rewriting future bars must never change a feature at an earlier bar;
the last bar computed from only `max_lookback()` bars must equal the batch value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flushcast.features import build_features, build_latest, max_lookback, names
from tests.features.conftest import synthetic_frame

SETTINGS = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a["timestamp"]) == list(b["timestamp"])
    for name in names():
        np.testing.assert_allclose(
            a[name].to_numpy(), b[name].to_numpy(), rtol=1e-7, atol=1e-9, err_msg=name
        )


@SETTINGS
@given(seed=st.integers(0, 10_000), cut=st.integers(5, 395), drop=st.sampled_from([0.0, 0.1]))
def test_future_bars_never_change_past_features(seed: int, cut: int, drop: float) -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")  # BTC's and ETH's state, breadth across three
    full = synthetic_frame(symbols, ("binance", "okx"), 400, seed, drop)
    cutoff = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=cut)
    past = full[full["timestamp"] <= cutoff].reset_index(drop=True)
    # Rewrite every future bar with another random path (prices, OI, flows, funding).
    other = synthetic_frame(symbols, ("binance", "okx"), 400, seed + 1, drop)
    changed = pd.concat([past, other[other["timestamp"] > cutoff]], ignore_index=True)

    on_past = build_features(past)
    for future in (full, changed):
        table = build_features(future)
        earlier = table[table["timestamp"] <= cutoff].reset_index(drop=True)
        assert_same(earlier, on_past)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), drop=st.sampled_from([0.0, 0.05]), extra=st.integers(0, 300))
def test_latest_from_lookback_window_equals_batch(seed: int, drop: float, extra: int) -> None:
    lookback = max_lookback()
    symbols = ("BTCUSDT", "ETHUSDT", "DOGEUSDT")
    full = synthetic_frame(symbols, ("binance",), lookback + extra + 50, seed, drop)
    batch = build_features(full).groupby("symbol", observed=True).tail(1).reset_index(drop=True)
    end = full["timestamp"].max()
    window = full[full["timestamp"] > end - pd.Timedelta(hours=lookback)]
    latest = build_latest(window)
    assert list(latest["symbol"]) == list(batch["symbol"])
    assert_same(latest, batch)
