"""Whether a model applies to some bars: one rule for the Python API, the CLI and the service.

A bundle records the bar size it was trained on and how many bars of history its features
read (`Bundle.max_lookback`). Bars of another size would make every window feature describe
another time span, and a shorter history silently changes the long-window ones, so both are
refused wherever a bundle meets data: `FlushForecaster.predict`/`explain` (notebooks),
`flushcast report` and `GET /report`, and `/predict` (which names the JSON field). A symbol the
model never saw is scored as "unknown" and the answer says so. Each check returns the problem in
words (None when there is none); the caller raises it in its own error type.
"""

from __future__ import annotations

import pandas as pd

HOUR = pd.Timedelta("1h")


def duration(step: pd.Timedelta) -> str:
    """A bar size as people write it: "4 h", "24 h", "5 min"."""
    if step >= HOUR:
        return f"{step / HOUR:g} h"
    return f"{step / pd.Timedelta('1min'):g} min"


def bar_problem(data_bar: pd.Timedelta, model_bar: pd.Timedelta) -> str | None:
    """Bars of another size than the model's: their features would describe other spans."""
    if data_bar == model_bar:
        return None
    return (
        f"bars are {duration(data_bar)} apart; the model was trained on {duration(model_bar)} bars"
    )


def history_problem(symbol: str, bars: int, needed: int, bar: pd.Timedelta) -> str | None:
    """Fewer bars of a series than the model's features read, ending at the bar to predict."""
    if bars >= needed:
        return None
    return (
        f"{symbol} has {bars} bars; the model needs at least {needed} {duration(bar)} bars "
        "ending at the bar to predict"
    )


def unknown_symbol(symbol: str) -> str:
    """The flag on an answer for a symbol the pooled model never saw."""
    return f"symbol {symbol} was not in the training data; the model treats it as unknown"
