"""Walk-forward evaluation: the LightGBM model and every baseline on the same purged folds.

Per horizon, each fold trains on rows whose label windows end an embargo before its test block
(expanding window, retrained every `retrain_every` bars), the LightGBM model early-stops and is
calibrated on the time-ordered validation tail inside that training span, and all models
predict the test block. Metrics are then computed on the pooled out-of-sample predictions, per
horizon, pooled over symbols and per symbol, with block-bootstrap intervals for the headline
figures: cascades hit every symbol at once and last hours, so rows are far from independent.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from marketdata.errors import DataError
from models.bundle import SYMBOL, model_matrix
from models.lgbm import FitSpec, fit_direction, fit_flush
from training.baselines import Climatology, HeuristicRank, Logistic, RandomPlacebo
from training.dataset import Dataset, require_enough
from training.labels import LONG_FLUSH, SHORT_SQUEEZE, direction_column, flush_column
from training.metrics import (
    block_bootstrap_cis,
    brier_skill,
    direction_accuracy,
    event_recall,
    pr_auc,
    score_metrics,
    time_blocks,
)
from training.splits import SplitSpec, walk_forward

MODELS = ("lightgbm", "logistic", "heuristic", "climatology", "placebo")
HEURISTIC = {
    "funding_heat": "funding_z_30d",
    "oi_buildup": "oi_z_30d",
    "vol_compression": "rv_ratio_24h_168h",
    "compression_higher_is_calmer": False,
}
"""The transparent baseline's gauges: funding crowding, leverage build-up, a quiet market."""


@dataclass(frozen=True)
class EvalSpec:
    """Walk-forward and reporting parameters (bars are hours); recorded with every run."""

    horizons: tuple[int, ...] = (4, 12, 24)
    retrain_every: int = 168
    min_train: int = 720
    embargo: int | None = None
    validation_fraction: float = 0.2
    climatology_window: int = 2160
    """Trailing bars of the climatology baseline (90 days)."""
    n_boot: int = 200
    block_bars: int = 72
    min_events: int = 10

    def split(self, horizon: int) -> SplitSpec:
        return SplitSpec(
            horizon=horizon,
            retrain_every=self.retrain_every,
            min_train=self.min_train,
            embargo=self.embargo,
            validation_fraction=self.validation_fraction,
        )

    def to_params(self) -> dict[str, Any]:
        params = asdict(self)
        params["horizons"] = ",".join(map(str, self.horizons))
        return {f"eval_{k}": v for k, v in params.items()}


@dataclass
class Evaluation:
    """Out-of-sample predictions, the per-fold table and the evaluation report (the JSON)."""

    predictions: dict[int, pd.DataFrame]
    folds: pd.DataFrame
    report: dict[str, Any]
    importance: dict[int, pd.Series] = field(default_factory=dict)
    """Total LightGBM gain per input over the folds, per horizon."""


def _baselines(features: Sequence[str], seed: int) -> dict[str, Any]:
    return {
        "logistic": Logistic(features),
        "heuristic": HeuristicRank(**HEURISTIC),
        "placebo": RandomPlacebo(seed=seed),
    }


