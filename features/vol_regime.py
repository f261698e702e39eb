"""Volatility regime: the label's σ now against the month before.

The flush label (docs/label.md) asks for a move of 2 σ·√(H / bar), σ of bar returns over the
trailing 30 days. When the last month was calmer than the one before it, that bar is low
while positions sized for the earlier, wider swings are still open: an ordinary move counts.
The ratio of the two months' σ says where the label's own threshold stands in the regime.
"""

from __future__ import annotations

import numpy as np

from flushcast.features.grid import SeriesGrid
from flushcast.features.rolling import lag, rolling, safe_div
from flushcast.features.spec import Feature, bars

FAMILY = "vol_regime"

SPECS: tuple[Feature, ...] = (
    Feature(
        "sigma_ratio_30d_prior_30d",
        FAMILY,
        "ratio (log)",
        1439,
        "Standard deviation of bar returns over the last 30 days over that of the 30 days "
        "before, as a natural log: below 0 means the label's σ, and so the move it needs, "
        "is smaller than a month ago.",
        ("close",),
        (720,),
        min_bars=2,
    ),
)


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    close = g["close"]
    d30 = bars(720, g.bar)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.log(close / lag(close, 1))
    now = rolling(ret, d30).std().to_numpy()
    # The 30 days before: returns ending d30 bars ago, two fewer so that they and the 30 days
    # now read 60 days of closes (1439 bars at 1 h, the longest lookback already declared).
    before = lag(rolling(ret, d30 - 2).std().to_numpy(), d30)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"sigma_ratio_30d_prior_30d": np.log(safe_div(now, before))}
