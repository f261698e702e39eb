"""Relative (cross-sectional) features: how a symbol stands against the rest of the market.

A week's flushes are often market-wide, but which coins flush hardest is not: the coin whose
liquidations, OI build-up or volatility run ahead of the others' at the same bar is the one
whose own threshold (docs/label.md: its liquidations against its own trailing median) is most
likely to be crossed. The small trees (4 leaves) cannot form a difference between a row and
the other symbols' rows, so it is given to them: each column here is a symbol's own feature
minus the mean of the same feature over the other symbols known at the same bar (ratios on a
log scale first). It is read with the breadth family's machinery and under its discipline:
one bar size per frame, so every other series' bar t closed when this one did; the own symbol
left out on every venue; a symbol without the bar, or without the value, is not read. A store
of one symbol has no relative features (missing, learned as unknown).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from flushcast.features.breadth import mean_of_others
from flushcast.features.spec import Feature

FAMILY = "relative"

RELATIVE: dict[str, tuple[str, bool]] = {
    "rel_liq_surprise_4h": ("liq_surprise_4h", True),
    "rel_liq_surprise_24h": ("liq_surprise_24h", True),
    "rel_liq_z_30d": ("liq_z_30d", False),
    "rel_oi_change_24h": ("oi_change_24h", False),
    "rel_oi_change_72h": ("oi_change_72h", False),
    "rel_atr_ratio_24h_168h": ("atr_ratio_24h_168h", False),
    "rel_return_24h": ("return_24h", False),
}
"""Each column: (the own feature it compares, whether it is a ratio compared as log(1 + x)).
Chosen on the first half of the shared daily set's span only (single-signal ranking within
weekly blocks; docs/features.md), never on the test blocks the ablation reports."""

SPECS: tuple[Feature, ...] = ()
"""No per-series columns: `relative_specs` derives the entries from the features compared
(their windows, lookbacks and inputs), and `add_relative` fills them across series."""


def relative_specs(source: dict[str, Feature]) -> tuple[Feature, ...]:
    """Registry entries of the relative columns, derived from the features they compare."""
    out = []
    for name, (base, logged) in RELATIVE.items():
        spec = source[base]
        what = f"log(1 + {base})" if logged else base
        unit = "log ratio" if logged else spec.unit
        text = (
            f"This symbol's {what} minus the mean of the other symbols' at the same bar "
            f"(above 0: ahead of the market). {base}: {spec.description[0].lower()}"
            f"{spec.description[1:]}"
        )
        out.append(replace(spec, name=name, family=FAMILY, unit=unit, description=text))
    return tuple(out)


def compute(_grid) -> dict[str, np.ndarray]:
    """Nothing per series: relative features need every series at once (`add_relative`)."""
    return {}


def add_relative(table: pd.DataFrame) -> None:
    """Fill the relative columns of a feature table in place (one bar size, any symbols)."""
    t = table["timestamp"].astype("int64").to_numpy()
    sym = table["symbol"].cat.codes.to_numpy()
    for name, (base, logged) in RELATIVE.items():
        x = table[base].to_numpy(dtype="float64")
        if logged:
            with np.errstate(invalid="ignore"):
                x = np.log1p(np.where(x >= 0, x, np.nan))
        table[name] = x - mean_of_others(t, sym, x)
