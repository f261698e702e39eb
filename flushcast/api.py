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
    from flushcast.simulator import simulate as run

    return run(preset, list(symbols), days=days, seed=seed, start=start, bar=bar).frame


def load_market(store: str | Path, symbols: Sequence[str] | None = None) -> pd.DataFrame:
    """Every stored row of the chosen symbols (default all) of a store.

    A folder that holds no store, or a symbol it does not hold (names are case-sensitive, as
    the exchanges write them: `BTCUSDT`), is an error naming what the store has.
    """
    from flushcast.common.errors import DataError
    from flushcast.marketdata.store import MarketStore

    stored = sorted({d.symbol for d in MarketStore(store).datasets()})
    if not stored:
        raise DataError(
            f"no market data in {store}: a store is made by `flushcast ingest`, `fetch` or "
            "`simulate` (or `fc.simulate` for a frame)"
        )
    unknown = [s for s in symbols or () if s not in stored]
    if unknown:
        raise DataError(f"symbol(s) {unknown} not in store {store}; it has {stored}")
    return MarketStore(store).read(list(symbols) if symbols else None)


def _symbols(market: pd.DataFrame) -> list[str]:
    return sorted(set(market["symbol"].astype(str)))


def read_export(
    source: str,
    files: Sequence[str | Path],
    *,
    tz: str | None = None,
    symbol: str | None = None,
    venue: str | None = None,
) -> pd.DataFrame:
    """A vendor's export files as a validated canonical frame, without storing anything.

    `source` and the options are `flushcast ingest`'s (`coinalyze`, `coinglass`, ...).
    """
    from flushcast.marketdata.ingest import read_canonical

    return read_canonical(source, [Path(f) for f in files], tz=tz, symbol=symbol, venue=venue)


def make_labels(
    market: pd.DataFrame, label: str = "v2", horizons: Sequence[int] | None = None
) -> pd.DataFrame:
    """Flush and direction labels per bar (`flush_<H>h`, `direction_<H>h`; and `move_side_<H>h`,
    `move_ratio_<H>h`: the side and size of every window's move) for a label by name."""
    from flushcast.training.forecaster import market_bar
    from flushcast.training.labels import label_named
    from flushcast.training.labels import make_labels as labels_of

    spec = label_named(label, **({"horizons": tuple(horizons)} if horizons else {}))
    return labels_of(market, spec, bar=market_bar(market))


def build_features(market: pd.DataFrame) -> pd.DataFrame:
    """The feature table the models train and serve on (`flushcast features list` says what
    each column means)."""
    from flushcast.features.build import build_features as features_of
    from flushcast.training.forecaster import market_bar

    return features_of(market, bar=market_bar(market))


def describe(feature: str, value: float) -> str:
    """A feature reading in words, as the trader report writes it."""
    from flushcast.features.registry import FEATURES
    from flushcast.reporting.sentences import reading

    return reading(FEATURES[feature], value)


def plot_heatmap(market: pd.DataFrame, symbol: str, end: str | pd.Timestamp, hours: int = 168):
    """The estimated liquidation heatmap of `symbol` up to `end`, with the price path of the
    last `hours` (the report's chart), at the bar size of the symbol's series."""
    from flushcast.features.heatmap import DEFAULT_CONFIG, liquidation_heatmap
    from flushcast.reporting import charts
    from flushcast.training.forecaster import market_bar

    end = pd.Timestamp(end)
    end = end.tz_localize("UTC") if end.tzinfo is None else end
    series = market[(market["symbol"].astype(str) == symbol) & (market["timestamp"] <= end)]
    if series.empty:
        raise ValueError(f"no {symbol} bars up to {end} (symbols: {_symbols(market)})")
    bar = market_bar(series)
    shown_from = end - pd.Timedelta(hours=hours)
    series = series[series["timestamp"] > shown_from - DEFAULT_CONFIG.lookback(bar) * bar]
    shown = series[series["timestamp"] > shown_from]
    return charts.liquidation_heatmap(
        liquidation_heatmap(series, bar=bar), shown, f"{symbol}: estimated liquidation levels"
    )


def render_report(
    forecaster,
    market: pd.DataFrame,
    symbol: str,
    *,
    at: str | None = None,
    weeks: int = 4,
) -> str:
    """The trader report page (self-contained HTML) of a fitted forecaster, as `flushcast
    report` writes it for a registered model."""
    from flushcast.forecast.predictor import Predictor
    from flushcast.reporting.build import render_report as render

    return render(Predictor(forecaster.fitted), market, symbol, at=at, weeks=weeks)
