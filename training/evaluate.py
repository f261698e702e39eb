"""Walk-forward evaluation: every candidate, the champion and every baseline on the same folds.

`evaluate` runs the two passes of `training.walkforward` for every horizon (as tasks on
`common.engine`: `training.tasks`), then measures each model on the scored test rows, pooled
and within folds, and names the strongest baseline and the champion's
edge over it with block-bootstrap intervals: cascades hit every symbol at once and last hours,
so rows are far from independent and intervals must resample whole blocks of time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flushcast.common.engine import Engine, engine
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import Dataset
from flushcast.training.labels import LONG_FLUSH, SHORT_SQUEEZE
from flushcast.training.metrics import (
    Episodes,
    Ranked,
    block_bootstrap_cis,
    brier_skill,
    direction_accuracy,
    event_recall,
    score_metrics,
    time_blocks,
    within_block_edge_interval,
)
from flushcast.training.record import (
    DirectionRecord,
    EvaluationRecord,
    FoldExclusion,
    HorizonRecord,
    SymbolRecord,
)
from flushcast.training.tasks import walk_forward
from flushcast.training.walkforward import CHAMPION, DIRECTION_PREFIX, HorizonPredictions


@dataclass
class Evaluation:
    """Out-of-sample predictions per horizon, the fold table and the evaluation record."""

    horizons: dict[int, HorizonPredictions]
    record: EvaluationRecord

    @property
    def predictions(self) -> dict[int, pd.DataFrame]:
        return {h: r.frame for h, r in self.horizons.items()}

    @property
    def folds(self) -> pd.DataFrame:
        return pd.concat([r.folds for r in self.horizons.values()], ignore_index=True)

    @property
    def importance(self) -> dict[int, pd.Series]:
        """Total LightGBM gain per input over the folds, per horizon."""
        return {
            h: r.gain.sort_values(ascending=False)
            for h, r in self.horizons.items()
            if r.gain is not None
        }

    def long_predictions(self) -> pd.DataFrame:
        """Every horizon's out-of-sample rows in one frame (the `--predictions` parquet)."""
        frames = []
        for r in self.horizons.values():
            frame = r.frame.drop(columns=["direction"]).copy()
            frame["direction"] = r.frame["direction"].astype(str).replace("nan", None)
            frames.append(frame)
        out = pd.concat(frames, ignore_index=True)
        for key in ("symbol", "venue"):
            out[key] = out[key].astype(str)
        return out


def model_names(config: TrainingConfig) -> list[str]:
    """Every model the evaluation reports, candidates first, then baselines, then champion."""
    return [*config.fit.candidates, *config.evaluation.baselines, CHAMPION]


