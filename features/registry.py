"""The feature registry: every column `build_features` produces, with what it means.

Reports quote `description`, the serving layer sends `max_lookback()` bars per series, and a
model records `names_at(bar)` so training and serving agree on the columns.

Not every feature exists at every bar size (`missing_at`): a window the bars cannot hold is
missing (`Feature.unbuilt`: `oi_change_4h` on daily bars, `hour_of_day` on daily bars), and
where a named window is one bar, the `*_last_bar` twin is missing rather than a second column
of the same value (on daily bars `oi_change_24h` stays and `oi_change_last_bar` goes: the
name that states the span keeps meaning the same span at every bar size). The feature table
keeps every column (NaN there); a model trained at that bar does not list them, so they are
neither inputs nor "features missing" when it serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import pandas as pd

from flushcast.features import (
    breadth,
    clock,
    context,
    demean,
    events,
    funding,
    heatmap,
    liquidations,
    open_interest,
    positioning,
    reach,
    relative,
    vol_regime,
    volatility,
)
from flushcast.features.spec import Feature, lookback_bars, span
from flushcast.marketdata.schema import BAR, STORED_BARS, bar_name

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
    relative,
    reach,
    vol_regime,
    demean,
)
"""Family modules in column order; each has FAMILY, SPECS and compute(grid)."""

_ALL: tuple[Feature, ...] = tuple(spec for family in FAMILIES for spec in family.SPECS)
FEATURES: dict[str, Feature] = {spec.name: spec for spec in _ALL}
FEATURES.update({spec.name: spec for spec in context.btc_specs(FEATURES)})
FEATURES.update({spec.name: spec for spec in breadth.copied_specs(FEATURES)})
FEATURES.update({spec.name: spec for spec in relative.relative_specs(FEATURES)})
FEATURES.update({spec.name: spec for spec in demean.demeaned_specs(FEATURES)})


def names() -> list[str]:
    """Feature column names in output order."""
    return list(FEATURES)


def unbuilt(name: str, bar: pd.Timedelta) -> str | None:
    """Why feature `name` is missing at every bar of size `bar` (None: it is built there)."""
    spec = FEATURES[name]
    reason = spec.unbuilt(bar)
    hours = bar / pd.Timedelta(hours=1)
    last = span(1)
    if reason is None and last in name and hours > 1 and hours == int(hours):
        twin = name.replace(last, span(int(hours)))
        if twin in FEATURES and FEATURES[twin].unbuilt(bar) is None:
            reason = f"its last bar is {twin}'s window: the same value"
    return reason


@lru_cache(maxsize=16)
def missing_at(bar: pd.Timedelta = BAR) -> tuple[str, ...]:
    """The features that are missing at every bar of size `bar` (see `unbuilt`)."""
    return tuple(name for name in FEATURES if unbuilt(name, bar) is not None)


def names_at(bar: pd.Timedelta = BAR) -> list[str]:
    """The features built at bars of size `bar`: what a model trained at that bar learns from."""
    absent = set(missing_at(bar))
    return [name for name in FEATURES if name not in absent]


def at_bar(bar: pd.Timedelta = BAR) -> dict[str, Feature]:
    """The registry as it stands at bars of size `bar` (the features built there)."""
    return {name: FEATURES[name] for name in names_at(bar)}


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
                "missing_at": ", ".join(
                    bar_name(bar) for bar in STORED_BARS if f.name in missing_at(bar)
                ),
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
