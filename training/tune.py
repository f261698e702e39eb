"""Bounded tuning: an Optuna study over the LightGBM and logistic settings, scored only by the
inner walk-forward of a training span.

The data is cut at `cutoff` (default: the middle of its span) and the study sees only rows whose
label windows close before it. Each trial runs both passes of the walk-forward there (its refits
as tasks on the engine, so the trials' work spreads over the cluster) and is scored by the
champion's within-block ranking (`selection.metric`) averaged over horizons: the evidence the
walk-forward itself chooses champions by. Nothing after the cutoff informs the choice, so the
tuned configuration is judged honestly only on test blocks that start after it
(`benchmarks/tuning_gain.py` does that). The first trial is the configuration given (the
defaults), so the study's best is never worse than it on the evidence it saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flushcast.common.engine import Engine
from flushcast.common.errors import DataError
from flushcast.training.config import TrainingConfig, config_yaml
from flushcast.training.dataset import Dataset
from flushcast.training.metrics import within_blocks
from flushcast.training.tasks import walk_forward, walk_forward_plans
from flushcast.training.walkforward import CHAMPION, HorizonPredictions

SPACE: dict[str, tuple[str, float, float]] = {
    "fit.lightgbm.learning_rate": ("log", 0.02, 0.2),
    "fit.lightgbm.rounds": ("int", 50, 300),
    "fit.lightgbm.num_leaves": ("int", 3, 15),
    "fit.lightgbm.min_data_in_leaf": ("logint", 20, 400),
    "fit.lightgbm.lambda_l2": ("log", 1.0, 200.0),
    "fit.lightgbm.feature_fraction": ("float", 0.4, 1.0),
    "fit.logistic_C": ("log", 0.01, 3.0),
}
"""The searched settings: (scale, low, high). Everything else stays as configured."""


def training_span(dataset: Dataset, cutoff: pd.Timestamp) -> Dataset:
    """The rows whose every label window closes by `cutoff` (features look back only)."""
    longest = pd.Timedelta(hours=max(dataset.label.horizons))
    table = dataset.table[dataset.table["timestamp"] + longest <= cutoff]
    if table.empty:
        raise DataError(f"no labelled row closes before the tuning cutoff {cutoff}")
    return Dataset(table, dataset.features, dataset.label, dataset.series, dataset.bar)


def default_cutoff(dataset: Dataset) -> pd.Timestamp:
    """The middle of the data's span."""
    stamps = dataset.table["timestamp"]
    return stamps.min() + (stamps.max() - stamps.min()) / 2


def _champion_ranking(result: HorizonPredictions, horizon: int, config: TrainingConfig) -> float:
    """The champion's within-block ranking (`selection.metric`) on one horizon's test rows."""
    frame = result.frame
    ranked = within_blocks(frame["y"], frame[f"p_{CHAMPION}"], frame["block"].to_numpy())
    return float(getattr(ranked, config.selection.metric))


def inner_score(span: Dataset, config: TrainingConfig, runner: Engine) -> float:
    """The champion's mean within-block ranking over the horizons, from the walk-forward of
    `span` alone (candidates only: baselines play no part in the choice), both passes as tasks
    on `runner`, as the evaluation runs them."""
    done = walk_forward(
        span, config, runner, names=list(config.fit.candidates), then=_champion_ranking
    )
    values = [value for _, value in done.values()]
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _suggest(trial: Any, key: str) -> float | int:
    scale, low, high = SPACE[key]
    if scale == "int":
        return trial.suggest_int(key, int(low), int(high), step=25 if key.endswith("rounds") else 1)
    if scale == "logint":
        return trial.suggest_int(key, int(low), int(high), log=True)
    return trial.suggest_float(key, low, high, log=scale == "log")


@dataclass
class Tuned:
    """The study's outcome: the chosen configuration, its inner score and the default's."""

    config: TrainingConfig
    best: float
    default: float
    cutoff: pd.Timestamp
    trials: pd.DataFrame

    def yaml(self) -> str:
        """The chosen configuration as a file `train --config` takes."""
        return config_yaml(
            self.config,
            f"flushcast tune: inner walk-forward before {self.cutoff.isoformat()}, "
            f"{len(self.trials)} trials; champion within-block {self.config.selection.metric} "
            f"{self.best:.4f} (the configuration tuned from: {self.default:.4f}).",
        )


def tune(
    dataset: Dataset,
    config: TrainingConfig,
    runner: Engine,
    *,
    trials: int,
    storage: Path,
    cutoff: pd.Timestamp | None = None,
    seed: int = 0,
) -> Tuned:
    """Run `trials` trials (the first is `config` itself); the study is kept in `storage`
    (an SQLite file, logged beside the MLflow run)."""
    import optuna

    cutoff = cutoff if cutoff is not None else default_cutoff(dataset)
    span = training_span(dataset, cutoff)
    walk_forward_plans(span, config)  # a span too short is one clear error, not N failed trials
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    flat = config.flat()
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        storage=f"sqlite:///{storage}",
        study_name="flushcast-tune",
    )
    study.enqueue_trial({key: flat[key] for key in SPACE})

    def objective(trial: Any) -> float:
        chosen = config.with_overrides({key: _suggest(trial, key) for key in SPACE})
        score = inner_score(span, chosen, runner)
        return score if np.isfinite(score) else float("-inf")

    study.optimize(objective, n_trials=trials)
    best = config.with_overrides(study.best_params)
    return Tuned(
        config=best,
        best=float(study.best_value),
        default=float(study.trials[0].value),
        cutoff=cutoff,
        trials=study.trials_dataframe(),
    )
