"""Volatility compression: quiet, tight markets are where leverage piles up before a flush.

Everything is a ratio of volatilities or ranges, or a percentile against the series' own past,
so it reads the same for BTC and for a small coin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flushcast.features.grid import SeriesGrid
from flushcast.features.rolling import bars_since, lag, rolling, safe_div
from flushcast.features.spec import Feature, bars

FAMILY = "volatility"
LARGE_MOVE_SIGMA = 3.0
"""A one-bar move (an hour's at 1 h bars) larger than 3 std devs of the last week's one-bar moves
is a large move."""
BOLLINGER_HOURS = 20
_C = ("close",)
_HLC = ("high", "low", "close")

SPECS: tuple[Feature, ...] = (
    Feature(
        "rv_24h_pct",
        FAMILY,
        "% per day",
        25,
        "Realised volatility over the last 24 hours (daily standard deviation of returns).",
        _C,
        (24,),
        2,
    ),
    *(
        Feature(
            f"rv_{h}h_pct",
            FAMILY,
            "% per day",
            h + 1,
            f"Realised volatility over the last {h // 24} days (daily standard deviation of "
            "returns).",
            _C,
            (h,),
            2,
        )
        for h in (72, 168)
    ),
    Feature(
        "rv_ratio_24h_168h",
        FAMILY,
        "ratio",
        169,
        "Volatility of the last day relative to the last week: below 1 means the market "
        "has gone quiet.",
        _C,
        (24, 168),
        2,
    ),
    Feature(
        "bb_width_pctile_30d",
        FAMILY,
        "fraction",
        BOLLINGER_HOURS + 720 - 1,
        "Bollinger band width now as a percentile of the last 30 days: near 0 means the "
        "bands are as tight as they have been all month.",
        _C,
        (BOLLINGER_HOURS, 720),
        2,
    ),
    Feature(
        "range_compression_24h_168h",
        FAMILY,
        "ratio",
        168,
        "High-low range of the last day as a share of the last week's range.",
        _HLC,
        (24, 168),
    ),
    Feature(
        "atr_24h_pct",
        FAMILY,
        "% of price",
        25,
        "Average true range per bar (an hour at 1 h bars) over the last day, as a percent of "
        "price.",
        _HLC,
        (24,),
    ),
    Feature(
        "atr_ratio_24h_168h",
        FAMILY,
        "ratio",
        169,
        "Average true range of the last day relative to the last week.",
        _HLC,
        (24, 168),
    ),
    Feature(
        "hours_since_large_move",
        FAMILY,
        "hours",
        169 + 719,
        f"Hours since price last moved more than {LARGE_MOVE_SIGMA:g} std devs within one bar "
        "(an hour at 1 h bars), capped at 720.",
        _C,
        (168, 720),
    ),
)


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    close, high, low = g["close"], g["high"], g["low"]
    h1, d1, w1, d30 = (bars(h, g.bar) for h in (1, 24, 168, 720))
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.log(close / lag(close, 1))
        ret_1h = np.log(close / lag(close, h1))
    sd_24 = rolling(ret, d1).std().to_numpy()
    sd_72 = rolling(ret, bars(72, g.bar)).std().to_numpy()
    sd_168 = rolling(ret, w1).std().to_numpy()
    out = {
        "rv_24h_pct": 100.0 * sd_24 * np.sqrt(d1),
        "rv_72h_pct": 100.0 * sd_72 * np.sqrt(d1),
        "rv_168h_pct": 100.0 * sd_168 * np.sqrt(d1),
        "rv_ratio_24h_168h": safe_div(sd_24, sd_168),
    }
    nb = bars(BOLLINGER_HOURS, g.bar)
    r = rolling(close, nb)
    width = safe_div(4.0 * r.std().to_numpy(), r.mean().to_numpy())
    out["bb_width_pctile_30d"] = rolling(width, d30).rank(pct=True).to_numpy()
    range_24 = rolling(high, d1).max().to_numpy() - rolling(low, d1).min().to_numpy()
    range_168 = rolling(high, w1).max().to_numpy() - rolling(low, w1).min().to_numpy()
    out["range_compression_24h_168h"] = safe_div(range_24, range_168)
    prev = lag(close, 1)
    true_range = np.fmax(high, prev) - np.fmin(low, prev)
    true_range[np.isnan(high) | np.isnan(low)] = np.nan
    atr_24 = rolling(true_range, d1).mean().to_numpy()
    atr_168 = rolling(true_range, w1).mean().to_numpy()
    # Scaled to an hour (ranges grow with the square root of time) so finer bars read the same.
    out["atr_24h_pct"] = 100.0 * safe_div(atr_24, close) * np.sqrt(h1)
    out["atr_ratio_24h_168h"] = safe_div(atr_24, atr_168)
    sd_1h = rolling(ret_1h, w1).std().to_numpy()
    since = bars_since(np.abs(ret_1h) >= LARGE_MOVE_SIGMA * sd_1h, d30 - 1)
    hours = since * (g.bar / pd.Timedelta(hours=1))
    hours[since >= d30 - 1] = 720.0
    hours[np.isnan(close)] = np.nan
    out["hours_since_large_move"] = hours
    return out
