"""Reach: how far price must move to touch its 30-day extremes, in the label's own units.

Stops and liquidation levels cluster beyond recent highs and lows, and the flush label
(docs/label.md) asks for a move of at least 2 σ·√(H / bar), σ of bar returns over the trailing
30 days. A price sitting within a σ or two of its 30-day high or low needs little to run
through the orders parked there; one in the middle of its range needs a move the label would
count anyway. So the distance is measured in that σ (scaled to a day, so it reads the same at
every bar size), not in percent: the nearer extreme, whichever side it is on.
"""

from __future__ import annotations

import numpy as np

from flushcast.features.grid import SeriesGrid
from flushcast.features.rolling import lag, rolling, safe_div
from flushcast.features.spec import Feature, bars

FAMILY = "reach"

SPECS: tuple[Feature, ...] = (
    Feature(
        "dist_extreme_30d_sigma",
        FAMILY,
        "daily std devs",
        721,
        "How far price is from the nearer of its 30-day high and low, in daily standard "
        "deviations of the last 30 days' returns (the label's σ): small means the stops and "
        "liquidations parked beyond that extreme are within one ordinary move.",
        ("high", "low", "close"),
        (720,),
        min_bars=2,
    ),
)


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    close, high, low = g["close"], g["high"], g["low"]
    d1, d30 = bars(24, g.bar), bars(720, g.bar)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.log(close / lag(close, 1))
        up = np.log(rolling(high, d30).max().to_numpy() / close)
        down = np.log(close / rolling(low, d30).min().to_numpy())
    # A daily σ: bar returns' spread over 30 days scaled by √(bars per day), as rv_* are.
    sigma_day = rolling(ret, d30).std().to_numpy() * np.sqrt(d1)
    return {"dist_extreme_30d_sigma": safe_div(np.minimum(up, down), sigma_day)}
