"""The notebook API's market-data helpers: a simulated market and a stored one, as frames.

`flushcast.simulate` and `flushcast.load_market` return canonical market frames, the input of
`FlushForecaster.fit/predict` and `backtest`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def simulate(
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    days: int = 365,
    seed: int = 7,
    *,
    preset: str = "default",
    start: str = "2024-01-01",
    bar: str = "1h",
) -> pd.DataFrame:
    """The built-in simulator's canonical frame (venue "sim"); same seed, same market.

    For the cascade log and the hourly ground truth, use `simulator.simulate` itself.
    """
    from simulator import simulate as run

    return run(preset, list(symbols), days=days, seed=seed, start=start, bar=bar).frame


def load_market(store: str | Path, symbols: Sequence[str] | None = None) -> pd.DataFrame:
    """Every stored row of the chosen symbols (default all) of a store."""
    from marketdata.store import MarketStore

    return MarketStore(store).read(list(symbols) if symbols else None)
