"""Fit the deployable bundle: the walk-forward's fold recipe applied to every labelled row.

The walk-forward's out-of-fold scores are the evidence. Per horizon, `train` is one more refit
of `training.recipe` (`Refit.final`: every labelled row trains, the cutoff one bar after the
last): its evidence is the out-of-fold rows within `calibration.window_hours` of that cutoff,
the champion's shares and calibrator are fitted there exactly as in each fold, and each input
with weight is refitted on every row. So the walk-forward figures describe exactly the recipe
that produced this bundle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flushcast.common.engine import Engine, engine
from flushcast.common.errors import DataError
from flushcast.features.registry import max_lookback
from flushcast.models.bundle import Bundle, HorizonModel
from flushcast.models.direction import DirectionCall
from flushcast.models.stacking import Stack
from flushcast.training.combine import inputs
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import Dataset, feature_lookbacks
from flushcast.training.evaluate import Evaluation
from flushcast.training.horizon import HorizonData, horizon_data
from flushcast.training.recipe import (
    Evidence,
    OutOfFold,
    Refit,
    champion,
    direction_weights,
    fit_direction,
    fit_members,
    fit_rules,
)
from flushcast.training.tasks import out_of_fold_all


def _final(data: HorizonData, oof: OutOfFold, config: TrainingConfig) -> HorizonModel:
    """One horizon's deployable model: the fold recipe's refit on every labelled row."""
    refit = Refit.final(data, folds=int(oof.fold_of.max()) + 1)
    evidence = Evidence.at(data, oof, refit, config)
    shortfall = evidence.shortfall(config, before="the end of the data")
    if shortfall:
        raise DataError(
            f"H={data.horizon}: too little out-of-fold evidence to calibrate the model "
            f"({shortfall}); more history is needed",
        )
    combination, calibrator = champion(evidence, oof, config)
    names = combination.inputs
    members = fit_members(names, data, refit, config)
    stack = Stack(
        names,
        [members[n].model for n in names],  # type: ignore[misc]
        [combination.shares[n] for n in names],
        [members[n].loc for n in names],
        [members[n].scale for n in names],
    )
    trees = fit_direction(data, refit, config)
    call = direction_weights(evidence, data, oof, config)
    direction = (
        trees
        if config.combination.direction == "model"
        else DirectionCall(trees, fit_rules(data, refit), call.weights)
    )
    return HorizonModel(
        data.horizon,
        stack,
        calibrator,
        direction,
        evidence.prior,
        {
            "chosen": combination.label,
            "method": combination.method,
            "shares": combination.shares,
            "fitted_shares": combination.fitted,
            "reason": combination.reason,
            "out_of_fold_episodes": combination.episodes,
            f"out_of_fold_{config.selection.metric}_within_fold": combination.inner,
            "plausibility": combination.plausible,
            "out_of_fold_rows": int(evidence.rows.sum()),
            "direction": {
                "weights": call.weights,
                "fitted_weights": call.fitted,
                "reason": call.reason,
                "out_of_fold_episodes": call.episodes,
            },
            "calibration_window": [
                pd.Timestamp(data.t[evidence.rows].min()).isoformat(),
                pd.Timestamp(refit.cutoff).isoformat(),
            ],
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
    datas = {h: horizon_data(dataset, h) for h in dataset.label.horizons}
    missing = {h: (data, data.folds(config)) for h, data in datas.items() if h not in evaluated}
    names = [*config.fit.candidates]
    names += [n for n in inputs(config) if n not in names]
    oofs = {h: result.oof for h, result in evaluated.items()}
    oofs |= out_of_fold_all(missing, config, runner, names=names)
    calls = [(runner.share(data), oofs[h], config) for h, data in datas.items()]
    horizons = dict(zip(datas, runner.run(_final, calls), strict=True))
    rows_used = {f"rows_{h}h": len(data.y) for h, data in datas.items()}
    return Bundle(
        horizons=horizons,
        features=list(dataset.features),
        lookbacks=feature_lookbacks(dataset.features),
        max_lookback=max_lookback(dataset.bar),
        symbols=dataset.symbols(),
        label=dataset.label.to_params(),
        fit=config.flat(),
        bar_hours=dataset.bar / np.timedelta64(1, "h"),
        training={
            "series": dataset.series,
            **dataset.span(),
            **rows_used,
            "augmented": dataset.augmented,
        },
        evaluation=evaluation.record.summary() if evaluation is not None else {},
    )
