"""Positioning: how traders lean (the accounts' long/short ratio) and who is crossing the spread
(the takers' share of buying).

A crowd leaning one way is the fuel of a flush on that side; a sudden swing of taker buying
shows who is being forced or chasing. Sources that publish neither (the 4 h CoinGlass set, most
exchange feeds) leave every feature here missing, which the models learn as unknown. Windows are
a day or longer, so a value means the same on hourly, 4-hour and daily bars.
"""

from __future__ import annotations

import numpy as np

from flushcast.features.grid import SeriesGrid
from flushcast.features.rolling import lag, rolling, safe_div, zscore
from flushcast.features.spec import Feature, bars

FAMILY = "positioning"
_LS = ("long_short_ratio",)
_TAKER = ("taker_buy_volume_usd", "volume_usd")

SPECS: tuple[Feature, ...] = (
    Feature(
        "ls_ratio_log",
        FAMILY,
        "log ratio",
        1,
        "Accounts long over accounts short now, as a natural log (0 = balanced, above 0 = "
        "more accounts long).",
        _LS,
    ),
    Feature(
        "ls_ratio_change_24h",
        FAMILY,
        "log ratio",
        25,
        "How much the long/short ratio (log) rose or fell over the last 24 hours.",
        _LS,
        (24,),
    ),
    Feature(
        "ls_ratio_z_30d",
        FAMILY,
        "std devs",
        720,
        "How unusual the long/short ratio (log) is now compared with the last 30 days.",
        _LS,
        (720,),
    ),
    Feature(
        "taker_buy_share_24h",
        FAMILY,
        "fraction",
        24,
        "Share of the last 24 hours' traded volume that takers bought (0.5 = balanced); "
        "missing where the vendor's taker volume exceeds its total volume.",
        _TAKER,
        (24,),
    ),
    Feature(
        "taker_buy_share_z_30d",
        FAMILY,
        "std devs",
        743,
        "Taker buy imbalance: how unusual the last 24 hours' taker buying over volume (log) is "
        "compared with the last 30 days of it.",
        _TAKER,
        (24, 720),
    ),
)


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    ratio = g["long_short_ratio"]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(ratio > 0, np.log(ratio), np.nan)
    d1, d30 = bars(24, g.bar), bars(720, g.bar)
    bought = rolling(g["taker_buy_volume_usd"], d1, min_periods=d1).sum().to_numpy()
    traded = rolling(g["volume_usd"], d1, min_periods=d1).sum().to_numpy()
    ratio = safe_div(bought, traded)
    # Vendors often take taker flow from more exchanges than the volume (CoinGlass's daily
    # export: a median of 0.85, up to 22): the level is a share only where it can be one, but
    # the log ratio's z-score is unmoved by a steady coverage gap.
    share = np.where((ratio > 0) & (ratio <= 1), ratio, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio_taker = np.where(ratio > 0, np.log(ratio), np.nan)
    return {
        "ls_ratio_log": log_ratio,
        "ls_ratio_change_24h": log_ratio - lag(log_ratio, d1),
        "ls_ratio_z_30d": zscore(log_ratio, d30),
        "taker_buy_share_24h": share,
        "taker_buy_share_z_30d": zscore(log_ratio_taker, d30),
    }
