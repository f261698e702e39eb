"""Demeaned features: each signal against its own symbol's recent normal.

The within-block ranking (docs/evaluation.md) sets a week's coin-days against each other, so a
coin that always runs high OI change, high liquidations over OI or a wide range looks "hot"
every week, whether or not this week is unusual for it. Each column here is one of the
series' own features minus that feature's mean over the trailing 30 days of the same series
(bars up to and including t; gap bars are not read), so it says how far today stands from
the coin's own normal rather than from the market's. The small trees (4 leaves) cannot form
that difference from the level alone.

The window is in hours (the same 30 days at every bar size); the mean needs half of it
present, as every rolling window here does. Each entry is derived from the feature it
demeans: its windows plus the 30 days (so it is missing at exactly the bar sizes its source
is) and its lookback plus the window (a mean over W bars of a value that reads L bars reads
L + W - 1 bars).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from flushcast.features.grid import SeriesGrid
from flushcast.features.rolling import rolling
from flushcast.features.spec import Feature, bars

FAMILY = "demean"

WINDOW_HOURS = 720
"""The trailing normal: 30 days, the project's usual "recent" window (z-scores, surprise)."""

SOURCES: tuple[str, ...] = (
    "liq_24h_over_oi",
    "oi_z_30d",
    "oi_change_72h",
    "atr_24h_pct",
    "rv_168h_pct",
)
"""The features demeaned. Chosen on the first half of the shared daily set's span only (each
candidate alone, ROC within weekly blocks; docs/features.md), never on the blocks the
ablation reports. Each source's lookback plus the window stays within the longest lookback
already declared (1,439 bars at 1 h), so no model's `bars_needed` grows: the liquidation
surprise and the OI rebuild since a flush, which screened well too, would have raised it."""

SPECS: tuple[Feature, ...] = ()
"""No columns of its own: `demeaned_specs` derives the entries from the features demeaned,
and `add_demeaned` fills them from the series' computed values."""


def name_of(source: str) -> str:
    """The column holding `source` minus its trailing 30-day mean."""
    return f"dm_{source}"


def demeaned_specs(source: dict[str, Feature]) -> tuple[Feature, ...]:
    """Registry entries of the demeaned columns, derived from the features they demean."""
    out = []
    for base in SOURCES:
        spec = source[base]
        text = (
            f"{base} minus its own mean over the last 30 days of this symbol (above 0: higher "
            f"than usual for this coin). {base}: {spec.description[0].lower()}"
            f"{spec.description[1:]}"
        )
        out.append(
            replace(
                spec,
                name=name_of(base),
                family=FAMILY,
                lookback=spec.lookback + WINDOW_HOURS - 1,
                windows=tuple(dict.fromkeys((*spec.windows, WINDOW_HOURS))),
                description=text,
            )
        )
    return tuple(out)


def compute(_grid: SeriesGrid) -> dict[str, np.ndarray]:
    """Nothing from the inputs: the columns read other families' values (`add_demeaned`)."""
    return {}


def add_demeaned(computed: dict[str, np.ndarray], grid: SeriesGrid) -> None:
    """Add the demeaned columns to one series' computed features (arrays on its full grid).

    Only bars the series has are averaged: a gap bar's value, whatever a family left there, is
    not the coin's normal. A source a family did not compute (its inputs are absent) leaves
    its column missing.
    """
    window = bars(WINDOW_HOURS, grid.bar)
    for base in SOURCES:
        if base not in computed:
            continue
        x = np.where(grid.present, computed[base], np.nan)
        computed[name_of(base)] = x - rolling(x, window).mean().to_numpy()
