"""Fit the deployable bundle: the walk-forward's choice and calibration, applied to every row.

The walk-forward's out-of-fold scores are the evidence: per horizon the candidate that ranked
best within blocks over all of them is chosen, its calibrator is fitted on its own out-of-fold
scores (the recent `calibration.window_hours`), and the candidate is refitted on every labelled
row. So the walk-forward figures describe exactly the recipe that produced this bundle.
"""

from __future__ import annotations

import numpy as np

from common.engine import Engine, engine
from common.errors import DataError
from features.registry import max_lookback
from models.bundle import Bundle, HorizonModel
from models.config import make_candidate, make_direction
from training.config import TrainingConfig
from training.dataset import Dataset, feature_lookbacks
from training.evaluate import Evaluation, out_of_fold_all
from training.walkforward import (
    HOUR,
    HorizonData,
    OutOfFold,
    calibrate_and_choose,
    choose,
    dropout_groups,
    fit_calibrator,
    horizon_data,
    score_scale,
)


def _final(data: HorizonData, oof: OutOfFold, frame, config: TrainingConfig) -> HorizonModel:
    """One horizon's deployable model from its out-of-fold evidence."""
    candidates = [c for c in config.fit.candidates if c in oof.raw]
    scored = oof.fold_of >= 0
    scored[scored] = np.isin(oof.fold_of[scored], frame["fold"].unique())
    choice = choose(
        candidates,
        {c: frame[f"p_{c}"].to_numpy() for c in candidates},
        frame["y"].to_numpy(),
        frame["block"].to_numpy(),
        int(data.episode_start[scored].sum()),
        config,
    )
    raw = oof.raw[choice.chosen]
    rows = np.isfinite(raw)
    window = config.calibration.window_hours
    if window and rows.any():
        t = data.t
        rows &= t >= t[rows].max() - window * HOUR
    if not 0 < data.y[rows].sum() < rows.sum():
        raise DataError(
            f"H={data.horizon}: the walk-forward scored no flush out of fold, so nothing says "
            "how to calibrate the model (more history is needed)",
        )
    prior = float(data.y.mean())
    learner = make_candidate(choice.chosen, data.columns, config.fit, dropout_groups(data.columns))
    learner.fit(data.X, data.y)
    episodes = int(data.episode_start[rows].sum())
    folds = len(np.unique(oof.fold_of[rows]))
    calibrator = fit_calibrator(raw[rows], data.y[rows], episodes, folds, prior, config)
    calibrator = calibrator.for_scores(*score_scale(learner, data.X))
    sided, is_long = data.sided()
    direction = None
    d = np.flatnonzero(sided)
    if len(d) >= config.fit.min_direction_rows and 0 < is_long[d].sum() < len(d):
        direction = make_direction(data.columns, config.fit).fit(data.X[d], is_long[d])
    return HorizonModel(
        data.horizon,
        learner,
        calibrator,
        direction,
        prior,
        {
            "chosen": choice.chosen,
            "reason": choice.reason,
            "out_of_fold_episodes": choice.episodes,
            f"out_of_fold_{config.selection.metric}_within_fold": choice.scores,
        },
    )


def fit_bundle(
    dataset: Dataset,
    config: TrainingConfig,
    evaluation: Evaluation | None = None,
    runner: Engine | None = None,
) -> Bundle:
    """One flush model (and direction model) per horizon, from the walk-forward's evidence.

    Without an `evaluation`, the walk-forward of the candidates alone is run first (no
    baselines, no metrics): the choice and the calibration need its out-of-fold scores. The
    refits and the horizons' final fits are tasks on `runner` (default: `common.engine`'s).
    """
    runner = runner or engine()
    evaluated = evaluation.horizons if evaluation is not None else {}
    plans = {h: (horizon_data(dataset, h), []) for h in dataset.label.horizons}
    missing = {
        h: (data, data.folds(config)) for h, (data, _) in plans.items() if h not in evaluated
    }
    oofs = out_of_fold_all(missing, config, runner, names=config.fit.candidates)
    results = {
        h: evaluated[h] if h in evaluated else calibrate_and_choose(data, folds, oofs[h], config)
        for h, (data, folds) in {**plans, **missing}.items()
    }
    calls = [
        (runner.share(data), results[h].oof, results[h].frame, config)
        for h, (data, _) in plans.items()
    ]
    horizons = dict(zip(plans, runner.run(_final, calls), strict=True))
    rows_used = {f"rows_{h}h": len(data.y) for h, (data, _) in plans.items()}
    return Bundle(
        horizons=horizons,
        features=list(dataset.features),
        lookbacks=feature_lookbacks(dataset.features),
        max_lookback=max_lookback(dataset.bar),
        symbols=dataset.symbols(),
        label=dataset.label.to_params(),
        fit=config.flat(),
        bar_hours=dataset.bar / np.timedelta64(1, "h"),
        training={"series": dataset.series, **dataset.span(), **rows_used},
        evaluation=evaluation.record.summary() if evaluation is not None else {},
    )