def _entry(
    frame: pd.DataFrame, horizon: int, names: Sequence[str]
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Counts and every model's metrics on one set of scored rows."""
    y = frame["y"].to_numpy()
    series = frame["symbol"].astype(str) + "@" + frame["venue"].astype(str)
    stamps = frame["timestamp"]
    blocks = frame["block"].to_numpy()
    reference = frame["p_climatology"].to_numpy() if "p_climatology" in frame else y.mean()
    episodes = Episodes.find(y, series, stamps, horizon)
    models = {}
    for name in names:
        models[name] = score_metrics(
            y,
            frame[f"p_{name}"].to_numpy(),
            reference=reference,
            series=series,
            timestamps=stamps,
            horizon=horizon,
            blocks=blocks,
            episodes=episodes,
        )
    flushes = frame[y == 1]
    accuracy = direction_accuracy(flushes["direction"], flushes["p_long"].to_numpy())
    for name in ("lightgbm", CHAMPION):
        if name in models:
            models[name]["direction_accuracy"] = accuracy
    no_alerts = np.zeros(len(y), bool)
    counts = {
        "base_rate": float(y.mean()) if len(y) else None,
        "n_test": len(y),
        "n_events": episodes.recall(no_alerts).n_events,
    }
    return counts, models


def _best(models: dict[str, dict[str, float]], baselines: Sequence[str], key: str) -> str | None:
    values = {b: models[b][key] for b in baselines if np.isfinite(models[b][key])}
    return max(values, key=values.__getitem__) if values else None


def _intervals(
    frame: pd.DataFrame,
    best: str | None,
    best_within: str | None,
    n_boot: int,
    block_hours: int,
    best_roc_within: str | None = None,
) -> dict[str, tuple[float, float]]:
    """95 % block-bootstrap intervals of the headline figures and edges (same resamples)."""
    y = frame["y"].to_numpy()
    champion = frame["p_champion"].to_numpy()
    reference = frame["p_climatology"].to_numpy() if "p_climatology" in frame else None
    blocks = frame["block"].to_numpy()
    columns = {c.removeprefix("p_"): frame[c].to_numpy() for c in frame if c.startswith("p_")}
    lgbm = columns.get("lightgbm")
    logit = columns.get("logistic") if lgbm is not None else None
    needed = ["champion", best, "lightgbm" if lgbm is not None else None]
    needed.append("logistic" if logit is not None else None)
    ranked = {name: Ranked(y, columns[name]) for name in needed if name is not None}
    # Each model's PR-AUC once per resample, then every figure from them.
    memo: dict[str, Any] = {"rows": None}

    def pr(name: str, i: np.ndarray) -> float:
        if memo["rows"] is not i:
            counts = np.bincount(i, minlength=len(y))
            memo.update(rows=i, values={m: r.pr_auc_of_counts(counts) for m, r in ranked.items()})
        return memo["values"][name]

    stats: dict[str, Callable[[np.ndarray], float]] = {
        "champion_pr_auc": lambda i: pr("champion", i),
    }
    if reference is not None:
        stats["champion_brier_skill"] = lambda i: brier_skill(y[i], champion[i], reference[i])
    if best is not None:
        stats["edge_over_best_baseline"] = lambda i: pr("champion", i) - pr(best, i)
    if lgbm is not None:
        stats["lightgbm_pr_auc"] = lambda i: pr("lightgbm", i)
        if reference is not None:
            stats["lightgbm_brier_skill"] = lambda i: brier_skill(y[i], lgbm[i], reference[i])
        if logit is not None:
            stats["pr_auc_minus_logistic"] = lambda i: pr("lightgbm", i) - pr("logistic", i)
    names = list(stats)
    resampled = block_bootstrap_cis(
        lambda i: [stats[n](i) for n in names],
        time_blocks(frame["timestamp"], block_hours),
        n_boot=n_boot,
    )
    intervals = dict(zip(names, resampled, strict=True))
    for key, other, metric in (
        ("edge_over_best_baseline_within_fold", best_within, "pr_auc"),
        ("edge_over_best_baseline_roc_within_fold", best_roc_within, "roc_auc"),
    ):
        if other is not None:
            intervals[key] = within_block_edge_interval(
                y, champion, columns[other], blocks, metric, n_boot=n_boot
            )
    return intervals


def horizon_record(
    result: HorizonPredictions, horizon: int, config: TrainingConfig
) -> HorizonRecord:
    """The record of one horizon: every model pooled and within folds, the best baseline, the
    edge over it with intervals, the folds left out and why, and the same per symbol."""
    frame = result.frame
    names = [n for n in model_names(config) if f"p_{n}" in frame]
    baselines = [b for b in config.evaluation.baselines if f"p_{b}" in frame]
    counts, models = _entry(frame, horizon, names)
    best = _best(models, baselines, "pr_auc")
    best_within = _best(models, baselines, "pr_auc_within_fold")
    best_roc_within = _best(models, baselines, "roc_auc_within_fold")
    folds = result.folds
    scored = folds[folds["status"] == "scored"]
    excluded = [
        FoldExclusion(fold=int(r.fold), test_start=r.test_start.isoformat(), reason=r.status)
        for r in folds[folds["status"] != "scored"].itertuples()
    ]
    entry: dict[str, Any] = {
        **counts,
        "n_folds": len(scored),
        "folds_excluded": excluded,
        "models": models,
        "best_baseline": best,
        "edge_over_best_baseline": models[CHAMPION]["pr_auc"] - models[best]["pr_auc"]
        if best
        else None,
        "best_baseline_within_fold": best_within,
        "edge_over_best_baseline_within_fold": models[CHAMPION]["pr_auc_within_fold"]
        - models[best_within]["pr_auc_within_fold"]
        if best_within
        else None,
        "best_baseline_roc_within_fold": best_roc_within,
        "edge_over_best_baseline_roc_within_fold": models[CHAMPION]["roc_auc_within_fold"]
        - models[best_roc_within]["roc_auc_within_fold"]
        if best_roc_within
        else None,
        "champion_choices": {str(k): int(v) for k, v in scored["champion"].value_counts().items()}
        if "champion" in scored
        else {},
        "champion_shares": {
            c.removeprefix("share_"): float(scored[c].fillna(0.0).mean())
            for c in scored
            if c.startswith("share_")
        },
        "direction": direction_record(
            frame,
            horizon,
            config,
            {
                c.removeprefix("direction_"): float(scored[c].fillna(0.0).mean())
                for c in scored
                if c.startswith("direction_")
            },
        ),
    }
    if config.evaluation.n_boot and len(frame):
        entry["intervals"] = _intervals(
            frame,
            best,
            best_within,
            config.evaluation.n_boot,
            config.evaluation.block_hours,
            best_roc_within,
        )
    per_symbol = {}
    for symbol, part in frame.groupby("symbol", observed=True):
        symbol_counts, symbol_models = _entry(part, horizon, names)
        per_symbol[str(symbol)] = SymbolRecord(**symbol_counts, models=symbol_models)
    entry["per_symbol"] = per_symbol
    return HorizonRecord.model_validate(_nan_to_none(entry))


def direction_record(
    frame: pd.DataFrame,
    horizon: int,
    config: TrainingConfig,
    made_of: dict[str, float] | None = None,
) -> DirectionRecord | None:
    """Direction accuracy of the call, of the direction trees alone and of each trivial rule on
    the true one-sided flush bars, with 95 % block-bootstrap intervals (blocks of time: a
    cascade's bars move together); `made_of`: the call's mean weights over the folds."""
    truth = frame["direction"].astype(object).to_numpy()
    sided = (frame["y"].to_numpy() == 1) & ((truth == LONG_FLUSH) | (truth == SHORT_SQUEEZE))
    if not sided.any():
        return None
    part = frame[sided]
    calls = {"call": part["p_long"].to_numpy(), "model": part["p_long_model"].to_numpy()}
    calls |= {
        c.removeprefix(DIRECTION_PREFIX): part[c].to_numpy()
        for c in part
        if c.startswith(DIRECTION_PREFIX)
    }
    direction = truth[sided]

    def accuracy(p: np.ndarray, rows: np.ndarray) -> float:
        known = np.isfinite(p[rows])
        return direction_accuracy(direction[rows][known], p[rows][known]) if known.any() else np.nan

    every = np.arange(len(part))
    values = {name: accuracy(p, every) for name, p in calls.items()}
    rules = {k: v for k, v in values.items() if k not in ("call", "model") and np.isfinite(v)}
    best = max(rules, key=rules.__getitem__) if rules else None
    series = part["symbol"].astype(str) + "@" + part["venue"].astype(str)
    episodes = event_recall(
        np.ones(len(part)), np.zeros(len(part), bool), series, part["timestamp"], horizon
    ).n_events
    intervals: dict[str, tuple[float, float]] = {}
    if config.evaluation.n_boot:
        names = list(calls)
        stats = [lambda i, p=calls[n]: accuracy(p, i) for n in names]
        if best is not None:
            for name in ("call", "model"):
                names.append(f"{name}_minus_{best}")
                mine, rule = calls[name], calls[best]
                stats.append(lambda i, a=mine, b=rule: accuracy(a, i) - accuracy(b, i))
            names.append("call_minus_model")
            stats.append(lambda i: accuracy(calls["call"], i) - accuracy(calls["model"], i))
        resampled = block_bootstrap_cis(
            lambda i: [f(i) for f in stats],
            time_blocks(part["timestamp"], config.evaluation.block_hours),
            n_boot=config.evaluation.n_boot,
        )
        intervals = dict(zip(names, resampled, strict=True))
    return DirectionRecord(
        n_sided=len(part),
        n_episodes=episodes,
        accuracy=_nan_to_none(values),
        intervals=_nan_to_none(intervals),
        best_rule=best,
        method=config.combination.direction,
        made_of=made_of or {},
    )


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_nan_to_none(v) for v in value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def evaluate(
    dataset: Dataset,
    config: TrainingConfig | None = None,
    *,
    on_fold: Callable[[], None] | None = None,
    runner: Engine | None = None,
) -> Evaluation:
    """Walk-forward evaluation of every horizon of the label (symbols pooled).

    The refits of pass 1 (one per fold) and then pass 2 with the metrics (one per horizon) are
    tasks on `runner` (default: `common.engine.engine()`, a local cluster unless
    `$FLUSHCAST_CLUSTER` says otherwise); the record is the same wherever they ran.
    """
    config = config or TrainingConfig(label=dataset.label)
    done = walk_forward(dataset, config, runner or engine(), on_fold=on_fold, then=horizon_record)
    record = EvaluationRecord(
        horizons={h: entry for h, (_, entry) in done.items()}, meta=dataset.meta(config)
    )
    return Evaluation({h: result for h, (result, _) in done.items()}, record)
