"""Point-in-time feature builders for flushcast: one module per family, one entry point.

    from features import build_features, build_latest, FEATURES, max_lookback
    table = build_features(market_frame)            # training: every bar
    latest = build_latest(last_window)              # serving: last bar per series
    hm = liquidation_heatmap(one_series_frame)      # the estimated heatmap grid, for plots

Names are imported lazily so `flushcast --help` does not load numba and pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_features": "features.build",
    "build_latest": "features.build",
    "DEFAULT_CONFIG": "features.heatmap",
    "Heatmap": "features.heatmap",
    "HeatmapConfig": "features.heatmap",
    "liquidation_heatmap": "features.heatmap",
    "FEATURES": "features.registry",
    "as_frame": "features.registry",
    "max_lookback": "features.registry",
    "names": "features.registry",
    "Feature": "features.spec",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'features' has no attribute {name!r}")
