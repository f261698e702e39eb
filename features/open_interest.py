"""Open interest: is leverage building or unwinding, and on which side.

All values are ratios or percent changes of OI notional, so they do not depend on which vendor
(or which subset of venues) reported the OI.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flushcast.features.grid import SeriesGrid
from flushcast.features.rolling import bars_since, change_pct, rolling, safe_div, zscore
from flushcast.features.spec import Feature, bars, span, span_words

FAMILY = "open_interest"
FLUSH_OI_DROP_PCT = -3.0
"""An OI drop of 3 % or more within one bar (an hour at 1 h bars) marks a flush: positions were
forced or rushed out."""
_OI = ("oi_usd",)
_OI_PX = ("oi_usd", "close")

QUADRANTS = {
    0: "longs building (OI up, price up)",
    1: "shorts building (OI up, price down)",
    2: "shorts closing (OI down, price up)",
    3: "longs closing (OI down, price down)",
}
_QUADRANT_TEXT = "; ".join(f"{k} = {v}" for k, v in QUADRANTS.items())

SPECS: tuple[Feature, ...] = (
    *(
        Feature(
            f"oi_change_{span(h)}",
            FAMILY,
            "%",
            h + 1,
            f"Change in open interest over {span_words(h)}.",
            _OI,
            () if h == 1 else (h,),
        )
        for h in (1, 4, 24, 72)
    ),
    Feature(
        "oi_z_30d",
        FAMILY,
        "std devs",
        720,
        "How high open interest is now compared with the last 30 days (log scale).",
        _OI,
        (720,),
    ),
    Feature(
        "oi_to_volume_24h",
        FAMILY,
        "ratio",
        24,
        "Open interest divided by the last 24 hours of traded volume: leverage parked "
        "versus activity.",
        ("oi_usd", "volume_usd"),
        (24,),
    ),
    Feature(
        "oi_quadrant_4h",
        FAMILY,
        "code 0-3",
        5,
        f"What OI and price did over 4 hours together: {_QUADRANT_TEXT}.",
        _OI_PX,
        (4,),
    ),
    Feature(
        "oi_quadrant_24h",
        FAMILY,
        "code 0-3",
        25,
        f"What OI and price did over 24 hours together: {_QUADRANT_TEXT}.",
        _OI_PX,
        (24,),
    ),
    Feature(
        "oi_rebuild_since_flush",
        FAMILY,
        "%",
        721,
        "How much open interest has rebuilt since the last flush (an OI drop of "
        f"{-FLUSH_OI_DROP_PCT:g} % or more within one bar, an hour at 1 h bars) in the last 30 "
        "days.",
        _OI,
        (720,),
    ),
    Feature(
        "oi_hours_since_flush",
        FAMILY,
        "hours",
        721,
        "Hours since the last OI flush, capped at 720 (30 days).",
        _OI,
        (720,),
    ),
)


def _quadrant(oi_chg: np.ndarray, ret: np.ndarray) -> np.ndarray:
    q = np.where(oi_chg >= 0, np.where(ret >= 0, 0.0, 1.0), np.where(ret >= 0, 2.0, 3.0))
    q[np.isnan(oi_chg) | np.isnan(ret)] = np.nan
    return q


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    oi, close = g["oi_usd"], g["close"]
    h1, h4, d1, d3, d30 = (bars(h, g.bar) for h in (1, 4, 24, 72, 720))
    windows = ((1, h1), (4, h4), (24, d1), (72, d3))
    out = {f"oi_change_{span(h)}": change_pct(oi, n) for h, n in windows}
    with np.errstate(divide="ignore", invalid="ignore"):
        log_oi = np.where(oi > 0, np.log(oi), np.nan)
    out["oi_z_30d"] = zscore(log_oi, d30)
    volume_24h = rolling(g["volume_usd"], d1, min_periods=d1).sum().to_numpy()
    out["oi_to_volume_24h"] = safe_div(oi, volume_24h)
    out["oi_quadrant_4h"] = _quadrant(out["oi_change_4h"], change_pct(close, h4))
    out["oi_quadrant_24h"] = _quadrant(out["oi_change_24h"], change_pct(close, d1))

    # The flush is judged on hourly OI changes, also on finer bars.
    flush = change_pct(oi, h1) <= FLUSH_OI_DROP_PCT
    since = bars_since(flush, d30 - 1)
    in_window = since < d30 - 1
    idx = np.arange(len(oi))
    oi_at_flush = np.full(len(oi), np.nan)
    last = (idx - since).astype(np.int64)
    oi_at_flush[in_window] = oi[last[in_window]]
    out["oi_rebuild_since_flush"] = 100.0 * (safe_div(oi, oi_at_flush) - 1.0)
    hours = since * (g.bar / pd.Timedelta(hours=1))
    hours[~in_window] = 720.0
    hours[np.isnan(oi)] = np.nan
    out["oi_hours_since_flush"] = hours
    return out
