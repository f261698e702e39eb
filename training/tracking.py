"""MLflow runs for `train` and `evaluate`: parameters, metrics, artefacts, the registered bundle.

Every run records what is needed to reproduce and judge it: the resolved configuration (label,
walk-forward, fit, calibration, selection, evaluation), the feature set, the data span and
sources per series, the code version; per-horizon metrics of every model, pooled and within
folds, the champion's shares, direction beside its trivial rules; plots, the per-fold table
(with each fold's champion, its shares and inner scores), feature
importance, the evaluation JSON and the out-of-sample predictions as Parquet, so a new metric
or gate never needs the walk-forward rerun. `train` also logs the bundle as one pyfunc model
with a signature and input example, registers it as `flushcast`, and tags the new version with
its walk-forward summary, which the promotion gate reads.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from flushcast.common.atomic import write_atomic
from flushcast.common.engine import Engine
from flushcast.forecast.identity import ModelIdentity
from flushcast.models.bundle import Bundle
from flushcast.models.pyfunc import ARTIFACT, ENTRY
from flushcast.training import plots
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import Dataset
from flushcast.training.evaluate import Evaluation, evaluate, model_names
from flushcast.training.metrics import reliability_table
from flushcast.training.registry import MODEL_NAME, SCHEMA_LOCK, client, one_at_a_time
from flushcast.training.train import fit_bundle
from flushcast.training.tune import Tuned, tune

# Logging a model validates its input example by downloading it again; no progress bar for that.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "flushcast"
RELIABILITY_MIN_ROWS = 30
SYMBOL_METRICS = ("pr_auc", "roc_auc", "roc_auc_within_fold", "brier_skill", "event_recall")
PREDICTIONS = "predictions.parquet"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
POSTGRES_DRIVER = "postgresql+psycopg://"


def tracking_uri(explicit: str | None = None) -> str:
    """The tracking URI: the option, else MLFLOW_TRACKING_URI, else SQLite in the working dir.

    Every command resolves its URI here, so this is the one place where the PostgreSQL URI a
    user writes (`postgresql://user:pw@host/db`, as `psql` takes it) becomes the one SQLAlchemy
    can open with the installed driver, psycopg 3 (`postgresql+psycopg://`).
    """
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    for scheme in POSTGRES_SCHEMES:
        if uri.startswith(scheme):
            return POSTGRES_DRIVER + uri.removeprefix(scheme)
    return uri


def write_json(path: str | Path, document: dict[str, Any]) -> Path:
    """Write a JSON document atomically (strict JSON: no NaN)."""
    text = json.dumps(document, indent=1, allow_nan=False)
    write_atomic(Path(path), lambda tmp: tmp.write_text(text))
    return Path(path)


def write_predictions(path: str | Path, evaluation: Evaluation) -> Path:
    """The out-of-sample predictions (every horizon, every model) as Parquet, atomically."""
    frame = evaluation.long_predictions()
    write_atomic(Path(path), lambda tmp: frame.to_parquet(tmp, index=False))
    return Path(path)


def _metrics(evaluation: Evaluation) -> dict[str, float]:
    flat: dict[str, Any] = {}
    for h, entry in evaluation.record.horizons.items():
        for model, values in entry.models.items():
            for metric, value in values.model_dump().items():
                flat[f"{model}_{metric}_{h}h"] = value
        for symbol, part in entry.per_symbol.items():
            for metric in SYMBOL_METRICS:
                flat[f"{symbol}_champion_{metric}_{h}h"] = part.metric("champion", metric)
        flat[f"base_rate_{h}h"] = entry.base_rate
        flat[f"n_events_{h}h"] = entry.n_events
        flat[f"edge_over_best_baseline_{h}h"] = entry.edge_over_best_baseline
        flat[f"edge_over_best_baseline_within_fold_{h}h"] = (
            entry.edge_over_best_baseline_within_fold
        )
        flat[f"edge_over_best_baseline_roc_within_fold_{h}h"] = (
            entry.edge_over_best_baseline_roc_within_fold
        )
        for name, share in entry.champion_shares.items():
            flat[f"champion_share_{name}_{h}h"] = share
        if entry.direction is not None:
            for name, value in entry.direction.accuracy.items():
                flat[f"direction_accuracy_{name}_{h}h"] = value
    return {k: float(v) for k, v in flat.items() if isinstance(v, int | float) and math.isfinite(v)}


def _params(dataset: Dataset, config: TrainingConfig) -> dict[str, Any]:
    params: dict[str, Any] = {
        **config.flat(),
        **dataset.span(),
        "features": len(dataset.features),
        "fingerprint": dataset.fingerprint(config),
        "code_version": dataset.meta(config)["code_version"],
    }
    for key, info in dataset.series.items():
        params[f"data_{key.replace('@', '.')}"] = (
            f"{info['first']}..{info['last']} ({info['rows']} bars)"
        )
    return params


def _log_evaluation_artifacts(evaluation: Evaluation, config: TrainingConfig, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "evaluation.json", evaluation.record.to_document())
    write_predictions(folder / PREDICTIONS, evaluation)
    evaluation.folds.to_csv(folder / "folds.csv", index=False)
    for h, preds in evaluation.predictions.items():
        y = preds["y"].to_numpy()
        scores = {m: preds[f"p_{m}"].to_numpy() for m in model_names(config) if f"p_{m}" in preds}
        # Sparse bins (a handful of rows at high forecasts) are noise, not calibration evidence.
        curves = {
            m: table[table["count"] >= RELIABILITY_MIN_ROWS]
            for m, table in ((m, reliability_table(y, p, n_bins=20)) for m, p in scores.items())
        }
        plots.save_png(
            plots.reliability_plot(curves, f"Reliability, {h} h (walk-forward)"),
            folder / f"reliability_{h}h.png",
        )
        if y.any():  # no flush in the test rows (short daily sets): no curve to draw
            plots.save_png(
                plots.pr_curves(y, scores, f"Precision-recall, {h} h"), folder / f"pr_{h}h.png"
            )
        importance = evaluation.importance.get(h)
        if importance is not None:
            importance.rename("gain").to_csv(folder / f"importance_{h}h.csv")
            plots.save_png(
                plots.feature_importance(importance, f"LightGBM gain over folds, {h} h"),
                folder / f"importance_{h}h.png",
            )
        folds = evaluation.folds
        scored = folds[(folds["horizon"] == h) & (folds["status"] == "scored")]
        if len(scored):
            plots.save_png(
                plots.fold_timeline(scored, f"Champion PR-AUC per fold, {h} h"),
                folder / f"folds_{h}h.png",
            )
    mlflow.log_artifacts(str(folder), "evaluation")


def _shap_artifacts(bundle: Bundle, dataset: Dataset, folder: Path, sample: int = 3000) -> None:
    """Beeswarm of the deployed flush models' exact contributions on the latest rows."""
    for h in bundle.horizons:
        rows = dataset.labelled(h).tail(sample)
        contributions = bundle.contributions(rows, h)
        values = contributions[bundle.columns].to_numpy()
        X = pd.DataFrame(bundle.matrix(rows), columns=bundle.columns)
        plots.save_png(
            plots.shap_beeswarm(values, X, f"Contributions, flush model {h} h"),
            folder / f"shap_beeswarm_{h}h.png",
        )


