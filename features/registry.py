"""The feature registry: every column `build_features` produces, with what it means.

Reports quote `description`, the serving layer sends `max_lookback()` bars per series, and a
model records `names()` so training and serving agree on the columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from features import (
    breadth,
    clock,
    context,
    events,
    funding,
    heatmap,
    liquidations,
    open_interest,
    positioning,
    volatility,
)
from features.spec import Feature, lookback_bars
from marketdata.schema import BAR

FAMILIES = (
    funding,
    open_interest,
    liquidations,
    heatmap,
    volatility,
    context,
    positioning,
    clock,
    events,
    breadth,
)
"""Family modules in column order; each has FAMILY, SPECS and compute(grid)."""

_ALL: tuple[Feature, ...] = tuple(spec for family in FAMILIES for spec in family.SPECS)
FEATURES: dict[str, Feature] = {spec.name: spec for spec in _ALL}
FEATURES.update({spec.name: spec for spec in context.btc_specs(FEATURES)})
FEATURES.update({spec.name: spec for spec in breadth.copied_specs(FEATURES)})


def names() -> list[str]:
    """Feature column names in output order."""
    return list(FEATURES)


def family_names() -> list[str]:
    """The families, in column order (what `features.exclude_families` may name)."""
    return [family.FAMILY for family in FAMILIES]


def without_families(excluded: Sequence[str], features: list[str] | None = None) -> list[str]:
    """The features (of `features`, default all) outside the `excluded` families; a model input
    that is not a registry feature (a dataset may add its own) is kept."""
    chosen = names() if features is None else features
    out = set(excluded)
    return [name for name in chosen if name not in FEATURES or FEATURES[name].family not in out]


def max_lookback(
    bar: pd.Timedelta = BAR, config: heatmap.HeatmapConfig = heatmap.DEFAULT_CONFIG
) -> int:
    """Bars per series (current one included) that reproduce every feature of the last bar."""
    longest = lookback_bars(max(spec.lookback for spec in FEATURES.values()), bar)
    return max(longest, config.lookback(bar))


def as_frame() -> pd.DataFrame:
    """The registry as a table (for `flushcast features list` and reports)."""
    return pd.DataFrame(
        [
            {
                "name": f.name,
                "family": f.family,
                "unit": f.unit,
                "lookback": f.lookback,
                "inputs": ", ".join(f.inputs) or "timestamp",
                "description": f.description,
            }
            for f in FEATURES.values()
        ]
    )


MISSING_GROUPS: tuple[str, ...] = ("liq_long_usd", "oi_usd", "funding_rate", "volume_usd")
"""Inputs that real sources often lack as a whole (no liquidation feed, no OI, no funding)."""


def depending_on(column: str, features: list[str] | None = None) -> list[str]:
    """The features (of `features`, default all) computed from the input `column`.

    When a source lacks that input, exactly these are missing at once: the unit in which
    missingness arrives, and so the unit a model must learn to do without.
    """
    chosen = names() if features is None else features
    return [name for name in chosen if column in FEATURES[name].inputs]
