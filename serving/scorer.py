"""The service's view of a bundle: model matrices and per-horizon scores, on the bundle's own
numpy scoring path (the one the walk-forward and `train` use), single-threaded per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.bundle import Bundle


@dataclass(frozen=True)
class Scores:
    """One horizon's outputs for a batch of rows."""

    log_odds: np.ndarray
    p_flush: np.ndarray
    p_long: np.ndarray


class Scorer:
    """Model matrices and scores for a loaded bundle."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.symbols = list(bundle.symbols)
        self.read_as_zero = bundle.read_as_zero()
        """Features a tree split on that were never missing in training: a NaN there is read
        as 0, not as unknown (the service warns)."""

    def knows(self, symbol: str) -> bool:
        return self.bundle.knows(symbol)

    def matrix(self, values: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
        """Model input: the bundle's features (columns of `values`), then the symbol code."""
        return self.bundle.matrix_from(values, list(symbols))

    def scores(self, X: np.ndarray, horizon: int) -> Scores:
        model = self.bundle.horizons[horizon]
        log_odds = model.log_odds(X)
        return Scores(log_odds, model.calibrator.predict(log_odds), model.p_long(X))

    def contributions(self, X: np.ndarray, horizon: int) -> np.ndarray:
        """Exact contributions per input (model column order), then the base value, in log-odds."""
        return self.bundle.horizons[horizon].contributions(X)
