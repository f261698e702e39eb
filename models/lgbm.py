"""Fitting the LightGBM flush and direction models: one recipe for walk-forward folds and `train`.

Flushes are rare (a few per cent of bars), so class imbalance is handled explicitly by keeping
every positive and a random `negatives_per_positive` share of negatives. That also makes each
fit several times cheaper, which is what lets a walk-forward retrain every week. The model's
scores are then on the balanced scale; the calibrator, fitted on the untouched, time-ordered
validation tail, maps them back to probabilities that verify. Early stopping watches average
ROC-AUC on that tail: a ranking metric, unaffected by the sampling, and less noisy than average
precision when the tail holds few flushes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.calibration import Calibrator

FLUSH_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.5,
    "bagging_freq": 1,
    "extra_trees": True,
    "lambda_l2": 10.0,
    "max_bin": 63,
    "metric": "auc",
    "num_threads": 2,
    "seed": 0,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
}
"""Heavily regularised on purpose: flush bars come in runs (one cascade labels many bars), so
a flexible model memorises episodes; on the simulator, deeper trees with early stopping on
average precision lost to logistic regression out of sample (closing note of #5)."""
DIRECTION_PARAMS: dict[str, Any] = {
    **FLUSH_PARAMS,
    "num_leaves": 7,
    "min_data_in_leaf": 20,
    "extra_trees": False,
    "metric": "binary_logloss",
}


@dataclass(frozen=True)
class FitSpec:
    """Everything about a fit that is not data; recorded with every run."""

    negatives_per_positive: float = 4.0
    min_negatives: int = 5000
    """Small data is not thinned: sampling only starts above this many quiet bars."""
    max_rounds: int = 400
    early_stopping: int = 20
    flush_params: dict[str, Any] = field(default_factory=lambda: dict(FLUSH_PARAMS))
    direction_params: dict[str, Any] = field(default_factory=lambda: dict(DIRECTION_PARAMS))
    min_direction_rows: int = 30
    """Fewer one-sided flushes than this in the fit rows: no direction model (a coin flip)."""
    min_stopping_events: int = 30
    """Fewer events of the rarer class in the validation tail: no early stopping, ..."""
    fixed_rounds: int = 100
    """... `fixed_rounds` trees instead."""

    def to_params(self) -> dict[str, Any]:
        """Flat parameters for MLflow."""
        flat: dict[str, Any] = {
            "fit_negatives_per_positive": self.negatives_per_positive,
            "fit_min_negatives": self.min_negatives,
            "fit_max_rounds": self.max_rounds,
            "fit_early_stopping": self.early_stopping,
            "fit_min_direction_rows": self.min_direction_rows,
            "fit_min_stopping_events": self.min_stopping_events,
            "fit_fixed_rounds": self.fixed_rounds,
        }
        flat.update({f"lgbm_{k}": v for k, v in self.flush_params.items()})
        flat.update(
            {
                f"lgbm_direction_{k}": v
                for k, v in self.direction_params.items()
                if self.flush_params.get(k) != v
            }
        )
        return flat


@dataclass
class Fitted:
    """A booster and the calibrator fitted on its validation scores."""

    booster: lgb.Booster
    calibrator: Calibrator

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities of the positive class."""
        return self.calibrator.predict(self.booster.predict(X, raw_score=True))


def _downsample(y: np.ndarray, ratio: float, seed: int, floor: int) -> np.ndarray:
    """Positions to fit on: all positives and `ratio` negatives per positive, at least `floor`."""
    positives = np.flatnonzero(y == 1)
    negatives = np.flatnonzero(y == 0)
    keep = min(len(negatives), max(int(ratio * len(positives)), floor))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(negatives, size=keep, replace=False) if keep < len(negatives) else negatives
    return np.sort(np.concatenate([positives, chosen]))


def _boost(
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    spec: FitSpec,
) -> lgb.Booster:
    # A leaf must hold ~2 % of the rows, capped by the configured size: the cap regularises
    # large folds, and on two months of real data the cap alone would leave no split at all.
    leaf = min(int(params.get("min_data_in_leaf", 20)), max(20, len(y) // 50))
    params = {**params, "min_data_in_leaf": leaf}
    train = lgb.Dataset(X, y, free_raw_data=True)
    rarer = min(y_val.sum(), len(y_val) - y_val.sum())
    if rarer < spec.min_stopping_events:
        # A handful of held-out events makes the stopping metric noise (on two months of real
        # data it stopped at one tree): a fixed, modest number of rounds instead.
        return lgb.train(params, train, num_boost_round=spec.fixed_rounds)
    valid = lgb.Dataset(X_val, y_val, reference=train)
    return lgb.train(
        params,
        train,
        num_boost_round=spec.max_rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(spec.early_stopping, verbose=False)],
    )


def _calibrated(booster: lgb.Booster, X_val: pd.DataFrame, y_val: np.ndarray) -> Calibrator:
    scores = booster.predict(X_val, raw_score=True, num_iteration=booster.best_iteration or None)
    return Calibrator().fit(scores, y_val)


def fit_flush(
    X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame, y_val: np.ndarray, spec: FitSpec
) -> Fitted:
    """Flush model on the fit rows, early-stopped and calibrated on the validation tail.

    Needs both classes in `y`. When the validation tail lacks either class the forecast is the
    fit rows' flush rate: without held-out evidence the scores cannot be calibrated.
    """
    y = np.asarray(y, dtype="float64")
    y_val = np.asarray(y_val, dtype="float64")
    if not 0 < y.sum() < len(y):
        raise ValueError("the flush model needs both flushes and quiet bars in its fit rows")
    seed = int(spec.flush_params.get("seed", 0))
    rows = _downsample(y, spec.negatives_per_positive, seed, spec.min_negatives)
    # Early stopping watches a rank metric, which sampling negatives leaves unbiased: the same
    # sampling of the validation tail makes each round's check several times cheaper.
    stop = _downsample(y_val, spec.negatives_per_positive, seed + 1, spec.min_negatives)
    booster = _boost(spec.flush_params, X.iloc[rows], y[rows], X_val.iloc[stop], y_val[stop], spec)
    booster = _trimmed(booster)
    if 0 < y_val.sum() < len(y_val):
        calibrator = _calibrated(booster, X_val, y_val)
    else:
        # No flush (or no quiet bar) held out: nothing says how far to trust the scores, and
        # in-sample scores are overconfident (on real data they forecast 70 % for a 5 % event).
        calibrator = Calibrator.constant(float(np.mean(y)))
    return Fitted(booster, calibrator)


def fit_direction(
    X: pd.DataFrame,
    long_flush: np.ndarray,
    X_val: pd.DataFrame,
    long_val: np.ndarray,
    spec: FitSpec,
) -> Fitted | None:
    """P(long flush | flush) from one-sided flush rows (1 = long flush, 0 = short squeeze).

    None when there are too few such rows or only one side: the caller then reports 50/50.
    """
    y = np.asarray(long_flush, dtype="float64")
    y_val = np.asarray(long_val, dtype="float64")
    if len(y) < spec.min_direction_rows or not 0 < y.sum() < len(y):
        return None
    booster = _trimmed(_boost(spec.direction_params, X, y, X_val, y_val, spec))
    if len(y_val) >= spec.min_direction_rows and 0 < y_val.sum() < len(y_val):
        calibrator = Calibrator("platt").fit(booster.predict(X_val, raw_score=True), y_val)
    else:
        # Too few held-out flushes to recalibrate: the booster's own sigmoid is the probability.
        calibrator = Calibrator("platt")
        calibrator.chosen, calibrator.logit_scale = "platt", False
        calibrator.params = {"a": [1.0], "b": [0.0]}
    return Fitted(booster, calibrator)


def _trimmed(booster: lgb.Booster) -> lgb.Booster:
    """The booster cut at its best iteration, so every later call uses the same trees."""
    best = booster.best_iteration
    if best and best < booster.current_iteration():
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return booster
