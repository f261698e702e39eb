"""Request bodies cut from the sandbox's simulated market."""

from __future__ import annotations

import json
import math

import pandas as pd

from flushcast.features.registry import FEATURES
from flushcast.marketdata.schema import VALUE_COLUMNS


def bars(market: pd.DataFrame, symbol: str, n: int, skip_last: int = 0) -> list[dict]:
    """The last `n` bars of `symbol` (ending `skip_last` bars early) as JSON rows."""
    part = market[market["symbol"] == symbol]
    part = part.iloc[: len(part) - skip_last].tail(n)
    rows = part[["timestamp", *VALUE_COLUMNS]].to_json(orient="records", date_format="iso")
    return json.loads(rows)


def feature_row(table: pd.DataFrame, i: int) -> dict:
    """Row `i` of a feature table as the /predict `features` object (NaN -> null)."""
    row = table.iloc[i]
    return {name: None if math.isnan(row[name]) else float(row[name]) for name in FEATURES}