def _experiment(name: str, uri: str | None) -> None:
    """Select (or create) the experiment; with SQLite, artefacts live beside the database file."""
    resolved = tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    with one_at_a_time(resolved, SCHEMA_LOCK):  # the first use of a new database creates it
        missing = mlflow.get_experiment_by_name(name) is None
    if missing and resolved.startswith("sqlite:///"):
        database = Path(resolved.removeprefix("sqlite:///")).resolve()
        try:
            mlflow.create_experiment(
                name, artifact_location=(database.parent / "mlartifacts").as_uri()
            )
        except MlflowException as exc:  # created by another process meanwhile
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    experiment = mlflow.set_experiment(name)
    # When another process created the experiment in the same instant (two trainings on one new
    # registry), MLflow returns it without selecting it: select it by id.
    mlflow.set_experiment(experiment_id=experiment.experiment_id)


def _evaluate_and_log(
    dataset: Dataset,
    config: TrainingConfig,
    folder: Path,
    on_fold: Callable[[], None] | None,
    runner: Engine | None,
) -> Evaluation:
    """Walk-forward evaluation logged into the active run (metrics, artefacts)."""
    evaluation = evaluate(dataset, config, on_fold=on_fold, runner=runner)
    mlflow.log_metrics(_metrics(evaluation))
    _log_evaluation_artifacts(evaluation, config, folder)
    return evaluation


def _start(dataset: Dataset, config: TrainingConfig) -> None:
    mlflow.log_params(_params(dataset, config))
    mlflow.log_dict(config.model_dump(mode="json"), "config.json")


