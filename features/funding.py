"""Funding: how much longs pay shorts, how fast that changes and how unusual it is.

Levels are in basis points per 8 h (funding_rate × 1e4, the canonical rate is a fraction per
8 h), so venues with 1 h or 4 h funding read on the same scale once ingested.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flushcast.features.grid import SeriesGrid
from flushcast.features.rolling import lag, rolling, zscore
from flushcast.features.spec import Feature, bars

FAMILY = "funding"
HOT_FUNDING_BP = 3.0
"""Funding above 3 bp per 8 h (≈ 33 % a year) means longs are crowded and paying to stay."""
_ANNUAL_PERIODS = 365 * 3  # three 8-hour funding periods a day
_IN = ("funding_rate",)

SPECS: tuple[Feature, ...] = (
    Feature(
        "funding_bp",
        FAMILY,
        "bp per 8 h",
        1,
        "Funding rate now: what longs pay shorts every 8 hours, in basis points.",
        _IN,
    ),
    Feature(
        "funding_annualised_pct",
        FAMILY,
        "% per year",
        1,
        "Funding rate now expressed as a yearly cost of holding a long.",
        _IN,
    ),
    Feature(
        "funding_change_24h",
        FAMILY,
        "bp per 8 h",
        25,
        "How much funding rose (or fell) over the last 24 hours.",
        _IN,
        (24,),
    ),
    Feature(
        "funding_change_72h",
        FAMILY,
        "bp per 8 h",
        73,
        "How much funding rose (or fell) over the last 3 days.",
        _IN,
        (72,),
    ),
    Feature(
        "funding_z_30d",
        FAMILY,
        "std devs",
        720,
        "How unusual funding is now compared with the last 30 days.",
        _IN,
        (720,),
    ),
    Feature(
        "funding_hot_share_72h",
        FAMILY,
        "fraction",
        72,
        f"Share of the last 3 days funding stayed above {HOT_FUNDING_BP:g} bp per 8 h "
        "(longs crowded and paying).",
        _IN,
        (72,),
    ),
    Feature(
        "funding_spread_venues_bp",
        FAMILY,
        "bp per 8 h",
        1,
        "Funding on this venue minus the average of the other venues for the same coin.",
        _IN,
    ),
)
# funding_spread_venues_bp needs the other venues, so it is filled in by `add_cross_venue_spread`.


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    bp = g["funding_rate"] * 1e4
    d24, d72, d30 = bars(24, g.bar), bars(72, g.bar), bars(24 * 30, g.bar)
    hot = np.where(np.isnan(bp), np.nan, (bp > HOT_FUNDING_BP).astype("float64"))
    return {
        "funding_bp": bp,
        "funding_annualised_pct": g["funding_rate"] * _ANNUAL_PERIODS * 100.0,
        "funding_change_24h": bp - lag(bp, d24),
        "funding_change_72h": bp - lag(bp, d72),
        "funding_z_30d": zscore(bp, d30),
        "funding_hot_share_72h": rolling(hot, d72).mean().to_numpy(),
    }


def add_cross_venue_spread(table: pd.DataFrame) -> None:
    """Fill `funding_spread_venues_bp` in place: own funding minus the mean of other venues.

    Uses only bars at the same timestamp, so it is point-in-time; NaN with a single venue.
    """
    table["funding_spread_venues_bp"] = np.nan
    if table["venue"].nunique() < 2:
        return
    # Integer keys: grouping on timestamps as objects is slow on the serving path.
    keys = [table["symbol"].cat.codes.to_numpy(), table["timestamp"].astype("int64").to_numpy()]
    own = table["funding_bp"]
    grouped = own.groupby(keys, sort=False)
    total = grouped.transform("sum")
    count = grouped.transform("count")
    others = count - own.notna()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_others = (total - own.fillna(0.0)) / others.where(others > 0)
    table["funding_spread_venues_bp"] = (own - mean_others).astype("float64")
