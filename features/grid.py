"""One (symbol, venue) series laid on its full bar grid, so windows count time, not rows.

Gap bars become NaN in every column; the families compute on the grid and `SeriesGrid.rows`
picks the values back out at the bars the input actually had.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flushcast.marketdata.schema import BAR, VALUE_COLUMNS


@dataclass
class SeriesGrid:
    symbol: str
    venue: str
    bar: pd.Timedelta
    timestamps: pd.DatetimeIndex
    present: np.ndarray
    """True at grid bars the input had a row for."""
    columns: dict[str, np.ndarray]

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    def __len__(self) -> int:
        return len(self.timestamps)

    def has(self, column: str) -> bool:
        """Whether the input carries any value of `column` (a family's inputs may be absent)."""
        return bool(np.isfinite(self.columns[column]).any())


def to_grid(part: pd.DataFrame, bar: pd.Timedelta = BAR) -> SeriesGrid:
    """Reindex one series' rows (sorted, unique timestamps) onto every bar from first to last."""
    ts = part["timestamp"]
    bar_us = bar // pd.Timedelta("1us")
    t_us = ts.astype("datetime64[us, UTC]").astype("int64").to_numpy()
    pos = (t_us - t_us[0]) // bar_us
    n = int(pos[-1]) + 1 if len(pos) else 0
    present = np.zeros(n, dtype=bool)
    present[pos] = True
    columns: dict[str, np.ndarray] = {}
    for col in VALUE_COLUMNS:
        values = np.full(n, np.nan)
        values[pos] = part[col].to_numpy(dtype="float64")
        columns[col] = values
    start = ts.iloc[0] if len(ts) else pd.Timestamp(0, tz="UTC")
    timestamps = pd.date_range(start, periods=n, freq=bar, unit="us")
    return SeriesGrid(
        symbol=str(part["symbol"].iloc[0]) if len(part) else "",
        venue=str(part["venue"].iloc[0]) if len(part) else "",
        bar=bar,
        timestamps=timestamps,
        present=present,
        columns=columns,
    )