def run_evaluate(
    dataset: Dataset,
    config: TrainingConfig,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    uri: str | None = None,
    on_fold: Callable[[], None] | None = None,
    name: str = "evaluate",
    runner: Engine | None = None,
) -> tuple[Evaluation, str]:
    """Walk-forward evaluation in its own MLflow run (`name`); the evaluation and the run id."""
    _experiment(experiment, uri)
    with mlflow.start_run(run_name=name, tags={"flushcast.command": "evaluate"}) as run:
        _start(dataset, config)
        with tempfile.TemporaryDirectory() as tmp:
            evaluation = _evaluate_and_log(dataset, config, Path(tmp), on_fold, runner)
        return evaluation, run.info.run_id


def run_tune(
    dataset: Dataset,
    config: TrainingConfig,
    runner: Engine,
    *,
    trials: int,
    cutoff: pd.Timestamp | None,
    out: Path,
    experiment: str = DEFAULT_EXPERIMENT,
    uri: str | None = None,
) -> tuple[Tuned, str]:
    """An Optuna study in its own MLflow run: the study (SQLite), its trials and the tuned
    configuration are the run's artefacts; the configuration is also written to `out`."""
    _experiment(experiment, uri)
    with mlflow.start_run(run_name="tune", tags={"flushcast.command": "tune"}) as run:
        _start(dataset, config)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            tuned = tune(
                dataset, config, runner, trials=trials, storage=folder / "study.db", cutoff=cutoff
            )
            tuned.trials.to_csv(folder / "trials.csv", index=False)
            text = tuned.yaml()
            (folder / "tuned.yaml").write_text(text)
            mlflow.log_artifacts(str(folder), "tuning")
        write_atomic(Path(out), lambda tmp: tmp.write_text(text))
        mlflow.log_params({"tune.cutoff": tuned.cutoff.isoformat(), "tune.trials": trials})
        mlflow.log_metrics({"tune.inner_best": tuned.best, "tune.inner_default": tuned.default})
        return tuned, run.info.run_id


def run_train(
    dataset: Dataset,
    config: TrainingConfig,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    uri: str | None = None,
    evaluate_first: bool = True,
    on_fold: Callable[[], None] | None = None,
    name: str = "train",
    runner: Engine | None = None,
) -> tuple[ModelIdentity, Evaluation | None]:
    """Evaluate (walk-forward), fit the bundle on everything, log and register it.

    Returns the new version's identity and the evaluation (None if skipped; such a version can
    only be promoted with --force).
    """
    _experiment(experiment, uri)
    with mlflow.start_run(run_name=name, tags={"flushcast.command": "train"}) as run:
        _start(dataset, config)
        evaluation = None
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if evaluate_first:
                evaluation = _evaluate_and_log(
                    dataset, config, folder / "evaluation", on_fold, runner
                )
            bundle = fit_bundle(dataset, config, evaluation, runner)
            bundle_dir = bundle.save(folder / ARTIFACT)
            (folder / "plots").mkdir()
            _shap_artifacts(bundle, dataset, folder / "plots")
            mlflow.log_artifacts(str(folder / "plots"), "shap")
            mlflow.log_dict(
                {"features": bundle.features, "lookbacks": bundle.lookbacks}, "feature_spec.json"
            )
            info = _log_model(bundle, bundle_dir, dataset)
        version = info.registered_model_version
        c = client()
        if evaluation is not None:
            c.set_model_version_tag(
                MODEL_NAME, str(version), "evaluation", json.dumps(evaluation.record.summary())
            )
        c.set_model_version_tag(
            MODEL_NAME, str(version), "fingerprint", dataset.fingerprint(config)
        )
        identity = ModelIdentity(
            model_name=MODEL_NAME, model_version=str(version), run_id=run.info.run_id
        )
        return identity, evaluation


def _log_model(bundle: Bundle, bundle_dir: Path, dataset: Dataset) -> Any:
    example = dataset.table.tail(5)[bundle.columns].copy()
    example["symbol"] = example["symbol"].astype(str)
    example = example.reset_index(drop=True)
    requirements = [
        f"{package}=={metadata.version(package)}"
        for package in ("lightgbm", "numpy", "pandas", "scikit-learn", "mlflow")
    ]
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(ENTRY),
        artifacts={ARTIFACT: str(bundle_dir)},
        signature=infer_signature(example, bundle.predict(example)),
        input_example=example,
        registered_model_name=MODEL_NAME,
        pip_requirements=requirements,
    )
