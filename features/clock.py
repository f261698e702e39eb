"""The clock: the day of the week and the time left to the next funding settlement.

Perpetual funding is settled at 00:00, 08:00 and 16:00 UTC on the large venues; positions are
closed or hedged into it, and a crowded side pays at that moment. Both features are measured
from the bar's close (when its forecast is made), so they mean the same at every bar size; on
bars that are whole funding periods (8 h, daily) the time to funding is the same at every bar,
so the registry leaves it missing there (`Feature.period`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flushcast.features.grid import SeriesGrid
from flushcast.features.spec import Feature

FAMILY = "clock"
FUNDING_EVERY_HOURS = 8
"""Funding settles every 8 hours from 00:00 UTC (00/08/16)."""

SPECS: tuple[Feature, ...] = (
    Feature(
        "day_of_week",
        FAMILY,
        "0 = Monday … 6 = Sunday",
        1,
        "Day of the week (UTC) on which the bar opened.",
        (),
        period=168,
    ),
    Feature(
        "hours_to_funding",
        FAMILY,
        "hours",
        1,
        "Hours from the bar's close to the next funding settlement (00:00, 08:00 or 16:00 "
        "UTC), in (0, 8]; missing on bars of 8 hours or a multiple of it (daily bars), where "
        "it never changes.",
        (),
        period=FUNDING_EVERY_HOURS,
    ),
)


def hours_to_funding(closes: pd.DatetimeIndex) -> np.ndarray:
    """Hours from each close to the next settlement strictly after it (a close at 08:00 is 8
    hours before the 16:00 one: the 08:00 payment is already made)."""
    since_midnight = (closes - closes.normalize()) / pd.Timedelta(hours=1)
    past = np.asarray(since_midnight, dtype="float64") % FUNDING_EVERY_HOURS
    return FUNDING_EVERY_HOURS - past


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    ts = g.timestamps
    return {
        "day_of_week": ts.day_of_week.to_numpy(dtype="float64"),
        "hours_to_funding": hours_to_funding(ts + g.bar),
    }
