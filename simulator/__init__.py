"""Mechanistic perpetual-futures market simulator: liquidation cascades emerge from leverage.

    from flushcast.simulator import simulate
    result = simulate("default", ["BTCUSDT", "ETHUSDT"], days=180, seed=7)
    result.frame      # canonical hourly frame, venue "sim" (bar="4h" / "1d" aggregates it)
    result.cascades   # ground-truth cascade log
    result.truth      # per symbol and hour: the true hazard and liquidation notional near price
    result.write("demo-store")

Heavy modules (numba) load on first use, so importing the package is cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flushcast.simulator.config import ScenarioConfig
    from flushcast.simulator.simulate import BARS, VENUE, SimResult, simulate

__all__ = ["BARS", "VENUE", "ScenarioConfig", "SimResult", "simulate"]


def __getattr__(name: str) -> Any:
    if name == "ScenarioConfig":
        from flushcast.simulator.config import ScenarioConfig

        return ScenarioConfig
    if name in ("BARS", "VENUE", "SimResult", "simulate"):
        module = importlib.import_module("flushcast.simulator.simulate")
        # Importing the submodule binds `simulator.simulate` to it; the function is meant. (So
        # code outside the package imports these names from here, never from the submodule.)
        globals().update(
            BARS=module.BARS,
            VENUE=module.VENUE,
            SimResult=module.SimResult,
            simulate=module.simulate,
        )
        return globals()[name]
    raise AttributeError(name)
