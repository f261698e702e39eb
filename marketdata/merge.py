"""Merging several sources of one (symbol, venue) onto one bar grid.

Each column keeps the name of every source that supplied it. Where two sources supply the same
column at the same bar, their values must agree within a tolerance; otherwise the merge fails
and names both sources, the bar and the column (a wrong time zone shows up exactly so). Values
are never averaged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketdata.errors import DataError
from marketdata.schema import BAR, FUNDING_INTERVAL_HOURS, PRICE_COLUMNS

PRICE_RTOL = 0.005
"""Relative disagreement allowed between two sources' prices (and other notionals) at one bar.
Same-venue sources agree to the tick; half a percent leaves room for vendor rounding and unit
conversions, while a time-zone shift of even an hour usually exceeds it somewhere."""

FUNDING_ATOL = 1e-6
"""Absolute disagreement allowed between two funding rates (0.01 bp per 8 h)."""

FUNDING_MAX_STALE_INTERVALS = 3
"""A settlement stays in force until the next one; after this many missed settlements the
funding series is taken to have a gap, not to be constant."""


def _check_agreement(
    left: pd.Series, right: pd.Series, column: str, left_name: str, right_name: str
) -> None:
    both = left.notna() & right.notna()
    if not both.any():
        return
    a, b = left[both].to_numpy(dtype="float64"), right[both].to_numpy(dtype="float64")
    if column == "funding_rate":
        bad = np.abs(a - b) > FUNDING_ATOL
    else:
        bad = np.abs(a - b) > PRICE_RTOL * np.maximum(np.abs(a), np.abs(b))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        when = left.index[both][i]
        hint = (
            " (prices disagree: is one source's time zone wrong?)"
            if column in PRICE_COLUMNS
            else ""
        )
        raise DataError(
            f"sources disagree at bar {when}: {left_name} has {a[i]:.10g}, "
            f"{right_name} has {b[i]:.10g} ({int(bad.sum())} bars disagree){hint}",
            column=column,
        )


class BarMerger:
    """Outer-joins bar parts (each `timestamp` + value columns, at the canonical bar) one by one."""

    def __init__(self) -> None:
        self._bars = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="timestamp"))
        self.sources: dict[str, list[str]] = {}

    @property
    def bars(self) -> pd.DataFrame:
        return self._bars.reset_index()

    def add(self, name: str | list[str], part: pd.DataFrame) -> None:
        """Merge `part` in; `name` is its source, or the sources it was concatenated from."""
        names = [name] if isinstance(name, str) else list(name)
        label = names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1} more)"
        part = part.set_index("timestamp")
        merged = self._bars.reindex(self._bars.index.union(part.index))
        for column in part.columns:
            incoming = part[column].reindex(merged.index)
            if incoming.isna().all():
                continue
            if column in merged:
                earlier = ", ".join(self.sources[column])
                _check_agreement(merged[column], incoming, column, earlier, label)
                merged[column] = merged[column].fillna(incoming)
            else:
                merged[column] = incoming
            known = self.sources.setdefault(column, [])
            known.extend(n for n in names if n not in known)
        self._bars = merged


def funding_on_bars(
    settlements: pd.DataFrame, bar_opens: pd.Series, bar: pd.Timedelta = BAR
) -> pd.Series:
    """The funding rate in force at each bar's close, from settlement times and rates.

    A rate settles at its timestamp and stays in force until the next settlement, so a bar gets
    the last settlement at or before its close (bar open + bar). Nothing later is used.
    """
    settlements = settlements.sort_values("timestamp")
    spacing = settlements["timestamp"].diff().median()
    if pd.isna(spacing):
        spacing = pd.Timedelta(hours=FUNDING_INTERVAL_HOURS)
    closes = pd.DataFrame({"close_time": (bar_opens + bar).to_numpy()})
    joined = pd.merge_asof(
        closes,
        settlements.rename(columns={"timestamp": "close_time"})[["close_time", "funding_rate"]],
        on="close_time",
        direction="backward",
        allow_exact_matches=True,
        tolerance=spacing * FUNDING_MAX_STALE_INTERVALS,
    )
    return pd.Series(joined["funding_rate"].to_numpy(), index=bar_opens.index, name="funding_rate")
