"""Point-in-time feature builders for flushcast: one module per family, one entry point.

    from flushcast.features import build_features, build_latest, FEATURES, max_lookback
    table = build_features(market_frame)            # training: every bar
    latest = build_latest(last_window)              # serving: last bar per series
    hm = liquidation_heatmap(one_series_frame)      # the estimated heatmap grid, for plots

Names are imported lazily so `flushcast --help` does not load numba and pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_features": "flushcast.features.build",
    "build_latest": "flushcast.features.build",
    "DEFAULT_CONFIG": "flushcast.features.heatmap",
    "Heatmap": "flushcast.features.heatmap",
    "HeatmapConfig": "flushcast.features.heatmap",
    "liquidation_heatmap": "flushcast.features.heatmap",
    "FEATURES": "flushcast.features.registry",
    "as_frame": "flushcast.features.registry",
    "max_lookback": "flushcast.features.registry",
    "names": "flushcast.features.registry",
    "Feature": "flushcast.features.spec",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'flushcast.features' has no attribute {name!r}")
