"""Stylized facts of a canonical market frame: ONE definition for simulated and real data.

Every fact is scale-free (returns in units of the series' own volatility, liquidations as a
share of OI or of their own trailing median) so a $1e9 simulated SOL and a vendor's BTC export
are compared on the same footing. `TOLERANCES` brackets what the real samples show, wide enough
for a two-month sample and tight enough that a random walk, or a market without leverage,
fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPIKE_MULTIPLE = 10.0
"""An hour's liquidations are a spike above this multiple of their trailing 7-day median."""
TAIL_Z = 2.5
"""A 'large move' hour: |return| above this many standard deviations."""
CASCADE_Z = 2.0
CASCADE_MERGE_HOURS = 6

TOLERANCES: dict[str, tuple[float, float]] = {
    "return_kurtosis": (4.0, 40.0),
    "tail_share_3sd": (0.008, 0.04),
    "liq_spike_share": (0.015, 0.12),
    "liq_oi_p99": (5e-4, 8e-3),
    "long_share_down": (0.7, 1.0),
    "long_share_up": (0.0, 0.3),
    "oi_change_sd": (0.004, 0.03),
    "oi_change_kurtosis": (4.0, 60.0),
    "cascades_per_30d": (2.0, 16.0),
    "funding_median": (0.0, 0.0002),
    "funding_p99": (0.0003, 0.003),
    "funding_autocorr": (0.5, 0.97),
}
FUNDING_FACTS = ("funding_median", "funding_p99", "funding_autocorr")


def _series_facts(g: pd.DataFrame) -> dict[str, float]:
    g = g.sort_values("timestamp")
    r = np.log(g["close"]).diff()
    z = r / r.std()
    facts: dict[str, float] = {
        "return_kurtosis": float(r.kurt()),
        "tail_share_3sd": float((z.abs() > 3).mean()),
    }
    liq_l = g["liq_long_usd"]
    liq = liq_l + g["liq_short_usd"]
    if liq.notna().any():
        trailing = liq.rolling(168, min_periods=24).median().shift()
        spike = (liq > SPIKE_MULTIPLE * trailing) & (liq > 0)
        big_down = z < -TAIL_Z
        big_up = z > TAIL_Z
        facts |= {
            "liq_spike_share": float(spike[trailing.notna()].mean()),
            "liq_oi_p99": float((liq / g["oi_usd"]).quantile(0.99)),
            # Large down hours should be long flushes, large up hours short squeezes.
            "long_share_down": float(liq_l[big_down].sum() / liq[big_down].sum()),
            "long_share_up": float(liq_l[big_up].sum() / liq[big_up].sum()),
            "cascades_per_30d": _cascades(spike & (z.abs() > CASCADE_Z)) / len(g) * 720,
        }
    if g["oi_usd"].notna().any():
        d_oi = np.log(g["oi_usd"]).diff()
        facts |= {"oi_change_sd": float(d_oi.std()), "oi_change_kurtosis": float(d_oi.kurt())}
    facts |= funding_facts(g.set_index("timestamp")["funding_rate"])
    return facts


FLUSH_SPIKE_MULTIPLE = 5.0
"""A flush bar: liquidations above this multiple of their trailing 30-day median..."""
FLUSH_SIDE_SHARE = 2 / 3
"""...and at least this share of them on one side (longs: long flush; shorts: short squeeze)."""

FLUSH_TOLERANCES: dict[str, dict[str, tuple[float, float]]] = {
    "1h": {
        "liq_p99_over_median": (10.0, 80.0),
        "flush_share": (0.05, 0.25),
        "oi_change_long_flush": (-2.0, -0.3),
        "oi_change_short_squeeze": (0.2, 2.0),
    },
    "4h": {
        "liq_p99_over_median": (8.0, 25.0),
        "flush_share": (0.03, 0.14),
        "oi_change_long_flush": (-2.5, -0.5),
        "oi_change_short_squeeze": (0.2, 2.0),
        "funding_reversal": (0.05, 1.0),
        "funding_reversal_share": (0.55, 0.85),
    },
    "1d": {
        "liq_p99_over_median": (7.0, 80.0),
        "flush_share": (0.015, 0.12),
        "oi_change_long_flush": (-5.0, -0.4),
        "funding_reversal": (0.05, 1.0),
        "funding_reversal_share": (0.55, 0.95),
    },
}
"""Facts of flush bars by bar size (`flush_facts`), bracketing the real sets: Coinalyze hourly,
CoinGlass API 4 h snapshots, a daily CoinGlass export (see docs/simulator_calibration.md)."""


