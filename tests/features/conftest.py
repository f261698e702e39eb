"""Synthetic canonical frames for the feature tests: random walks with every column filled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketdata.schema import conform


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
