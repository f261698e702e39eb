"""Feature rows to score: the values in the bundle's feature order and what is known of them.

The service builds them from requests (`serving.inputs`), live operation from its store
(`live.risk`), the report and the notebook from a feature table (`rows_of_table`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd


@dataclass
class Rows:
    """Feature rows to score (bundle feature order) and what the answer says about them."""

    values: np.ndarray
    symbols: list[str]
    venues: list[str]
    as_of: list[datetime | None]
    notes: list[list[str]]
    """Per row: input problems found before scoring (missing columns, gaps)."""


def rows_of_table(table: pd.DataFrame, features: list[str]) -> Rows:
    """Rows of a feature table (`features.build_features` output) as the predictor reads them."""
    return Rows(
        values=table[features].to_numpy(dtype="float64"),
        symbols=table["symbol"].astype(str).tolist(),
        venues=table["venue"].astype(str).tolist(),
        as_of=[stamp.to_pydatetime() for stamp in table["timestamp"]],
        notes=[[] for _ in range(len(table))],
    )
