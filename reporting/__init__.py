"""Trader reports: one self-contained HTML page per symbol saying how likely a flush is and why.

    from flushcast.reporting import load_predictor, render_report
    predictor, walk_forward = load_predictor("champion")
    html = render_report(predictor, market_frame, "BTCUSDT", walk_forward=walk_forward)

Names are imported lazily so `flushcast --help` does not load pandas, matplotlib or MLflow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ReportError": "flushcast.reporting.build",
    "render_report": "flushcast.reporting.build",
    "report_context": "flushcast.reporting.build",
    "WalkForward": "flushcast.reporting.card",
    "download_walk_forward": "flushcast.reporting.card",
    "load_walk_forward": "flushcast.reporting.card",
    "load_predictor": "flushcast.reporting.registered",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'flushcast.reporting' has no attribute {name!r}")
