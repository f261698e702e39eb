"""flushcast: forecasts and explains crypto liquidation cascades.

The notebook API (imported on first use, so `import flushcast` stays fast):

    import flushcast as fc
    market = fc.simulate(["BTCUSDT", "ETHUSDT"], days=180, seed=7)
    model = fc.FlushForecaster(horizons=[4, 12]).fit(market)
    model.predict(market.tail(2000))          # p_flush_<H>h and direction, per bar
    result = fc.backtest(model, market, cv=fc.WalkForward(retrain_every_hours=168))
    result.metrics()                           # horizon × model, pooled and within folds
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flushcast.api import (
        build_features,
        describe,
        load_market,
        make_labels,
        plot_heatmap,
        read_export,
        render_report,
        simulate,
    )
    from flushcast.training.backtest import Backtest, backtest
    from flushcast.training.config import TrainingConfig
    from flushcast.training.forecaster import FlushForecaster
    from flushcast.training.labels import LabelSpec
    from flushcast.training.splits import WalkForward

_EXPORTS = {
    "simulate": "flushcast.api",
    "load_market": "flushcast.api",
    "read_export": "flushcast.api",
    "make_labels": "flushcast.api",
    "build_features": "flushcast.api",
    "describe": "flushcast.api",
    "plot_heatmap": "flushcast.api",
    "render_report": "flushcast.api",
    "FlushForecaster": "flushcast.training.forecaster",
    "backtest": "flushcast.training.backtest",
    "Backtest": "flushcast.training.backtest",
    "WalkForward": "flushcast.training.splits",
    "TrainingConfig": "flushcast.training.config",
    "LabelSpec": "flushcast.training.labels",
}
__all__ = [
    "Backtest",
    "FlushForecaster",
    "LabelSpec",
    "TrainingConfig",
    "WalkForward",
    "backtest",
    "build_features",
    "describe",
    "load_market",
    "make_labels",
    "plot_heatmap",
    "read_export",
    "render_report",
    "simulate",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'flushcast' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
