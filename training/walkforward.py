"""The walk-forward: every candidate and baseline on the same purged folds, then calibration
and the choice of champion from out-of-fold evidence only.

Pass 1 refits every learner on each fold's training rows and scores the fold's test rows: the
out-of-fold (OOF) scores. Pass 2 walks the folds in time order; for fold f it looks only at
OOF rows whose labels were known before f's training cutoff (the inner walk-forward):

- each learner's calibrator is fitted on its OOF scores there (`models.calibration`), with the
  training base rate as the prior;
- the champion of fold f combines the candidates' and chosen baselines' standardised OOF
  scores there (`training.combine`: a non-negative stack shrunk toward equal shares, or the
  best candidate), and its combined score gets its own calibrator on the same rows;
- the trivial direction rules (majority side, sign of funding, sign of the 24 h return) learn
  their orientation from the fold's training rows in pass 1, beside the direction trees; the
  direction call is the trees alone or their stack with the rules, weighed on the same earlier
  out-of-fold rows (`training.recipe.direction_weights`).

So a test block is never used to tune, calibrate or choose anything that scores it. A fold
with no flush to train on, or too few OOF flushes to calibrate on, is left out for every
model alike, with the reason recorded. What one fold does is `training.recipe` (the fold
recipe); `flushcast train` applies the same recipe to one more refit on every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flushcast.models.direction import MODEL
from flushcast.models.learners import GradientBoosting
from flushcast.models.rules import DIRECTION_RULES
from flushcast.training.config import TrainingConfig
from flushcast.training.horizon import HorizonData
from flushcast.training.metrics import pr_auc
from flushcast.training.recipe import (
    DirectionWeights,
    Evidence,
    OutOfFold,
    Refit,
    champion,
    direction_scores,
    direction_weights,
    fit_members,
    learners,
)
from flushcast.training.splits import Fold

CHAMPION = "champion"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def out_of_fold(
    data: HorizonData,
    folds: Sequence[Fold],
    config: TrainingConfig,
    names: Sequence[str] | None = None,
    on_fold: Callable[[], None] | None = None,
) -> OutOfFold:
    """Refit each learner on each fold's training rows; score its test rows."""
    names = list(learners(config, data)) if names is None else list(names)
    n = len(data.y)
    raw = {name: np.full(n, np.nan) for name in names}
    direction: dict[str, np.ndarray] = {}
    fold_of = np.full(n, -1, dtype=np.int64)
    block_of = np.full(n, -1, dtype=np.int64)
    excluded: dict[int, str] = {}
    calibrated: dict[str, bool] = {}
    gain = pd.Series(0.0, index=data.columns)
    t = data.t
    for fold in folds:
        train, test = fold.train, fold.test
        fold_of[test] = fold.number
        block_of[test] = fold.block
        if not 0 < data.y[train].sum() < len(train):
            excluded[fold.number] = "no flush in the training span"
        else:
            refit = Refit.of_fold(fold)
            X_test, t_test = data.X[test], t[test]
            for name, member in fit_members(names, data, refit, config).items():
                raw[name][test] = member.score(X_test, t_test)
                calibrated[name] = member.calibrated
                model = member.model
                if name == "lightgbm" and isinstance(model, GradientBoosting):
                    gain += model.booster.feature_importance("gain")  # type: ignore[union-attr]
            for name, scores in direction_scores(data, refit, config, test).items():
                direction.setdefault(name, np.full(n, np.nan))[test] = scores
        if on_fold:
            on_fold()
    has_lightgbm = "lightgbm" in names
    return OutOfFold(
        raw, direction, fold_of, block_of, excluded, calibrated, gain if has_lightgbm else None
    )


DIRECTION_PREFIX = "dir_"
"""Prediction-frame column prefix of a direction rule's P(long flush)."""


@dataclass
class HorizonPredictions:
    """Pass 2: calibrated out-of-sample probabilities of every model and the champion."""

    frame: pd.DataFrame
    """One row per scored test row: keys, `horizon`, `fold`, `block`, `y`, `direction`,
    `p_<model>` for every model and `p_champion`, `p_long` (the direction call),
    `p_long_model` (the direction trees alone) and each trivial direction rule's
    `dir_<rule>`."""
    folds: pd.DataFrame
    """One row per fold: span, counts, status (scored or why not), the champion (`stack` or
    the chosen candidate), each input's share in it and its inner score."""
    gain: pd.Series | None
    oof: OutOfFold


@dataclass
class FoldOutcome:
    """Pass 2 of one fold: its row of the fold table and, when scored, each model's and the
    champion's probabilities on its test rows, and P(long flush) of the direction call, the
    trees alone and each rule (by prediction-frame column)."""

    record: dict[str, Any]
    probability: dict[str, np.ndarray] = field(default_factory=dict)
    direction: dict[str, np.ndarray] = field(default_factory=dict)


