"""Per-dataset summary of a store: bar, span, bars, gaps and the coverage of every column."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from flushcast.marketdata.schema import VALUE_COLUMNS
from flushcast.marketdata.store import MarketStore
from flushcast.marketdata.validate import validate


@dataclass(frozen=True)
class DatasetInfo:
    symbol: str
    venue: str
    bar: pd.Timedelta
    start: pd.Timestamp
    end: pd.Timestamp
    bars: int
    gaps: int
    missing_bars: int
    coverage: dict[str, float]
    """Share of present bars with a value, per value column (0 = the source lacks it)."""


def store_info(store: MarketStore) -> list[DatasetInfo]:
    infos = []
    for dataset in store.datasets():
        frame = store.read([dataset.symbol], dataset.venue)
        report = validate(frame, bar=dataset.bar)
        infos.append(
            DatasetInfo(
                symbol=dataset.symbol,
                venue=dataset.venue,
                bar=dataset.bar,
                start=frame["timestamp"].iat[0],
                end=frame["timestamp"].iat[-1] + dataset.bar,
                bars=len(frame),
                gaps=len(report.gaps),
                missing_bars=report.missing_bars,
                coverage={c: float(frame[c].notna().mean()) for c in VALUE_COLUMNS},
            )
        )
    return infos
