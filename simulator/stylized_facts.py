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


def within_tolerance(facts: pd.Series) -> pd.Series:
    """For each fact present (not NaN), whether it lies inside its tolerance band."""
    present = facts.dropna()
    lo = pd.Series({k: TOLERANCES[k][0] for k in present.index})
    hi = pd.Series({k: TOLERANCES[k][1] for k in present.index})
    return (present >= lo) & (present <= hi)


def comparison_table(sim: pd.Series, real: pd.Series) -> pd.DataFrame:
    """Side by side: simulated, real, tolerance band, and whether each side is inside it."""
    table = pd.DataFrame({"simulated": sim, "real": real}).reindex(list(TOLERANCES))
    table["tolerance"] = [f"[{lo:g}, {hi:g}]" for lo, hi in TOLERANCES.values()]
    table["sim_ok"] = within_tolerance(sim).reindex(table.index)
    table["real_ok"] = within_tolerance(real).reindex(table.index)
    return table
