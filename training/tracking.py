"""MLflow runs for `train` and `evaluate`: parameters, metrics, artefacts, the registered bundle.

Every run records what is needed to reproduce and judge it: the label definition, the split and
fit parameters, the feature set and lookbacks, the data span and sources per series, the code
version; per-horizon metrics of the model and every baseline; plots, the per-fold table, feature
importance and the evaluation JSON. `train` also logs the bundle as one pyfunc model with a
signature and input example, registers it as `flushcast`, and tags the new version with its
walk-forward summary, which the promotion gate reads.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.models import infer_signature

from marketdata.atomic import write_atomic
from models.bundle import Bundle
from models.lgbm import FitSpec
from models.pyfunc import ARTIFACT, ENTRY
from training import plots
from training.dataset import Dataset
from training.evaluate import MODELS, EvalSpec, Evaluation, evaluate
from training.metrics import reliability_table
from training.registry import MODEL_NAME, ModelIdentity, client
from training.train import fit_bundle

# Logging a model validates its input example by downloading it again; no progress bar for that.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "flushcast"
RELIABILITY_MIN_ROWS = 30
SUMMARY_METRICS = ("pr_auc", "roc_auc", "brier_skill", "ece", "event_recall")


def tracking_uri(explicit: str | None = None) -> str:
    """The tracking URI: the option, else MLFLOW_TRACKING_URI, else SQLite in the working dir."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def code_version() -> str:
    """The git commit of the checkout (with `-dirty` for local changes), else the version."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return metadata.version("flushcast")


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluation_document(
    evaluation: Evaluation, dataset: Dataset, spec: EvalSpec, fit: FitSpec
) -> dict[str, Any]:
    """The evaluation JSON: per horizon (string keys) the contract fields, plus how it was made."""
    doc: dict[str, Any] = {key: entry for key, entry in evaluation.report.items()}
    doc["meta"] = {
        "fingerprint": dataset.fingerprint(),
        "code_version": code_version(),
        "series": dataset.series,
        **dataset.span(),
        "label": dataset.label.to_params(),
        "evaluation": spec.to_params(),
        "fit": fit.to_params(),
        "models": list(MODELS),
    }
    return _finite(doc)


def summary(document: dict[str, Any]) -> dict[str, Any]:
    """The compact walk-forward summary kept on a model version (the promotion gate's input)."""
    horizons = {
        key: {
            "base_rate": entry["base_rate"],
            **{m: entry["models"]["lightgbm"][m] for m in SUMMARY_METRICS},
            "logistic_pr_auc": entry["models"]["logistic"]["pr_auc"],
        }
        for key, entry in document.items()
        if key != "meta"
    }
    return {"fingerprint": document["meta"]["fingerprint"], "horizons": horizons}


def write_json(path: str | Path, document: dict[str, Any]) -> Path:
    """Write a JSON document atomically (strict JSON: no NaN)."""
    text = json.dumps(document, indent=1, allow_nan=False)
    write_atomic(Path(path), lambda tmp: tmp.write_text(text))
    return Path(path)


def _metrics(document: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for key, entry in document.items():
        if key == "meta":
            continue
        for model, values in entry["models"].items():
            for metric, value in values.items():
                flat[f"{model}_{metric}_{key}h"] = value
        for symbol, part in entry["per_symbol"].items():
            for metric in SUMMARY_METRICS:
                flat[f"{symbol}_lightgbm_{metric}_{key}h"] = part["models"]["lightgbm"][metric]
        flat[f"base_rate_{key}h"] = entry["base_rate"]
        flat[f"n_events_{key}h"] = entry["n_events"]
    return {k: float(v) for k, v in flat.items() if v is not None and math.isfinite(v)}


def _params(dataset: Dataset, spec: EvalSpec, fit: FitSpec) -> dict[str, Any]:
    params: dict[str, Any] = {
        **dataset.label.to_params(),
        **spec.to_params(),
        **fit.to_params(),
        **dataset.span(),
        "features": len(dataset.features),
        "code_version": code_version(),
        "fingerprint": dataset.fingerprint(),
    }
    for key, info in dataset.series.items():
        params[f"data_{key.replace('@', '.')}"] = (
            f"{info['first']}..{info['last']} ({info['rows']} bars)"
        )
    return params


def _log_evaluation_artifacts(evaluation: Evaluation, document: dict, folder: Path) -> None:
    write_json(folder / "evaluation.json", document)
    evaluation.folds.to_csv(folder / "folds.csv", index=False)
    for h, preds in evaluation.predictions.items():
        y = preds["y"].to_numpy()
        scores = {m: preds[f"p_{m}"].to_numpy() for m in MODELS}
        # Sparse bins (a handful of rows at high forecasts) are noise, not calibration evidence.
        curves = {
            m: table[table["count"] >= RELIABILITY_MIN_ROWS]
            for m, table in ((m, reliability_table(y, p, n_bins=20)) for m, p in scores.items())
        }
        plots.save_png(
            plots.reliability_plot(curves, f"Reliability, {h} h (walk-forward)"),
            folder / f"reliability_{h}h.png",
        )
        plots.save_png(
            plots.pr_curves(y, scores, f"Precision-recall, {h} h"), folder / f"pr_{h}h.png"
        )
        importance = evaluation.importance[h]
        importance.rename("gain").to_csv(folder / f"importance_{h}h.csv")
        plots.save_png(
            plots.feature_importance(importance, f"LightGBM gain over folds, {h} h"),
            folder / f"importance_{h}h.png",
        )
        folds = evaluation.folds[evaluation.folds["horizon"] == h]
        plots.save_png(
            plots.fold_timeline(folds, f"PR-AUC per fold, {h} h"), folder / f"folds_{h}h.png"
        )
    mlflow.log_artifacts(str(folder), "evaluation")


def _shap_artifacts(bundle: Bundle, dataset: Dataset, folder: Path, sample: int = 3000) -> None:
    """Beeswarm of the deployed flush models' exact TreeSHAP values on the latest rows."""
    for h in bundle.horizons:
        rows = dataset.labelled(h).tail(sample)
        contributions = bundle.contributions(rows, h)
        X = bundle.matrix(rows)
        values = contributions[bundle.columns].to_numpy()
        plots.save_png(
            plots.shap_beeswarm(values, X, f"SHAP values, flush model {h} h"),
            folder / f"shap_beeswarm_{h}h.png",
        )


def _experiment(name: str, uri: str | None) -> None:
    """Select (or create) the experiment; with SQLite, artefacts live beside the database file."""
    resolved = tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    if mlflow.get_experiment_by_name(name) is None and resolved.startswith("sqlite:///"):
        database = Path(resolved.removeprefix("sqlite:///")).resolve()
        mlflow.create_experiment(name, artifact_location=(database.parent / "mlartifacts").as_uri())
    mlflow.set_experiment(name)


def _evaluate_and_log(
    dataset: Dataset,
    spec: EvalSpec,
    fit: FitSpec,
    folder: Path,
    on_fold: Callable[[], None] | None,
) -> dict[str, Any]:
    """Walk-forward evaluation logged into the active run (metrics, artefacts); its document."""
    evaluation = evaluate(dataset, spec, fit, on_fold=on_fold)
    document = evaluation_document(evaluation, dataset, spec, fit)
    mlflow.log_metrics(_metrics(document))
    _log_evaluation_artifacts(evaluation, document, folder)
    return document


def run_evaluate(
    dataset: Dataset,
    spec: EvalSpec,
    fit: FitSpec,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    uri: str | None = None,
    on_fold: Callable[[], None] | None = None,
) -> tuple[dict[str, Any], str]:
    """Walk-forward evaluation in its own MLflow run; returns the JSON document and the run id."""
    _experiment(experiment, uri)
    with mlflow.start_run(run_name="evaluate", tags={"flushcast.command": "evaluate"}) as run:
        mlflow.log_params(_params(dataset, spec, fit))
        with tempfile.TemporaryDirectory() as tmp:
            document = _evaluate_and_log(dataset, spec, fit, Path(tmp), on_fold)
        return document, run.info.run_id


def run_train(
    dataset: Dataset,
    spec: EvalSpec,
    fit: FitSpec,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    uri: str | None = None,
    evaluate_first: bool = True,
    on_fold: Callable[[], None] | None = None,
) -> tuple[ModelIdentity, dict[str, Any] | None]:
    """Evaluate (walk-forward), fit the bundle on everything, log and register it.

    Returns the new version's identity and the evaluation document (None if skipped; such a
    version can only be promoted with --force).
    """
    _experiment(experiment, uri)
    with mlflow.start_run(run_name="train", tags={"flushcast.command": "train"}) as run:
        mlflow.log_params(_params(dataset, spec, fit))
        document = None
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if evaluate_first:
                document = _evaluate_and_log(dataset, spec, fit, folder / "evaluation", on_fold)
            bundle = fit_bundle(dataset, spec, fit, summary(document) if document else None)
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
        if document:
            c.set_model_version_tag(
                MODEL_NAME, str(version), "evaluation", json.dumps(summary(document))
            )
        c.set_model_version_tag(MODEL_NAME, str(version), "fingerprint", dataset.fingerprint())
        return ModelIdentity(MODEL_NAME, str(version), run.info.run_id), document


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