def direction_target(directions: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(one-sided flush mask, 1 for long flush) from a direction label column."""
    values = directions.astype(object).to_numpy()
    sided = (values == LONG_FLUSH) | (values == SHORT_SQUEEZE)
    return sided, (values == LONG_FLUSH).astype("float64")


def fold_predictions(
    rows: pd.DataFrame,
    X: pd.DataFrame,
    horizon: int,
    spec: EvalSpec,
    fit: FitSpec,
    features: Sequence[str],
    on_fold: Callable[[], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Out-of-sample predictions of every model for one horizon, the fold table, total gain.

    `rows` are the labelled rows in time order, `X` their model inputs (same order).
    """
    y = rows[flush_column(horizon)].to_numpy(dtype="float64")
    sided, is_long = direction_target(rows[direction_column(horizon)])
    folds = walk_forward(rows["timestamp"], spec.split(horizon))
    if not folds:
        raise DataError(
            f"no walk-forward fold at H={horizon}: the data spans fewer than "
            f"{spec.min_train} + {spec.retrain_every} bars"
        )
    parts, table = [], []
    gain = pd.Series(0.0, index=X.columns)
    for fold in folds:
        fit_rows, val_rows, test = fold.fit, fold.validation, fold.test
        train = fold.train
        test_X = X.iloc[test]
        out = rows.iloc[test][["timestamp", "symbol", "venue"]].copy()
        out["fold"] = fold.number
        out["y"] = y[test]
        out["direction"] = rows[direction_column(horizon)].iloc[test].to_numpy()
        if 0 < y[fit_rows].sum() < len(fit_rows):
            model = fit_flush(X.iloc[fit_rows], y[fit_rows], X.iloc[val_rows], y[val_rows], fit)
            out["p_lightgbm"] = model.predict(test_X)
            gain += model.booster.feature_importance("gain")
            iterations = model.booster.current_iteration()
            calibrator = model.calibrator.chosen
        else:  # no flush yet to learn from: the model can only say the base rate
            out["p_lightgbm"] = float(y[fit_rows].mean())
            iterations, calibrator = 0, "constant"
        d_fit, d_val = fit_rows[sided[fit_rows]], val_rows[sided[val_rows]]
        direction = fit_direction(X.iloc[d_fit], is_long[d_fit], X.iloc[d_val], is_long[d_val], fit)
        out["p_long"] = direction.predict(test_X) if direction else 0.5
        train_frame = rows.iloc[train]
        climatology = Climatology(spec.climatology_window).fit(train_frame, y[train])
        out["p_climatology"] = climatology.predict_proba(out)
        for name, baseline in _baselines(features, fold.number).items():
            baseline.fit(train_frame, y[train])
            out[f"p_{name}"] = baseline.predict_proba(rows.iloc[test])
        parts.append(out)
        table.append(
            {
                "horizon": horizon,
                "fold": fold.number,
                "test_start": fold.test_start,
                "test_end": fold.test_end,
                "n_fit": len(fit_rows),
                "n_validation": len(val_rows),
                "n_test": len(test),
                "positives": int(y[test].sum()),
                "trees": iterations,
                "calibrator": calibrator,
                "direction_model": direction is not None,
                "pr_auc": pr_auc(y[test], out["p_lightgbm"].to_numpy()),
            }
        )
        if on_fold:
            on_fold()
    return pd.concat(parts, ignore_index=True), pd.DataFrame(table), gain


def _metrics_for(predictions: pd.DataFrame, horizon: int, n_boot: int, block_bars: int) -> dict:
    """The JSON entry for one set of rows: base rate, counts and every model's metrics."""
    y = predictions["y"].to_numpy()
    series = predictions["symbol"].astype(str) + "@" + predictions["venue"].astype(str)
    reference = predictions["p_climatology"].to_numpy()
    models = {}
    for name in MODELS:
        models[name] = score_metrics(
            y,
            predictions[f"p_{name}"].to_numpy(),
            reference=reference,
            series=series,
            timestamps=predictions["timestamp"],
            horizon=horizon,
        )
    flushes = predictions[y == 1]
    models["lightgbm"]["direction_accuracy"] = direction_accuracy(
        flushes["direction"], flushes["p_long"].to_numpy()
    )
    no_alerts = np.zeros(len(y), bool)
    entry = {
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "n_test": len(y),
        "n_events": event_recall(y, no_alerts, series, predictions["timestamp"], horizon).n_events,
        "models": models,
    }
    if n_boot:
        entry["intervals"] = _intervals(predictions, n_boot, block_bars)
    return entry


def _intervals(predictions: pd.DataFrame, n_boot: int, block_bars: int) -> dict:
    """95 % block-bootstrap intervals for LightGBM's PR-AUC, Brier skill and its PR-AUC edge."""
    y = predictions["y"].to_numpy()
    p = predictions["p_lightgbm"].to_numpy()
    ref = predictions["p_climatology"].to_numpy()
    logistic = predictions["p_logistic"].to_numpy()
    blocks = time_blocks(predictions["timestamp"], block_bars)

    def statistics(i: np.ndarray) -> list[float]:
        lightgbm = pr_auc(y[i], p[i])
        return [lightgbm, brier_skill(y[i], p[i], ref[i]), lightgbm - pr_auc(y[i], logistic[i])]

    names = ("lightgbm_pr_auc", "lightgbm_brier_skill", "pr_auc_minus_logistic")
    intervals = block_bootstrap_cis(statistics, blocks, n_boot=n_boot)
    return {name: list(interval) for name, interval in zip(names, intervals, strict=True)}


@dataclass
class HorizonResult:
    """One horizon's out-of-sample predictions, fold table, LightGBM gain and JSON entry."""

    predictions: pd.DataFrame
    folds: pd.DataFrame
    gain: pd.Series
    entry: dict[str, Any]


def evaluate_horizon(
    dataset: Dataset,
    horizon: int,
    spec: EvalSpec,
    fit: FitSpec,
    on_fold: Callable[[], None] | None = None,
) -> HorizonResult:
    """Walk-forward predictions and metrics of one horizon (a unit of parallel work)."""
    rows = dataset.labelled(horizon)
    X = model_matrix(rows, dataset.features, symbols_of(dataset))
    preds, folds, gain = fold_predictions(rows, X, horizon, spec, fit, dataset.features, on_fold)
    entry = _metrics_for(preds, horizon, spec.n_boot, spec.block_bars)
    entry["n_folds"] = len(folds)
    entry["per_symbol"] = {
        str(symbol): _metrics_for(part, horizon, 0, spec.block_bars)
        for symbol, part in preds.groupby(SYMBOL, observed=True)
    }
    return HorizonResult(preds, folds, gain.sort_values(ascending=False), entry)


def _evaluate_horizon_alone(
    dataset: Dataset, horizon: int, spec: EvalSpec, fit: FitSpec
) -> HorizonResult:
    """`evaluate_horizon` in a worker process, with one thread for LightGBM and BLAS.

    Parallel workers must not oversubscribe the cores: OpenMP and OpenBLAS threads spin while
    they wait, so two workers with two threads each are slower than one worker.
    """
    single = replace(
        fit,
        flush_params={**fit.flush_params, "num_threads": 1},
        direction_params={**fit.direction_params, "num_threads": 1},
    )
    with threadpool_limits(limits=1):
        return evaluate_horizon(dataset, horizon, spec, single)


def evaluate(
    dataset: Dataset,
    spec: EvalSpec | None = None,
    fit: FitSpec | None = None,
    *,
    on_fold: Callable[[], None] | None = None,
    workers: int | None = None,
) -> Evaluation:
    """Walk-forward evaluation of every horizon in `spec` (symbols pooled).

    Horizons are independent, so with several horizons and cores they run in `workers`
    processes (default: one per core, at most one per horizon), each with one LightGBM
    thread: most of a fold's work (baselines, metrics, pandas) is single-threaded Python, and
    two OpenMP threads on a busy core spin rather than work.
    """
    spec = spec or EvalSpec()
    fit = fit or FitSpec()
    for h in spec.horizons:
        require_enough(dataset, h, spec.min_train + spec.retrain_every, spec.min_events)
    workers = min(len(spec.horizons), workers or os.cpu_count() or 1)
    if workers <= 1:
        results = [evaluate_horizon(dataset, h, spec, fit, on_fold) for h in spec.horizons]
    else:
        context = multiprocessing.get_context("spawn")  # fork is unsafe once OpenMP has run
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [
                pool.submit(_evaluate_horizon_alone, dataset, h, spec, fit) for h in spec.horizons
            ]
            results = []
            for future in futures:
                results.append(future.result())
                for _ in range(len(results[-1].folds)):
                    if on_fold:
                        on_fold()
    return Evaluation(
        predictions={h: r.predictions for h, r in zip(spec.horizons, results, strict=True)},
        folds=pd.concat([r.folds for r in results], ignore_index=True),
        report={str(h): r.entry for h, r in zip(spec.horizons, results, strict=True)},
        importance={h: r.gain for h, r in zip(spec.horizons, results, strict=True)},
    )


def count_folds(dataset: Dataset, spec: EvalSpec) -> int:
    """Folds over all horizons (for a progress bar)."""
    return sum(
        len(walk_forward(dataset.labelled(h)["timestamp"], spec.split(h))) for h in spec.horizons
    )


def symbols_of(dataset: Dataset) -> list[str]:
    """The symbol categories a model trained on `dataset` knows, sorted."""
    return sorted(dataset.table[SYMBOL].astype(str).unique())
