"""Small canonical frames for pipeline tests whose point is the mechanics, not market realism."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flushcast.marketdata.schema import conform


def bars(
    n: int = 48,
    *,
    start: str = "2024-08-01",
    symbol: str = "BTCUSDT",
    venue: str = "binance",
    seed: int = 0,
    freq: str = "1h",
) -> pd.DataFrame:
    """A random-walk price series with every optional column filled."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    close = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.005, n)))
    open_ = np.r_[60_000, close[:-1]]
    spread = np.abs(rng.normal(0, 0.002, n)) * close
    return conform(
        pd.DataFrame(
            {
                "timestamp": ts,
                "symbol": symbol,
                "venue": venue,
                "open": open_,
                "high": np.maximum(open_, close) + spread,
                "low": np.minimum(open_, close) - spread,
                "close": close,
                "volume_usd": rng.uniform(1e8, 2e8, n),
                "oi_usd": rng.uniform(5e9, 6e9, n),
                "funding_rate": 1e-4,
                "liq_long_usd": rng.exponential(1e5, n),
                "liq_short_usd": rng.exponential(1e5, n),
                "taker_buy_volume_usd": rng.uniform(4e7, 9e7, n),
                "long_short_ratio": rng.uniform(0.8, 2.5, n),
            }
        )
    )
