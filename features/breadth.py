"""Market breadth: what the rest of the market is doing at the same bar.

A flush rarely starts alone: ETH and alt-coin liquidations often lead a BTC flush, and funding
hot on many coins at once means the whole market leans one way. Every value here is read from
the other symbols' features at the same bar of the same frame (`build_features` takes one bar
size, so those bars closed when this one did): nothing later, and nothing from a coarser bar
still open. The own symbol is left out (on every venue), so a store of one symbol has no
breadth: every column is missing there, which the models learn as unknown. In serving, breadth
is computed from the series sent or stored with the one scored (the service's `series` request
and the live risk page both build features over every series at once).
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd

from flushcast.features.context import add_series_context, is_btc
from flushcast.features.funding import HOT_FUNDING_BP
from flushcast.features.spec import Feature

FAMILY = "breadth"
_ETH = re.compile(r"^ETH([-_/]?(USDT|USDC|USD|BUSD))?([-_.]?PERP.*)?$")

ETH_FEATURES: dict[str, str] = {
    "return_24h": "eth_return_24h",
    "funding_bp": "eth_funding_bp",
    "oi_change_24h": "eth_oi_change_24h",
    "liq_surprise_24h": "eth_liq_surprise_24h",
}
"""ETH's own features copied onto every row at the same bar (as BTC's are in `context`)."""
BTC_EXTRA: dict[str, str] = {"liq_surprise_24h": "btc_liq_surprise_24h"}
"""BTC's liquidation surprise (the `context` family copies its other state)."""

_OTHERS: tuple[Feature, ...] = (
    Feature(
        "breadth_hot_funding_share",
        FAMILY,
        "fraction",
        1,
        f"Share of the other symbols whose funding is above {HOT_FUNDING_BP:g} bp per 8 h now "
        "(the market's longs crowded and paying).",
        ("funding_rate",),
    ),
    Feature(
        "breadth_oi_change_24h",
        FAMILY,
        "%",
        25,
        "Average change in open interest over the last 24 hours across the other symbols.",
        ("oi_usd",),
        (24,),
    ),
    Feature(
        "breadth_liq_surprise_max_24h",
        FAMILY,
        "ratio",
        743,
        "The largest liquidation surprise (last 24 hours over their 30-day median) among the "
        "other symbols.",
        ("liq_long_usd", "liq_short_usd"),
        (24, 720),
    ),
    Feature(
        "breadth_liq_surprise_mean_24h",
        FAMILY,
        "ratio",
        743,
        "The average liquidation surprise (last 24 hours over their 30-day median) of the "
        "other symbols.",
        ("liq_long_usd", "liq_short_usd"),
        (24, 720),
    ),
)

SPECS: tuple[Feature, ...] = _OTHERS
"""The per-bar columns; the ETH and BTC copies come from `copied_specs` (they quote the
registry entries they copy)."""


def is_eth(symbol: str) -> bool:
    """Whether a symbol names an ETH contract in any of the usual spellings."""
    return bool(_ETH.match(symbol.upper()))


def copied_specs(source: dict[str, Feature]) -> tuple[Feature, ...]:
    """Registry entries of the ETH and BTC copies, derived from the features they copy."""
    out = []
    for coin, copied in (("ETH", ETH_FEATURES), ("BTC", BTC_EXTRA)):
        for base, name in copied.items():
            spec = source[base]
            text = f"{coin}: {spec.description[0].lower()}{spec.description[1:]}"
            out.append(replace(spec, name=name, family=FAMILY, description=text))
    return tuple(out)


def compute(_grid) -> dict[str, np.ndarray]:
    """Nothing per series: breadth needs every series at once (`add_breadth`)."""
    return {}


def add_breadth(table: pd.DataFrame) -> None:
    """Fill the breadth columns of a feature table in place (one bar size, any symbols)."""
    add_series_context(table, is_eth, ETH_FEATURES)
    add_series_context(table, is_btc, BTC_EXTRA)
    t = table["timestamp"].astype("int64").to_numpy()
    sym = table["symbol"].cat.codes.to_numpy()
    funding = table["funding_bp"].to_numpy()
    hot = np.where(np.isnan(funding), np.nan, (funding > HOT_FUNDING_BP).astype("float64"))
    table["breadth_hot_funding_share"] = mean_of_others(t, sym, hot)
    table["breadth_oi_change_24h"] = mean_of_others(t, sym, table["oi_change_24h"].to_numpy())
    surprise = table["liq_surprise_24h"].to_numpy()
    table["breadth_liq_surprise_mean_24h"] = mean_of_others(t, sym, surprise)
    table["breadth_liq_surprise_max_24h"] = _max_of_others(t, sym, surprise)


def _per_symbol(t: np.ndarray, sym: np.ndarray, x: np.ndarray) -> pd.DataFrame:
    """One value per (bar, symbol): the mean over the symbol's venues (NaN if none known)."""
    frame = pd.DataFrame({"t": t, "sym": sym, "x": x})
    return frame.groupby(["t", "sym"], sort=False)["x"].mean().reset_index()


def mean_of_others(t: np.ndarray, sym: np.ndarray, x: np.ndarray) -> np.ndarray:
    """At each row, the mean of `x` over the other symbols known at the same bar."""
    per = _per_symbol(t, sym, x)
    known = per["x"].notna()
    grouped = per["x"].groupby(per["t"])
    total, count = grouped.transform("sum"), grouped.transform("count")
    with np.errstate(divide="ignore", invalid="ignore"):
        others = (total - per["x"].fillna(0.0)) / (count - known).where(count - known > 0)
    return _back(t, sym, per, others.to_numpy(dtype="float64"))


def _max_of_others(t: np.ndarray, sym: np.ndarray, x: np.ndarray) -> np.ndarray:
    """At each row, the largest `x` over the other symbols known at the same bar."""
    per = _per_symbol(t, sym, x).dropna(subset=["x"])
    ranked = per.sort_values(["t", "x"], ascending=[True, False], kind="stable")
    top = ranked.groupby("t").nth(0).set_index("t")
    second = ranked.groupby("t").nth(1).set_index("t")
    frame = _per_symbol(t, sym, x)
    first_x = top["x"].reindex(frame["t"]).to_numpy()
    first_sym = top["sym"].reindex(frame["t"]).to_numpy()
    second_x = second["x"].reindex(frame["t"]).to_numpy()
    others = np.where(first_sym == frame["sym"].to_numpy(), second_x, first_x)
    return _back(t, sym, frame, others.astype("float64"))


def _back(t: np.ndarray, sym: np.ndarray, per: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Per-(bar, symbol) values back onto the table's rows."""
    index = pd.MultiIndex.from_arrays([per["t"].to_numpy(), per["sym"].to_numpy()])
    lookup = pd.Series(values, index=index)
    return lookup.reindex(pd.MultiIndex.from_arrays([t, sym])).to_numpy(dtype="float64")
