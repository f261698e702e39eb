"""Feature-builder speed: the issue's targets on random-walk canonical frames.

* 10 symbols × 2 years of 1-hour bars (175,200 rows), every feature incl. the heatmap: < 5 s,
  peak memory < 2 GB;
* 1 symbol × 1 year of 1-minute bars: < 15 s;
* one symbol's latest bar from its lookback window (the serving path): < 20 ms.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from benchmarks.measure import timed
from flushcast.features import build_features, build_latest, max_lookback
from flushcast.marketdata.schema import conform


def market(symbols: int, bars: int, freq: str, seed: int = 0) -> pd.DataFrame:
    """Random-walk bars with OI, funding and liquidations, like a full vendor export."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(freq) / pd.Timedelta("1h")
    parts = []
    for i in range(symbols):
        close = 100.0 * (i + 1) * np.exp(np.cumsum(rng.normal(0, 0.007 * np.sqrt(step), bars)))
        open_ = np.r_[close[0], close[:-1]]
        wick = np.abs(rng.normal(0, 0.002 * np.sqrt(step), (2, bars)))
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": pd.date_range("2023-01-01", periods=bars, freq=freq, tz="UTC"),
                    "symbol": "BTCUSDT" if i == 0 else f"COIN{i}USDT",
                    "venue": "binance",
                    "open": open_,
                    "high": np.maximum(open_, close) * (1 + wick[0]),
                    "low": np.minimum(open_, close) * (1 - wick[1]),
                    "close": close,
                    "volume_usd": rng.uniform(1e7, 5e7, bars),
                    "oi_usd": 1e9 * np.exp(np.cumsum(rng.normal(0, 0.01 * np.sqrt(step), bars))),
                    "funding_rate": rng.normal(1e-4, 1e-4, bars),
                    "liq_long_usd": rng.exponential(1e5, bars),
                    "liq_short_usd": rng.exponential(1e5, bars),
                }
            )
        )
    return conform(pd.concat(parts, ignore_index=True))


def main() -> None:
    hourly = market(10, 2 * 8760, "1h")
    build_features(hourly.iloc[:5000])  # load numba's cached kernels outside the timing
    timed(
        "features: 10 symbols × 2 years of 1 h bars (175,200 rows)",
        lambda: build_features(hourly),
        target_s=5.0,
    )

    window = hourly[hourly["symbol"] == "COIN3USDT"].tail(max_lookback())
    runs = []
    for _ in range(30):
        start = time.perf_counter()
        build_latest(window)
        runs.append(time.perf_counter() - start)
    median = statistics.median(runs)
    verdict = "met" if median <= 0.020 else "MISSED"
    print(
        f"features: latest bar of one symbol from {len(window)} bars: median "
        f"{median * 1000:.1f} ms over 30 runs (target 20 ms: {verdict})",
        flush=True,
    )

    minute = market(1, 365 * 1440, "1min", seed=1)
    timed(
        "features: 1 symbol × 1 year of 1 min bars (525,600 rows)",
        lambda: build_features(minute, bar=pd.Timedelta("1min")),
        target_s=15.0,
    )


if __name__ == "__main__":
    main()
