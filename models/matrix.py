"""The model matrix: what every learner reads, in training, in the walk-forward and in serving.

Plain float64, one row per (symbol, bar): the registry features in the bundle's order, then the
symbol as an integer code of the training symbols (NaN for a symbol never trained on, which
LightGBM sends down its "other" branch). One numpy layout for every path means the service
scores exactly what was evaluated, without a pandas round trip per request.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SYMBOL = "symbol"
"""The non-registry model input of every model: symbols are pooled, with the symbol as a
categorical."""
BAR_HOURS = "bar_hours"
"""A non-registry input of models trained on stores of several bar sizes: each row's bar size
in hours (a column of the training table, listed among the bundle's features)."""


def columns(features: Sequence[str]) -> list[str]:
    """Model input column names: the features, then the symbol."""
    return [*features, SYMBOL]


def symbol_codes(symbols: Sequence[str], known: Sequence[str]) -> np.ndarray:
    """Float codes of `symbols` in the training symbols `known` (NaN where unknown)."""
    index = {s: float(i) for i, s in enumerate(known)}
    return np.array([index.get(str(s), np.nan) for s in symbols], dtype="float64")


def from_values(values: np.ndarray, symbols: Sequence[str], known: Sequence[str]) -> np.ndarray:
    """Model matrix from feature values (columns in the bundle's feature order) and symbols."""
    values = np.asarray(values, dtype="float64")
    if values.ndim != 2 or len(values) != len(symbols):
        raise ValueError(f"feature values {values.shape} do not match {len(symbols)} symbols")
    X = np.empty((len(values), values.shape[1] + 1))
    X[:, :-1] = values
    X[:, -1] = symbol_codes(symbols, known)
    return X


def model_matrix(table: pd.DataFrame, features: Sequence[str], known: Sequence[str]) -> np.ndarray:
    """Model matrix from a feature table (extra columns ignored, missing ones an error)."""
    missing = [c for c in columns(features) if c not in table.columns]
    if missing:
        raise KeyError(f"feature table lacks model input column(s) {missing}")
    values = table[list(features)].to_numpy(dtype="float64")
    return from_values(values, table[SYMBOL].astype(str).to_numpy(), known)
