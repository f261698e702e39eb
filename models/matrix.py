"""The model matrix: what every learner reads, in training, in the walk-forward and in serving.

Plain float64, one row per (symbol, bar): the registry features in the bundle's order, then
(for a model trained on stores of several bar sizes) the row's bar size in hours, then the
symbol as an integer code of the training symbols (NaN for a symbol never trained on, which
LightGBM sends down its "other" branch). One numpy layout for every path means the service
scores exactly what was evaluated, without a pandas round trip per request.

The bar size is built here, not by the feature code: it is not read from the market but is
what the rows were built at, so the training table carries it per row (stores of several bar
sizes) and everything else (the service, the report, the notebook API, the live page) gets it
from the bundle, which serves one bar size.
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
in hours (a column of the training table; a bundle fills it with the bar it serves)."""
BAR_HOURS_DESCRIPTION = (
    "The bar size, in hours, of the bars this row was built from (the model learned from "
    "stores of several bar sizes, and serves the one it was tested on)."
)


def columns(features: Sequence[str], bar_input: bool = False) -> list[str]:
    """Model input column names: the features, the bar size if it is an input, the symbol.

    A training table of several bar sizes lists `bar_hours` among its features already (its
    own column per row); a bundle lists registry features only and says `bar_input`.
    """
    return [*features, *([BAR_HOURS] if bar_input and BAR_HOURS not in features else []), SYMBOL]


def symbol_codes(symbols: Sequence[str], known: Sequence[str]) -> np.ndarray:
    """Float codes of `symbols` in the training symbols `known` (NaN where unknown)."""
    index = {s: float(i) for i, s in enumerate(known)}
    return np.array([index.get(str(s), np.nan) for s in symbols], dtype="float64")


def from_values(
    values: np.ndarray,
    symbols: Sequence[str],
    known: Sequence[str],
    bar_hours: float | np.ndarray | None = None,
) -> np.ndarray:
    """Model matrix from feature values (columns in the bundle's feature order) and symbols;
    with `bar_hours` (one bar size for every row, or one per row), the bar size input too."""
    values = np.asarray(values, dtype="float64")
    if values.ndim != 2 or len(values) != len(symbols):
        raise ValueError(f"feature values {values.shape} do not match {len(symbols)} symbols")
    X = _inputs_after(values.shape[1], symbols, known, bar_hours)
    X[:, : values.shape[1]] = values
    return X


def _inputs_after(
    width: int,
    symbols: Sequence[str],
    known: Sequence[str],
    bar_hours: float | np.ndarray | None,
) -> np.ndarray:
    """A model matrix with the inputs after the `width` feature columns filled in (the bar
    size if given, the symbol code) and the feature columns left for the caller to fill."""
    X = np.empty((len(symbols), width + 1 + (bar_hours is not None)))
    if bar_hours is not None:
        X[:, width] = bar_hours
    X[:, -1] = symbol_codes(symbols, known)
    return X


def model_matrix(
    table: pd.DataFrame,
    features: Sequence[str],
    known: Sequence[str],
    bar_hours: float | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Model matrix from a feature table (extra columns ignored, missing ones an error).

    With `bar_hours` (a model whose inputs include the bar size), each row's bar size is the
    table's `bar_hours` column where it has one (a training table of several bar sizes), else
    `bar_hours`: the bar every row of a feature table built for that model is at. `rows`
    (positions into `table`) takes those rows in that order, one column at a time, so a large
    training table is never copied whole to pick a horizon's labelled rows.
    """
    features = [f for f in features if bar_hours is None or f != BAR_HOURS]
    missing = [c for c in columns(features) if c not in table.columns]
    if missing:
        raise KeyError(f"feature table lacks model input column(s) {missing}")
    take = slice(None) if rows is None else rows
    bars: float | np.ndarray | None = bar_hours
    if bar_hours is not None and BAR_HOURS in table.columns:
        bars = table[BAR_HOURS].to_numpy(dtype="float64")[take]
    symbols = table[SYMBOL].astype(str).to_numpy()[take]
    X = _inputs_after(len(features), symbols, known, bars)
    # Column by column into the matrix: no second copy of every row (a large store's peak).
    for j, name in enumerate(features):
        X[:, j] = table[name].to_numpy(dtype="float64")[take]
    return X
