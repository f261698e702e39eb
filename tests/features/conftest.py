"""Synthetic canonical frames for the feature tests (random walks with every column filled), and
the check of a table against the registry's bar-size rule."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from flushcast.features.context import BTC_FEATURES
from flushcast.features.registry import FEATURES, missing_at, names, names_at
from flushcast.marketdata.schema import conform


def synthetic_frame(
    symbols: tuple[str, ...] = ("BTCUSDT",),
    venues: tuple[str, ...] = ("binance",),
    bars: int = 200,
    seed: int = 0,
    drop: float = 0.0,
) -> pd.DataFrame:
    """A valid canonical frame: geometric random-walk prices, drifting OI, noisy funding.

    `drop` removes that share of bars at random (gaps), the first and last bar kept.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for i, symbol in enumerate(symbols):
        for venue in venues:
            ts = pd.date_range("2024-01-01", periods=bars, freq="1h", tz="UTC", unit="us")
            close = 100.0 * (i + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
            open_ = np.r_[close[0], close[:-1]]
            high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, bars)))
            low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, bars)))
            part = pd.DataFrame(
                {
                    "timestamp": ts,
                    "symbol": symbol,
                    "venue": venue,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume_usd": rng.uniform(1e7, 5e7, bars),
                    "oi_usd": 1e9 * np.exp(np.cumsum(rng.normal(0, 0.015, bars))),
                    "funding_rate": rng.normal(1e-4, 1e-4, bars).round(6),
                    "liq_long_usd": rng.exponential(1e5, bars) * (rng.random(bars) < 0.7),
                    "liq_short_usd": rng.exponential(1e5, bars) * (rng.random(bars) < 0.7),
                }
            )
            part["taker_buy_volume_usd"] = part["volume_usd"] * rng.uniform(0.3, 0.7, bars)
            part["long_short_ratio"] = np.exp(np.cumsum(rng.normal(0, 0.02, bars)))
            if drop:
                keep = rng.random(bars) >= drop
                keep[[0, -1]] = True
                part = part[keep]
            parts.append(part)
    frame = conform(pd.concat(parts, ignore_index=True))
    return frame.sort_values(["symbol", "venue", "timestamp"], kind="stable").reset_index(drop=True)


@pytest.fixture
def frame() -> pd.DataFrame:
    return synthetic_frame(("BTCUSDT", "ETHUSDT"), ("binance", "bybit"), bars=300, seed=1)


def check_bar_size(table: pd.DataFrame, bar: pd.Timedelta) -> None:
    """The registry's rule on a feature table built at `bar`: the features missing there are
    missing in every row, and no two of a series' own features hold the same values (BTC's
    copies and breadth repeat other columns by design on some rows)."""
    absent = set(missing_at(bar))
    assert table[sorted(absent)].isna().all().all()
    assert names_at(bar) == [name for name in names() if name not in absent]
    own = [
        name
        for name in names_at(bar)
        if FEATURES[name].family != "breadth" and name not in BTC_FEATURES.values()
    ]
    for a, b in combinations(own, 2):
        x, y = table[a].to_numpy(), table[b].to_numpy()
        both = np.isfinite(x) & np.isfinite(y)
        varied = len(np.unique(x[both])) > 2  # not two capped or coded columns at one value
        if both.sum() >= 10 and varied:
            assert not np.allclose(x[both], y[both]), f"{a} and {b} hold the same values"
