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
    "learning_rate": 0.05,
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
    max_rounds: int = 400
    early_stopping: int = 40
    flush_params: dict[str, Any] = field(default_factory=lambda: dict(FLUSH_PARAMS))
    direction_params: dict[str, Any] = field(default_factory=lambda: dict(DIRECTION_PARAMS))
    min_direction_rows: int = 30
    """Fewer one-sided flushes than this in the fit rows: no direction model (a coin flip)."""

    def to_params(self) -> dict[str, Any]:
        """Flat parameters for MLflow."""
        flat: dict[str, Any] = {
            "fit_negatives_per_positive": self.negatives_per_positive,
            "fit_max_rounds": self.max_rounds,
            "fit_early_stopping": self.early_stopping,
            "fit_min_direction_rows": self.min_direction_rows,
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


def _downsample(y: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """Positions to fit on: all positives and about `ratio` negatives per positive."""
    positives = np.flatnonzero(y == 1)
    negatives = np.flatnonzero(y == 0)
    keep = min(len(negatives), max(int(ratio * len(positives)), 1))
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
    train = lgb.Dataset(X, y, free_raw_data=True)
    two_classes = len(y_val) > 0 and 0 < y_val.sum() < len(y_val)
    if not two_classes:
        # Nothing to stop on: a fixed, modest number of rounds.
        return lgb.train(params, train, num_boost_round=spec.max_rounds // 4)
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

    Needs both classes in `y`. When the validation tail lacks either class the calibrator is
    fitted on all fit rows' own scores: a last resort that restores the base-rate scale but
    cannot correct in-sample overconfidence.
    """
    y = np.asarray(y, dtype="float64")
    y_val = np.asarray(y_val, dtype="float64")
    if not 0 < y.sum() < len(y):
        raise ValueError("the flush model needs both flushes and quiet bars in its fit rows")
    rows = _downsample(y, spec.negatives_per_positive, int(spec.flush_params.get("seed", 0)))
    booster = _boost(spec.flush_params, X.iloc[rows], y[rows], X_val, y_val, spec)
    booster = _trimmed(booster)
    held_out = 0 < y_val.sum() < len(y_val)
    calibrator = _calibrated(booster, X_val, y_val) if held_out else _calibrated(booster, X, y)
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
