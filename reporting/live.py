"""The report's "how the live forecasts did" section, from a monitoring report.

`live.monitor` joins the service's prediction log with the labels as they mature; this turns
its report into what the template shows: per horizon the matured predictions, live Brier and ECE
beside the walk-forward's, a reliability plot of the live predictions, and the features that
drifted most. Shown only when a log exists (the CLI's `--live`, the service's live folder).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from flushcast.reporting import charts
from flushcast.training.plots import reliability_plot

DRIFT_SHOWN = 8


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def live_section(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """Template values for the section; None (no section) without a report."""
    if report is None:
        return None
    rows = [
        {
            "horizon": h["horizon_hours"],
            "predictions": h["predictions"],
            "matured": h["matured"],
            "flushes": h["flushes"],
            "cells": [
                f"{_fmt(h[m])} / {_fmt(h['walk_forward'].get(m))}"
                for m in ("brier", "brier_skill", "ece")
            ],
        }
        for h in report["horizons"]
    ]
    curves = {
        f"{h['horizon_hours']} h (live)": pd.DataFrame(h["reliability"])
        for h in report["horizons"]
        if h["reliability"]
    }
    chart = None
    if curves:
        chart = charts.data_uri(reliability_plot(curves, "Reliability of the live forecasts"))
    drift = [
        {"feature": d["feature"], "psi": _fmt(d["psi"]), "level": d["level"]}
        for d in report["drift"][:DRIFT_SHOWN]
    ]
    return {
        "rows": rows,
        "chart": chart,
        "drift": drift,
        "window": report["drift_window"],
        "notes": report["notes"],
        "model_version": report["model_version"],
    }
