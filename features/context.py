"""Context: recent returns, where price sits against highs, lows and round numbers, the clock,
and BTC's state (alt-coin flushes usually start with, or follow, a BTC move).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from flushcast.features.grid import SeriesGrid
from flushcast.features.rolling import change_pct, rolling
from flushcast.features.spec import Feature, bars, span, span_words

FAMILY = "context"
_C = ("close",)
_HLC = ("high", "low", "close")

BTC_FEATURES: dict[str, str] = {
    "return_last_bar": "btc_return_last_bar",
    "return_24h": "btc_return_24h",
    "funding_bp": "btc_funding_bp",
    "oi_change_24h": "btc_oi_change_24h",
    "rv_ratio_24h_168h": "btc_rv_ratio_24h_168h",
    "liq_24h_over_oi": "btc_liq_24h_over_oi",
}
"""BTC's own features copied onto every symbol's rows at the same timestamp (and venue if BTC
trades there, else BTC's first venue)."""

_BTC = re.compile(r"^(BTC|XBT)([-_/]?(USDT|USDC|USD|BUSD))?([-_.]?PERP.*)?$")

SPECS: tuple[Feature, ...] = (
    *(
        Feature(
            f"return_{span(h)}",
            FAMILY,
            "%",
            h + 1,
            f"Price change over {span_words(h)}.",
            _C,
            () if h == 1 else (h,),
        )
        for h in (1, 4, 24)
    ),
    Feature(
        "dist_high_24h",
        FAMILY,
        "%",
        24,
        "How far price is below the highest price of the last 24 hours.",
        _HLC,
        (24,),
    ),
    Feature(
        "dist_low_24h",
        FAMILY,
        "%",
        24,
        "How far price is above the lowest price of the last 24 hours.",
        _HLC,
        (24,),
    ),
    Feature(
        "dist_high_7d",
        FAMILY,
        "%",
        168,
        "How far price is below the highest price of the last 7 days.",
        _HLC,
        (168,),
    ),
    Feature(
        "dist_low_7d",
        FAMILY,
        "%",
        168,
        "How far price is above the lowest price of the last 7 days.",
        _HLC,
        (168,),
    ),
    Feature(
        "dist_round_number_pct",
        FAMILY,
        "%",
        1,
        "Distance to the nearest round price level (e.g. every $1,000 for BTC at $60,000); "
        "positive when price is above it.",
        _C,
    ),
    Feature(
        "hour_of_day",
        FAMILY,
        "hour (UTC)",
        1,
        "Hour of the day the bar opened, UTC; missing on daily bars, where it never changes.",
        (),
        period=24,
    ),
    Feature(
        "is_weekend",
        FAMILY,
        "0/1",
        1,
        "1 on Saturday and Sunday (UTC), when order books are thinner.",
        (),
        period=168,
    ),
)


def is_btc(symbol: str) -> bool:
    """Whether a symbol names a BTC contract in any of the usual spellings."""
    return bool(_BTC.match(symbol.upper()))


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    close, high, low = g["close"], g["high"], g["low"]
    out = {f"return_{span(h)}": change_pct(close, bars(h, g.bar)) for h in (1, 4, 24)}
    for label, hours in (("24h", 24), ("7d", 168)):
        n = bars(hours, g.bar)
        out[f"dist_high_{label}"] = 100.0 * (close / rolling(high, n).max().to_numpy() - 1.0)
        out[f"dist_low_{label}"] = 100.0 * (close / rolling(low, n).min().to_numpy() - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = 10.0 ** (np.floor(np.log10(close)) - 1.0)
    nearest = np.round(close / step) * step
    out["dist_round_number_pct"] = 100.0 * (close - nearest) / close
    ts = g.timestamps
    out["hour_of_day"] = ts.hour.to_numpy(dtype="float64")
    out["is_weekend"] = np.asarray(ts.day_of_week >= 5, dtype="float64")
    return out


def btc_specs(source: dict[str, Feature]) -> tuple[Feature, ...]:
    """Registry entries for the BTC-context columns, derived from the BTC features they copy."""
    return tuple(
        replace(
            source[base],
            name=name,
            family=FAMILY,
            description=f"BTC: {source[base].description[0].lower()}{source[base].description[1:]}",
        )
        for base, name in BTC_FEATURES.items()
    )


def add_btc_context(table: pd.DataFrame) -> None:
    """Fill the btc_* columns in place from the rows of the BTC series (NaN without BTC)."""
    add_series_context(table, is_btc, BTC_FEATURES)


def add_series_context(
    table: pd.DataFrame, pick: Callable[[str], bool], copied: dict[str, str]
) -> None:
    """Copy the features of the series whose symbol `pick` accepts onto every row at the same
    timestamp, in place: `copied` maps each source column to its new name. The same venue's
    series is used where it trades there, else its first venue; NaN where there is none.

    Only rows at the same bar (same open, same size, so closed at the same time) are read: the
    copy is as point-in-time as the source features.
    """
    for name in copied.values():
        table[name] = np.nan
    codes = [i for i, s in enumerate(table["symbol"].cat.categories) if pick(str(s))]
    source_rows = table[np.isin(table["symbol"].cat.codes.to_numpy(), codes)]
    if source_rows.empty:
        return
    venues = sorted(source_rows["venue"].astype(str).unique())
    cols = list(copied)
    per_venue = {
        v: source_rows[source_rows["venue"].astype(str) == v]
        .drop_duplicates("timestamp")
        .set_index("timestamp")[cols]
        for v in venues
    }
    table_venues = table["venue"].astype(str)
    for venue in table_venues.unique():
        mask = (table_venues == venue).to_numpy()
        source = per_venue.get(venue, per_venue[venues[0]])
        aligned = source.reindex(table.loc[mask, "timestamp"])
        for base, name in copied.items():
            table.loc[mask, name] = aligned[base].to_numpy()