def calibrate_fold(
    data: HorizonData, fold: Fold, oof: OutOfFold, config: TrainingConfig
) -> FoldOutcome:
    """Pass 2 of one fold: calibrators and champion from the out-of-fold rows before its
    cutoff (`training.recipe`). Folds are independent here, so they can run anywhere."""
    record: dict[str, Any] = {
        "horizon": data.horizon,
        "fold": fold.number,
        "block": fold.block,
        "train_end": fold.train_end,
        "test_start": fold.test_start,
        "test_end": fold.test_end,
        "n_train": len(fold.train),
        "n_test": len(fold.test),
        "train_events": int(data.y[fold.train].sum()),
        "positives": int(data.y[fold.test].sum()),
    }
    evidence = Evidence.at(data, oof, Refit.of_fold(fold), config)
    record["oof_episodes"] = evidence.episodes
    record["oof_folds"] = evidence.folds
    excluded = oof.excluded.get(fold.number) or evidence.shortfall(config)
    if excluded:
        return FoldOutcome({**record, "status": excluded})
    probability = {}
    for name, scores in oof.raw.items():
        if oof.calibrated.get(name, True):
            probability[name] = evidence.calibrator(scores, config).predict(scores[fold.test])
        else:
            probability[name] = scores[fold.test]
    combination, calibrator = champion(evidence, oof, config)
    z = combination.score({name: scores[fold.test] for name, scores in oof.raw.items()})
    probability[CHAMPION] = calibrator.predict(z)
    call, direction = direction_columns(data, fold, evidence, oof, config)
    record |= {
        "status": "scored",
        "pr_auc": pr_auc(data.y[fold.test], probability[CHAMPION]),
        "champion": combination.label,
        "choice": combination.reason,
        **{f"share_{c}": v for c, v in combination.shares.items()},
        **{f"inner_{c}": v for c, v in combination.inner.items()},
        **{f"plausible_{c}": v for c, v in combination.plausible.items()},
        **{f"direction_{c}": v for c, v in call.weights.items()},
    }
    return FoldOutcome(record, probability, direction)


def direction_columns(
    data: HorizonData, fold: Fold, evidence: Evidence, oof: OutOfFold, config: TrainingConfig
) -> tuple[DirectionWeights, dict[str, np.ndarray]]:
    """Pass 2's direction part for one fold: the call's weights from the evidence before its
    cutoff, and P(long flush) of the call, of the trees alone and of each rule on its test
    rows (by prediction-frame column)."""
    call = direction_weights(evidence, data, oof, config)
    scores = {name: values[fold.test] for name, values in oof.direction.items()}
    direction = {"p_long": call.p_long(scores), "p_long_model": _sigmoid(scores[MODEL])}
    direction |= {f"{DIRECTION_PREFIX}{r}": _sigmoid(scores[r]) for r in scores if r != MODEL}
    return call, direction


def calibrate_and_choose(
    data: HorizonData, folds: Sequence[Fold], oof: OutOfFold, config: TrainingConfig
) -> HorizonPredictions:
    """Pass 2 over the folds in time order (see the module docstring)."""
    return assemble(data, folds, oof, [calibrate_fold(data, f, oof, config) for f in folds])


def assemble(
    data: HorizonData, folds: Sequence[Fold], oof: OutOfFold, outcomes: Sequence[FoldOutcome]
) -> HorizonPredictions:
    """One horizon's predictions and fold table from its folds' pass 2, in fold order."""
    names = [*oof.raw, CHAMPION]
    n = len(data.y)
    probability = {name: np.full(n, np.nan) for name in names}
    direction = {
        c: np.full(n, np.nan)
        for c in ["p_long", "p_long_model", *(DIRECTION_PREFIX + r for r in DIRECTION_RULES)]
    }
    excluded = dict(oof.excluded)
    for fold, outcome in zip(folds, outcomes, strict=True):
        if outcome.record["status"] != "scored":
            excluded[fold.number] = outcome.record["status"]
        for name, p in outcome.probability.items():
            probability[name][fold.test] = p
        for column, p_long in outcome.direction.items():
            direction[column][fold.test] = p_long
    keep = np.isfinite(probability[CHAMPION])
    frame = data.keys[keep].reset_index(drop=True)
    frame["horizon"] = data.horizon
    frame["fold"] = oof.fold_of[keep]
    frame["block"] = oof.block_of[keep]
    frame["y"] = data.y[keep]
    frame["direction"] = pd.Categorical(data.direction[keep])
    for name in names:
        frame[f"p_{name}"] = probability[name][keep]
    for column, p_long in direction.items():
        frame[column] = p_long[keep]
    oof.excluded = excluded
    table = pd.DataFrame([outcome.record for outcome in outcomes])
    return HorizonPredictions(frame, table, oof.gain, oof)
