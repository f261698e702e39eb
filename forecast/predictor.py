"""The answer for feature rows of one bundle: probabilities, band, direction, reasons, warnings.

Scores come from the bundle's own numpy scoring path (the one the walk-forward and `train` use),
single-threaded per call, one booster call per model for a whole batch. The service, live
operation, the report and the notebook all answer through this class, so they cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flushcast.features.registry import FEATURES, at_bar, max_lookback
from flushcast.forecast.answer import (
    Contribution,
    Explained,
    Explanation,
    Forecast,
    HorizonExplanation,
    HorizonForecast,
)
from flushcast.forecast.bands import band, describe
from flushcast.forecast.identity import ModelIdentity
from flushcast.forecast.rows import Rows, rows_of_table
from flushcast.models.applicability import unknown_symbol
from flushcast.models.bundle import SYMBOL, Bundle


@dataclass(frozen=True)
class Scores:
    """One horizon's outputs for a batch of rows."""

    log_odds: np.ndarray
    p_flush: np.ndarray
    p_long: np.ndarray


class Predictor:
    """Answers feature rows with one bundle; refuses a bundle the feature code no longer matches.

    `identity`: the registered version (None for a model fitted in a notebook); `promoted`:
    whether it is the registry's champion (every answer of one that is not says so).
    """

    def __init__(
        self, bundle: Bundle, identity: ModelIdentity | None = None, promoted: bool = True
    ) -> None:
        bundle.check_features(at_bar(bundle.bar), max_lookback(bundle.bar))
        self.bundle = bundle
        self.identity = identity
        self.promoted = promoted
        self.horizons = sorted(bundle.horizons)
        self.columns = bundle.columns
        self.symbols = list(bundle.symbols)
        self.symbol_column = self.columns.index(SYMBOL)
        self.read_as_zero = bundle.read_as_zero()
        """Features a tree split on that were never missing in training: a NaN there is read
        as 0, not as unknown (the answer warns)."""
        self.band_words = describe()
        """The risk bands' edges in words (the report prints them)."""
        self.descriptions = bundle.input_descriptions(FEATURES)

    # -- scores ------------------------------------------------------------------------------

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

    # -- answers -----------------------------------------------------------------------------

    def table_predictions(self, table: pd.DataFrame, explain: bool, top_k: int) -> list[Forecast]:
        """Every horizon for every row of a feature table (the report's path)."""
        return self.predictions(rows_of_table(table, self.bundle.features), explain, top_k)

    def predictions(self, rows: Rows, explain: bool, top_k: int) -> list[Forecast]:
        """Every horizon for every row, one booster call per model for the whole batch."""
        X = self.matrix(rows.values, rows.symbols)
        per_horizon = []
        for h in self.horizons:
            scores = self.scores(X, h)
            base_rate = self.bundle.horizons[h].base_rate
            explanations = self._top(X, rows, h, top_k) if explain else [None] * len(X)
            per_horizon.append(
                [
                    HorizonForecast(
                        horizon_hours=h,
                        p_flush=p,
                        risk_band=band(p, base_rate),
                        relative_risk=p / base_rate,
                        base_rate=base_rate,
                        p_long_flush=p_long,
                        p_short_squeeze=1.0 - p_long,
                        explanation=explanation,
                    )
                    for p, p_long, explanation in zip(
                        scores.p_flush.tolist(), scores.p_long.tolist(), explanations, strict=True
                    )
                ]
            )
        warnings = self.warnings(rows)
        return [
            Forecast(
                symbol=rows.symbols[i],
                venue=rows.venues[i],
                as_of=rows.as_of[i],
                horizons=[column[i] for column in per_horizon],
                warnings=warnings[i],
            )
            for i in range(len(X))
        ]

    def explain(self, rows: Rows, horizons: Sequence[int] | None = None) -> Explained:
        """Every input's contribution to the first row's score at each of `horizons` (all)."""
        X = self.matrix(rows.values, rows.symbols)
        explained = []
        for h in self.horizons if horizons is None else horizons:
            contributions = self.contributions(X, h)[0].tolist()
            log_odds = sum(contributions)
            explained.append(
                HorizonExplanation(
                    horizon_hours=h,
                    base_value=contributions[-1],
                    log_odds=log_odds,
                    p_uncalibrated=1.0 / (1.0 + math.exp(-log_odds)),
                    p_flush=float(self.scores(X, h).p_flush[0]),
                    contributions=[
                        self._contribution(rows.symbols[0], X[0].tolist(), j, c)
                        for j, c in enumerate(contributions[:-1])
                    ],
                )
            )
        return Explained(
            symbol=rows.symbols[0],
            venue=rows.venues[0],
            as_of=rows.as_of[0],
            horizons=explained,
            warnings=self.warnings(rows)[0],
        )

    def warnings(self, rows: Rows) -> list[list[str]]:
        """Per row: input notes, an unknown symbol, and which features were missing."""
        missing = np.isnan(rows.values)
        by_pattern: dict[bytes, list[str]] = {}  # a batch has few distinct missing patterns
        out = []
        for i, symbol in enumerate(rows.symbols):
            notes = [*self.model_notes(), *rows.notes[i]]
            if not self.knows(symbol):
                notes.append(unknown_symbol(symbol))
            pattern = missing[i].tobytes()
            if pattern not in by_pattern:
                by_pattern[pattern] = self._missing(missing[i])
            out.append(notes + by_pattern[pattern])
        return out

    def model_notes(self) -> list[str]:
        """What every answer of this model says about the model itself: not the champion."""
        if self.promoted:
            return []
        version = self.identity.model_version if self.identity else "(unregistered)"
        return [
            f"model version {version} is not promoted: it has not passed the promotion gate "
            f"(see why with `flushcast promote {version}`); served by request, not as the champion"
        ]

    def _missing(self, missing: np.ndarray) -> list[str]:
        features = self.bundle.features
        nan = [features[j] for j in np.flatnonzero(missing)]
        notes = []
        if nan:
            notes.append(f"{len(nan)} of {len(features)} features missing: {', '.join(nan)}")
        as_zero = [name for name in nan if name in self.read_as_zero]
        if as_zero:
            notes.append(
                f"never missing in training, so the model reads them as 0: {', '.join(as_zero)}"
            )
        return notes

    def _top(self, X: np.ndarray, rows: Rows, horizon: int, k: int) -> list[Explanation]:
        contributions = self.contributions(X, horizon)
        order = np.argsort(-np.abs(contributions[:, :-1]), axis=1, kind="stable")[:, :k]
        values = X.tolist()
        return [
            Explanation(
                base_value=c[-1],
                log_odds=sum(c),
                top=[self._contribution(rows.symbols[i], values[i], j, c[j]) for j in top],
            )
            for i, (c, top) in enumerate(zip(contributions.tolist(), order.tolist(), strict=True))
        ]

    def _contribution(
        self, symbol: str, values: list[float], j: int, contribution: float
    ) -> Contribution:
        """Input j of a row (`values` as model input) with its contribution and description."""
        value: float | str | None = values[j]
        if j == self.symbol_column:
            value = symbol
        elif value != value:  # NaN: the input was missing
            value = None
        return Contribution(
            feature=self.columns[j],
            value=value,
            contribution=contribution,
            description=self.descriptions[j],
        )
