"""What a feature is (its registry entry) and how time windows become bar counts.

Windows are declared in hours so the same feature means the same thing on 1-minute and 1-hour
bars; `lookback` in the registry is given in bars of the default 1-hour bar. A window the bars
cannot hold (shorter than a bar, or not a whole number of them) would silently become another
window, so the feature is missing at that bar size instead (`Feature.unbuilt`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flushcast.marketdata.schema import BAR, bar_name


@dataclass(frozen=True)
class Feature:
    """One registry entry; reports quote `description`, the serving layer checks `lookback`."""

    name: str
    family: str
    unit: str
    lookback: int
    """Bars (at the 1-hour bar) up to and including the current one that the value depends on."""
    description: str
    inputs: tuple[str, ...]
    windows: tuple[int, ...] = ()
    """The time windows (hours) the value is computed over, besides the bar itself: each must
    be a whole number of bars, and at least `min_bars` of them, or the feature is missing."""
    min_bars: int = 1
    """Bars a window must hold: a spread of returns needs two."""
    period: int | None = None
    """Clock features: the cycle (hours) the value repeats with; at bars that are whole cycles
    (the hour of the day on daily bars) it never changes and is missing."""

    def unbuilt(self, bar: pd.Timedelta) -> str | None:
        """Why this feature is missing at every bar of size `bar` (None: it is built)."""
        size = bar_name(bar)
        if self.period is not None and bar % pd.Timedelta(hours=self.period) == pd.Timedelta(0):
            return f"it is the same at every {size} bar"
        for hours in self.windows:
            held = pd.Timedelta(hours=hours) / bar
            if held < 1:
                return f"its {hours} h window is shorter than a {size} bar"
            if held != int(held):
                return f"its {hours} h window is not a whole number of {size} bars"
            if held < self.min_bars:
                return f"its {hours} h window holds fewer than {self.min_bars} {size} bars"
        return None


def span(hours: int) -> str:
    """A window's part of a feature name: `4h`, `24h`; the shortest window, one hour at the
    default bar, is the last bar whatever its size (it holds 4 hours at 4 h bars), so it is
    named `last_bar`: a name must be true at every bar size."""
    return "last_bar" if hours == 1 else f"{hours}h"


def span_words(hours: int) -> str:
    """The window of `span` in words: "the last 4 hours", "the last bar (an hour at 1 h bars)"."""
    return "the last bar (an hour at 1 h bars)" if hours == 1 else f"the last {hours} hours"


def bars(hours: float, bar: pd.Timedelta = BAR) -> int:
    """Number of bars spanning `hours` of time (at least 1)."""
    return max(1, round(pd.Timedelta(hours=hours) / bar))


def lookback_bars(lookback_1h: int, bar: pd.Timedelta = BAR) -> int:
    """A 1-hour-bar lookback converted to bars of size `bar` (the current bar counts once).

    The lookback spans `lookback_1h - 1` hours before the current bar; finer bars need more of
    them to cover it, coarser ones fewer (rounded up, so the span is always covered).
    """
    before = pd.Timedelta(hours=lookback_1h - 1)
    return int(np.ceil(before / bar)) + 1