def flush_facts(frame: pd.DataFrame, bar: str) -> pd.DataFrame:
    """Price-free facts of flush bars, one row per (symbol, venue), at bar size `bar`.

    Needs liquidations and OI (funding where present); no price, so vendor sets that carry
    only liquidations, OI and funding can be compared. OI changes are in units of the series'
    own sd of bar-to-bar log OI changes; the funding reversal is how far funding moved against
    the flushed side from the bar before a flush to a day after it, in sd of daily changes.
    """
    per_day = {"1h": 24, "4h": 6, "1d": 1}[bar]
    rows = {
        (str(symbol), str(venue)): _flush_facts(g.sort_values("timestamp"), per_day)
        for (symbol, venue), g in frame.groupby(["symbol", "venue"], observed=True)
    }
    facts = pd.DataFrame.from_dict(rows, orient="index").reindex(
        columns=list(FLUSH_TOLERANCES["4h"])
    )
    facts.index = facts.index.set_names(["symbol", "venue"])
    return facts


def _flush_facts(g: pd.DataFrame, per_day: int) -> dict[str, float]:
    liq = g["liq_long_usd"] + g["liq_short_usd"]
    share = liq / g["oi_usd"]
    trailing = liq.rolling(30 * per_day, min_periods=7 * per_day).median().shift()
    known = trailing.notna()
    spike = (liq > FLUSH_SPIKE_MULTIPLE * trailing) & known
    longs = g["liq_long_usd"] / liq
    side = np.where(longs >= FLUSH_SIDE_SHARE, 1, np.where(longs <= 1 - FLUSH_SIDE_SHARE, -1, 0))
    d_oi = np.log(g["oi_usd"]).diff()
    d_oi = d_oi / d_oi.std()
    facts = {
        "liq_p99_over_median": float(share.quantile(0.99) / share.median()),
        "flush_share": float((spike & (side != 0))[known].mean()),
        "oi_change_long_flush": float(d_oi[spike & (side == 1)].median()),
        "oi_change_short_squeeze": float(d_oi[spike & (side == -1)].median()),
    }
    funding = g["funding_rate"] if "funding_rate" in g else pd.Series(np.nan, index=g.index)
    if funding.notna().any():
        flush = spike & (side != 0)
        later = funding.shift(-per_day) - funding.shift(1)
        reversal = (-side * later)[flush] / funding.diff(per_day).std()
        reversal = reversal.dropna()
        facts |= {
            "funding_reversal": float(reversal.median()),
            "funding_reversal_share": float((reversal > 0).mean()),
        }
    return facts


def _cascades(flags: pd.Series) -> int:
    """Flagged hours, merged into one event when less than CASCADE_MERGE_HOURS apart."""
    idx = np.flatnonzero(flags.to_numpy())
    if idx.size == 0:
        return 0
    return int(1 + (np.diff(idx) > CASCADE_MERGE_HOURS).sum())


def funding_facts(rate: pd.Series) -> dict[str, float]:
    """Funding facts on one value per 8-hour settlement window (rates are held between)."""
    rate = rate.dropna()
    if rate.empty:
        return {}
    settled = rate.groupby(rate.index.floor("8h")).last()
    return {
        "funding_median": float(settled.median()),
        "funding_p99": float(settled.quantile(0.99)),
        "funding_autocorr": float(settled.autocorr(1)),
    }


def stylized_facts(frame: pd.DataFrame) -> pd.DataFrame:
    """One row of facts per (symbol, venue) series of a canonical frame; NaN where data lacks."""
    rows = {
        (str(symbol), str(venue)): _series_facts(g)
        for (symbol, venue), g in frame.groupby(["symbol", "venue"], observed=True)
    }
    facts = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(TOLERANCES))
    facts.index = facts.index.set_names(["symbol", "venue"])
    return facts


def within_tolerance(
    facts: pd.Series, tolerances: dict[str, tuple[float, float]] = TOLERANCES
) -> pd.Series:
    """For each fact present (not NaN) and bracketed, whether it lies inside its band."""
    present = facts.dropna()
    present = present[present.index.isin(list(tolerances))]
    lo = pd.Series({k: tolerances[k][0] for k in present.index}, dtype=float)
    hi = pd.Series({k: tolerances[k][1] for k in present.index}, dtype=float)
    return (present >= lo) & (present <= hi)


def comparison_table(sim: pd.Series, real: pd.Series) -> pd.DataFrame:
    """Side by side: simulated, real, tolerance band, and whether each side is inside it."""
    table = pd.DataFrame({"simulated": sim, "real": real}).reindex(list(TOLERANCES))
    table["tolerance"] = [f"[{lo:g}, {hi:g}]" for lo, hi in TOLERANCES.values()]
    table["sim_ok"] = within_tolerance(sim).reindex(table.index)
    table["real_ok"] = within_tolerance(real).reindex(table.index)
    return table
