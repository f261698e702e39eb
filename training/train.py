"""Fit the deployable bundle: the walk-forward's combination and calibration, applied to every row.

The walk-forward's out-of-fold scores are the evidence: per horizon the champion's shares are
fitted by the same rule as in each fold (`training.combine`) on the recent out-of-fold rows
(`calibration.window_hours`), its calibrator on its combined score there, and each input with
weight is refitted on every labelled row. So the walk-forward figures describe exactly the
recipe that produced this bundle.
"""

from __future__ import annotations

import numpy as np

from common.engine import Engine, engine
from common.errors import DataError
from features.registry import max_lookback
from models.bundle import Bundle, HorizonModel
from models.config import make_candidate, make_direction
from models.learners import Explainer
from models.stacking import Stack
from training.baselines import BASELINES
from training.combine import combine, inputs
from training.config import TrainingConfig
from training.dataset import Dataset, feature_lookbacks
from training.evaluate import Evaluation, out_of_fold_all
from training.walkforward import (
    HOUR,
    HorizonData,
    OutOfFold,
    calibrate_and_choose,
    dropout_groups,
    fit_calibrator,
    horizon_data,
    score_scale,
)


def _member(name: str, data: HorizonData, config: TrainingConfig) -> Explainer:
    """One input of the champion, fitted on every labelled row (a candidate or a baseline)."""
    if name in BASELINES:
        model = BASELINES[name](data.columns, data.horizon, 0)
    else:
        model = make_candidate(name, data.columns, config.fit, dropout_groups(data.columns))
    model.fit(data.X, data.y, data.t)
    return model  # type: ignore[return-value]


def _final(data: HorizonData, oof: OutOfFold, frame, config: TrainingConfig) -> HorizonModel:
    """One horizon's deployable model from its out-of-fold evidence.

    The champion's recipe is the walk-forward's (`training.combine.combine`, then
    `fit_calibrator`), applied to the most recent out-of-fold rows (`calibration.window_hours`)
    of the folds the walk-forward scored: shares fitted there, its members refitted on every
    row, the combined score calibrated there.
    """
    rows = oof.fold_of >= 0
    rows[rows] = np.isin(oof.fold_of[rows], frame["fold"].unique())
    rows &= np.isfinite(oof.raw[next(iter(oof.raw))])
    window = config.calibration.window_hours
    if window and rows.any():
        t = data.t
        rows &= t >= t[rows].max() - window * HOUR
    if not 0 < data.y[rows].sum() < rows.sum():
        raise DataError(
            f"H={data.horizon}: the walk-forward scored no flush out of fold, so nothing says "
            "how to calibrate the model (more history is needed)",
        )
    blocks = dict(zip(frame["fold"], frame["block"], strict=False))
    episodes = int(data.episode_start[rows].sum())
    folds = len(np.unique(oof.fold_of[rows]))
    combination = combine(
        {name: scores[rows] for name, scores in oof.raw.items()},
        data.y[rows],
        np.array([blocks[f] for f in oof.fold_of[rows]]),
        episodes,
        config,
    )
    prior = float(data.y.mean())
    names = combination.inputs
    members = [_member(name, data, config) for name in names]
    scales = [score_scale(m, data.X, data.t) for m in members]
    stack = Stack(
        names,
        members,
        [combination.shares[n] for n in names],
        [loc for loc, _ in scales],
        [scale for _, scale in scales],
    )
    z = combination.score(oof.raw)
    calibrator = fit_calibrator(z[rows], data.y[rows], episodes, folds, prior, config)
    sided, is_long = data.sided()
    direction = None
    d = np.flatnonzero(sided)
    if len(d) >= config.fit.min_direction_rows and 0 < is_long[d].sum() < len(d):
        direction = make_direction(data.columns, config.fit).fit(data.X[d], is_long[d])
    return HorizonModel(
        data.horizon,
        stack,
        calibrator,
        direction,
        prior,
        {
            "chosen": combination.label,
            "method": combination.method,
            "shares": combination.shares,
            "fitted_shares": combination.fitted,
            "reason": combination.reason,
            "out_of_fold_episodes": combination.episodes,
            f"out_of_fold_{config.selection.metric}_within_fold": combination.inner,
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
    names = [*config.fit.candidates]
    names += [n for n in inputs(config) if n not in names]
    oofs = out_of_fold_all(missing, config, runner, names=names)
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
