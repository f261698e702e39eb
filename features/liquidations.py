"""Realised liquidations: how much leverage was just forced out, on which side, how unusually.

Vendors publish different shares of the true liquidations (exchanges throttle their feeds), so
amounts are normalised by OI and compared with their own trailing distribution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flushcast.features.grid import SeriesGrid
from flushcast.features.rolling import bars_since, rolling, rolling_sum_strict, safe_div, zscore
from flushcast.features.spec import Feature, bars, span, span_words

FAMILY = "liquidations"
SPIKE_Z = 3.0
"""A bar whose liquidations score 3 std devs above the 30-day norm is a spike."""
_IN = ("liq_long_usd", "liq_short_usd", "oi_usd")
_SIDES = ("liq_long_usd", "liq_short_usd")
SURPRISE_HOURS = (4, 12, 24)

SPECS: tuple[Feature, ...] = (
    *(
        Feature(
            f"liq_{span(h)}_over_oi",
            FAMILY,
            "% of OI",
            h,
            f"Positions liquidated in {span_words(h)} (longs and shorts), as a share of open "
            "interest.",
            _IN,
            () if h == 1 else (h,),
        )
        for h in (1, 4, 24)
    ),
    Feature(
        "liq_imbalance_last_bar",
        FAMILY,
        "-1..1",
        1,
        f"Which side was liquidated in {span_words(1)}: +1 only longs, -1 only shorts.",
        _SIDES,
    ),
    Feature(
        "liq_imbalance_24h",
        FAMILY,
        "-1..1",
        24,
        "Which side was liquidated over the last 24 hours: +1 only longs, -1 only shorts.",
        _SIDES,
        (24,),
    ),
    Feature(
        "liq_z_30d",
        FAMILY,
        "std devs",
        720,
        "How unusual the last bar's liquidations are compared with the last 30 days.",
        _IN,
        (720,),
    ),
    *(
        Feature(
            f"liq_surprise_{h}h",
            FAMILY,
            "ratio",
            720 + h - 1,
            f"Liquidations of the last {h} hours over the median {h}-hour total of the last "
            "30 days: above 1 means more forced selling than usual, whatever the vendor's "
            "coverage.",
            _SIDES,
            (h, 720),
        )
        for h in SURPRISE_HOURS
    ),
    Feature(
        "liq_hours_since_spike",
        FAMILY,
        "hours",
        1439,
        f"Hours since liquidations last spiked ({SPIKE_Z:g} std devs above their 30-day "
        "norm), capped at 720.",
        _IN,
        (720,),
    ),
)


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    long_, short = g["liq_long_usd"], g["liq_short_usd"]
    total = long_ + short
    oi = g["oi_usd"]
    out: dict[str, np.ndarray] = {}
    sums: dict[int, np.ndarray] = {}
    for h in (1, 4, 24):
        sums[h] = rolling_sum_strict(total, bars(h, g.bar))
        out[f"liq_{span(h)}_over_oi"] = 100.0 * safe_div(sums[h], oi)
    d30 = bars(720, g.bar)
    for h in SURPRISE_HOURS:
        recent = sums[h] if h in sums else rolling_sum_strict(total, bars(h, g.bar))
        # Half the month's windows must be known; a zero median (a silent feed) is no norm.
        median = rolling(recent, d30, min_periods=d30 // 2).median().to_numpy()
        out[f"liq_surprise_{h}h"] = safe_div(recent, np.where(median > 0, median, np.nan))
    for h in (1, 24):
        n = bars(h, g.bar)
        diff = rolling_sum_strict(long_ - short, n)
        out[f"liq_imbalance_{span(h)}"] = safe_div(diff, sums[h])
    # log1p of basis points of OI: liquidations are heavy-tailed and often exactly zero.
    z = zscore(np.log1p(100.0 * out["liq_last_bar_over_oi"]), d30)
    out["liq_z_30d"] = z
    since = bars_since(z >= SPIKE_Z, d30 - 1)
    hours = since * (g.bar / pd.Timedelta(hours=1))
    hours[since >= d30 - 1] = 720.0  # no spike within the window: "30 days or more"
    hours[np.isnan(out["liq_last_bar_over_oi"])] = np.nan
    out["liq_hours_since_spike"] = hours
    return out
