"""The baselines every evaluation runs on the same folds as the model.

A model is only worth its complexity if it beats: the base rate (climatology), alerts at random
times (placebo), a transparent rank score a trader could compute by hand (funding heat + OI
build-up + volatility compression), and a linear model on the same features. Each baseline is
fitted on a fold's training rows only and returns probabilities for the test rows.

`X` is a frame with `timestamp` and the feature columns (one row per symbol and bar); `y` the 0/1
labels of the training rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from marketdata.schema import BAR
from training.calibration import Calibrator


class Baseline(Protocol):
    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Baseline: ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


def _labels(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype="float64")
    if len(y) != n or len(y) == 0 or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must be 0/1 labels, one per training row (drop unlabelled rows)")
    return y


@dataclass
class Climatology:
    """The training base rate, pooled over symbols: the forecast that knows only the past rate.

    `window_bars` limits it to the training rows of the last that many bars (a trailing rate);
    None uses every training row (the expanding window's rate up to the fold).
    """

    window_bars: int | None = None
    rate: float = field(default=float("nan"), init=False)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Climatology:
        y = _labels(y, len(X))
        if self.window_bars is not None:
            stamps = pd.DatetimeIndex(X["timestamp"])
            y = y[stamps > stamps.max() - self.window_bars * BAR]
        self.rate = float(y.mean())
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.rate)


def _random_times(X: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """One uniform draw per distinct timestamp, shared by the symbols at that time."""
    codes, uniques = pd.factorize(X["timestamp"])
    return rng.random(len(uniques))[codes]


@dataclass
class RandomPlacebo:
    """Scores drawn at random per bar, calibrated like any score: a random-time alert strategy.

    Its ranking metrics are what chance earns at this base rate; its probabilities sit near the
    training base rate (the calibration of a score that carries no information).
    """

    seed: int = 0
    _calibrator: Calibrator = field(default_factory=lambda: Calibrator("platt"), init=False)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> RandomPlacebo:
        y = _labels(y, len(X))
        rng = np.random.default_rng(self.seed)
        self._calibrator.fit(_random_times(X, rng), y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1])
        return self._calibrator.predict(_random_times(X, rng))


@dataclass
class HeuristicRank:
    """A transparent risk score: the mean percentile of three stress gauges, then calibrated.

    Arguments name feature columns, so any feature set can be plugged in: `funding_heat` (its
    absolute value is ranked: crowding either way feeds a flush), `oi_buildup` (higher = more
    leverage added) and `vol_compression` (higher = calmer than usual; set
    `compression_higher_is_calmer=False` for a column such as a short/long volatility ratio).
    Percentiles are taken against the training rows, never the test rows; a missing value ranks
    in the middle. The score is calibrated on the training rows: it has no parameters fitted to
    the labels, so this is not in-sample overfitting.
    """

    funding_heat: str
    oi_buildup: str
    vol_compression: str
    compression_higher_is_calmer: bool = True
    _reference: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    _calibrator: Calibrator = field(default_factory=Calibrator, init=False, repr=False)

    def _gauges(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        missing = [
            c for c in (self.funding_heat, self.oi_buildup, self.vol_compression) if c not in X
        ]
        if missing:
            raise KeyError(f"heuristic needs feature columns {missing}")
        sign = 1.0 if self.compression_higher_is_calmer else -1.0
        return {
            "funding": np.abs(X[self.funding_heat].to_numpy(dtype="float64")),
            "oi": X[self.oi_buildup].to_numpy(dtype="float64"),
            "calm": sign * X[self.vol_compression].to_numpy(dtype="float64"),
        }

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated rank score in [0, 1] (the mean percentile of the gauges)."""
        ranks = []
        for name, values in self._gauges(X).items():
            reference = self._reference[name]
            rank = np.searchsorted(reference, values, side="right") / max(len(reference), 1)
            ranks.append(np.where(np.isfinite(values), rank, 0.5))
        return np.mean(ranks, axis=0)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> HeuristicRank:
        y = _labels(y, len(X))
        self._reference = {
            name: np.sort(values[np.isfinite(values)]) for name, values in self._gauges(X).items()
        }
        self._calibrator.fit(self.score(X), y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self._calibrator.predict(self.score(X))


@dataclass
class Logistic:
    """L2 logistic regression on the model's features (mean-imputed, standardised).

    Quiet bars beyond `max_negatives` are subsampled and the kept ones weighted up by the
    inverse sampling rate: the fit estimates the same full-data model (its probabilities stay on
    the base-rate scale) at a fraction of the cost, which matters with a hundred folds.
    """

    features: Sequence[str]
    C: float = 1.0
    max_negatives: int = 20_000
    seed: int = 0
    _pipeline: Pipeline | None = field(default=None, init=False, repr=False)
    _constant: float | None = field(default=None, init=False, repr=False)

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        values = X[list(self.features)].to_numpy(dtype="float64")
        return np.where(np.isfinite(values), values, np.nan)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Logistic:
        y = _labels(y, len(X))
        if 0 < y.sum() < len(y):
            self._constant = None
        else:  # one class only: nothing to regress on, the observed rate is the forecast
            self._constant, self._pipeline = float(y.mean()), None
            return self
        self._pipeline = make_pipeline(
            SimpleImputer(strategy="mean", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=200),
        )
        negatives = np.flatnonzero(y == 0)
        weights = np.ones(len(y))
        rows = np.arange(len(y))
        if len(negatives) > self.max_negatives:
            rng = np.random.default_rng(self.seed)
            kept = rng.choice(negatives, self.max_negatives, replace=False)
            rows = np.sort(np.concatenate([np.flatnonzero(y == 1), kept]))
            weights[negatives] = len(negatives) / self.max_negatives
        self._pipeline.fit(
            self._matrix(X.iloc[rows]),
            y[rows].astype(int),
            logisticregression__sample_weight=weights[rows],
        )
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self._constant is not None:
            return np.full(len(X), self._constant)
        if self._pipeline is None:
            raise RuntimeError("Logistic.fit must be called first")
        return self._pipeline.predict_proba(self._matrix(X))[:, 1]
