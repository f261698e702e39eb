"""The bundle's boosters on plain float matrices: the per-request path without pandas.

`Bundle.predict` builds a DataFrame with a categorical symbol and LightGBM re-encodes it on
every call, about a millisecond per booster for one row, while the trees themselves take tens of
microseconds. Here the symbol is encoded once, with the booster's own training categories (what
LightGBM's pandas path does), so results are identical and a test holds the two paths equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from models.bundle import Bundle, BundleMismatch, HorizonModels

THREADS = 1
"""Per model call: a server gets its parallelism from workers, and OpenMP threads contending
with them for two cores would only add spin-waits."""


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
        boosters = [
            fitted.booster
            for models in bundle.horizons.values()
            for fitted in (models.flush, models.direction)
            if fitted is not None
        ]
        for booster in boosters:
            if booster.feature_name() != bundle.columns:
                raise BundleMismatch("a booster's input columns differ from the bundle's")
        categories = {tuple(b.pandas_categorical[0]) for b in boosters if b.pandas_categorical}
        if len(categories) != 1:
            raise BundleMismatch(f"boosters disagree on symbol categories: {sorted(categories)}")
        self.symbols = list(categories.pop())
        self._codes = {symbol: float(i) for i, symbol in enumerate(self.symbols)}
        flush = [m.flush.booster for m in bundle.horizons.values()]
        never = set().union(*(_never_missing(booster) for booster in flush))
        self.read_as_zero = {bundle.columns[i] for i in never} & set(bundle.features)
        """Features never missing in a flush model's training rows: LightGBM reads NaN there as
        0, not as unknown (the direction models may differ)."""

    def knows(self, symbol: str) -> bool:
        return symbol in self._codes

    def matrix(self, values: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
        """Model input: the bundle's features (columns of `values`), then the symbol code.

        A symbol never trained on becomes missing, LightGBM's "other" branch, as in training.
        """
        X = np.empty((len(symbols), len(self.bundle.columns)))
        X[:, :-1] = values
        X[:, -1] = [self._codes.get(s, np.nan) for s in symbols]
        return X

    def scores(self, X: np.ndarray, horizon: int) -> Scores:
        models: HorizonModels = self.bundle.horizons[horizon]
        log_odds = models.flush.booster.predict(X, raw_score=True, num_threads=THREADS)
        p_long = np.full(len(X), 0.5)
        if models.direction is not None:
            raw = models.direction.booster.predict(X, raw_score=True, num_threads=THREADS)
            p_long = models.direction.calibrator.predict(raw)
        return Scores(log_odds, models.flush.calibrator.predict(log_odds), p_long)

    def contributions(self, X: np.ndarray, horizon: int) -> np.ndarray:
        """Exact TreeSHAP per input (model column order), then the base value, in log-odds."""
        booster = self.bundle.horizons[horizon].flush.booster
        return booster.predict(X, pred_contrib=True, num_threads=THREADS)


def _never_missing(booster: lgb.Booster) -> set[int]:
    """Columns split on with missing type "None": no NaN was seen there in training."""
    found: set[int] = set()
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            if node["missing_type"] == "None":
                found.add(node["split_feature"])
            stack += [node["left_child"], node["right_child"]]
    return found
