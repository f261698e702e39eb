"""Window primitives shared by the families, on one series laid on its full bar grid.

Gap bars are NaN in the inputs; every primitive keeps NaN as NaN (no filling), so a value that
would need a missing bar is missing rather than invented.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def lag(x: np.ndarray, n: int) -> np.ndarray:
    """`x` shifted n bars into the past (NaN where there is no bar n back)."""
    out = np.full_like(x, np.nan, dtype="float64")
    if n < len(x):
        out[n:] = x[: len(x) - n]
    return out


def change_pct(x: np.ndarray, n: int) -> np.ndarray:
    """Percent change over n bars: 100 * (x[t] / x[t-n] - 1)."""
    prev = lag(x, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 * (x / prev - 1.0)
    out[~np.isfinite(out)] = np.nan
    return out


def _min_periods(n: int) -> int:
    # Half the window must be present: enough for a stable statistic, tolerant of short gaps.
    return max(2, n // 2) if n > 1 else 1


def rolling(x: np.ndarray, n: int, min_periods: int | None = None):
    """pandas Rolling over the last n bars (the current one included)."""
    mp = _min_periods(n) if min_periods is None else min_periods
    return pd.Series(x, copy=False).rolling(n, min_periods=mp)


def rolling_sum_strict(x: np.ndarray, n: int) -> np.ndarray:
    """Sum over the last n bars; NaN unless every one of them is present."""
    return rolling(x, n, min_periods=n).sum().to_numpy()


def zscore(x: np.ndarray, n: int) -> np.ndarray:
    """(x - mean) / std over the trailing n bars including the current one.

    A flat window (funding pinned at the 1 bp floor for weeks is common) has no spread; it
    scores 0, not a huge number made of floating-point noise.
    """
    r = rolling(x, n)
    mean = r.mean().to_numpy()
    std = r.std().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - mean) / std
    flat = std <= 1e-9 * (np.abs(mean) + 1e-12)
    z[flat & np.isfinite(x) & np.isfinite(mean)] = 0.0
    z[~np.isfinite(z) & ~flat] = np.nan
    return z


def safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b with NaN where b is 0 or either side is missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(a, dtype="float64") / np.asarray(b, dtype="float64")
    out[~np.isfinite(out)] = np.nan
    return out


def bars_since(event: np.ndarray, cap: int) -> np.ndarray:
    """Bars since the last True in `event` (0 at the event), capped at `cap`.

    "No event within cap bars" and "no event ever" both read as `cap`, so the value depends
    only on the last cap + 1 bars.
    """
    idx = np.arange(len(event))
    last = np.maximum.accumulate(np.where(event, idx, -1))
    out = (idx - last).astype("float64")
    out[(last < 0) | (out > cap)] = cap
    return out
