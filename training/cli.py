"""`flushcast train | evaluate | promote | rollback`: the contract other tools depend on.

Bad or insufficient data exits with code 2 and one line naming the problem; so does a
registry request that cannot be met (unknown version, refused promotion, nothing to roll back).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from flushcast.progress import ticker
from marketdata.cli import fail
from marketdata.errors import DataError

console = Console(width=None if sys.stdout.isatty() else 120)
"""Logs and CI are not terminals: give the metrics table room instead of rich's 80 columns."""

Store = Annotated[Path, typer.Option(help="Market data store (from ingest, fetch or simulate).")]
Symbols = Annotated[
    str | None, typer.Option(help="Comma-separated symbols (default: all in the store).")
]
Horizons = Annotated[str, typer.Option(help="Comma-separated horizons in hours.")]
Experiment = Annotated[str, typer.Option(help="MLflow experiment name.")]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."
    ),
]
LabelSource = Annotated[
    str,
    typer.Option(
        help="'liquidations' (the definition) or 'oi-drop' (documented proxy for sources "
        "without liquidation data; never chosen silently)."
    ),
]
Boot = Annotated[int, typer.Option(min=0, help="Block-bootstrap resamples for intervals.")]
RetrainEvery = Annotated[int, typer.Option(min=1, help="Bars between walk-forward retrains.")]
MinTrain = Annotated[int, typer.Option(min=1, help="Bars before the first test block.")]


def _parse_horizons(text: str) -> tuple[int, ...]:
    try:
        horizons = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"horizons must be whole hours, got {text!r}") from None
    if not horizons or min(horizons) < 1:
        raise typer.BadParameter(f"horizons must be positive whole hours, got {text!r}")
    return horizons


def _setup(store, symbols, horizons, label_source, n_boot, retrain_every, min_train):
    from training.dataset import load_dataset
    from training.evaluate import EvalSpec
    from training.labels import LabelSpec

    chosen = _parse_horizons(horizons)
    source = {"liquidations": "liquidations", "oi-drop": "oi_drop"}.get(label_source)
    if source is None:
        raise typer.BadParameter(
            f"--label-source must be liquidations or oi-drop, not {label_source!r}"
        )
    label = LabelSpec(horizons=chosen, source=source)
    wanted = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    dataset = load_dataset(store, wanted, label, show_progress=True)
    spec = EvalSpec(
        horizons=chosen, n_boot=n_boot, retrain_every=retrain_every, min_train=min_train
    )
    return dataset, spec


def print_metrics(document: dict) -> None:
    """The walk-forward metrics table: LightGBM beside every baseline, per horizon."""
    columns = {
        "pr_auc": "PR-AUC",
        "lift": "lift",
        "roc_auc": "ROC-AUC",
        "brier_skill": "Brier skill",
        "ece": "ECE",
        "precision_top5": "prec@5%",
        "recall_top5": "rec@5%",
        "event_recall": "event rec.",
        "median_lead_hours": "lead h",
    }
    for key, entry in document.items():
        if key == "meta":
            continue
        interval = entry.get("intervals", {}).get("lightgbm_pr_auc")
        ci = (
            f", LightGBM PR-AUC 95% CI {interval[0]:.3f}–{interval[1]:.3f}"
            if interval and None not in interval
            else ""
        )
        table = Table(
            *["model", *columns.values()],
            box=box.SIMPLE_HEAD,
            title=f"{key} h: base rate {entry['base_rate']:.2%}, {entry['n_test']} test bars, "
            f"{entry['n_events']} flush episodes, {entry['n_folds']} folds{ci}",
        )
        for model, values in entry["models"].items():
            table.add_row(model, *(_fmt(values[c]) for c in columns))
        console.print(table)
        accuracy = entry["models"]["lightgbm"].get("direction_accuracy")
        console.print(f"direction accuracy on true one-sided flushes ({key} h): {_fmt(accuracy)}")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def evaluate(
    store: Store,
    json_out: Annotated[Path, typer.Option("--json", help="Write the evaluation JSON here.")],
    symbols: Symbols = None,
    horizons: Horizons = "4,12,24",
    experiment: Experiment = "flushcast",
    tracking_uri: TrackingUri = None,
    label_source: LabelSource = "liquidations",
    n_boot: Boot = 200,
    retrain_every: RetrainEvery = 168,
    min_train: MinTrain = 720,
) -> None:
    """Walk-forward evaluation of LightGBM and the baselines; writes the evaluation JSON."""
    from models.lgbm import FitSpec
    from training.evaluate import count_folds
    from training.tracking import run_evaluate, write_json

    try:
        dataset, spec = _setup(
            store, symbols, horizons, label_source, n_boot, retrain_every, min_train
        )
        with ticker("walk-forward folds", count_folds(dataset, spec)) as tick:
            document, run_id = run_evaluate(
                dataset, spec, FitSpec(), experiment=experiment, uri=tracking_uri, on_fold=tick
            )
    except DataError as exc:
        raise fail(exc) from None
    write_json(json_out, document)
    print_metrics(document)
    console.print(f"evaluation JSON: {json_out}  (MLflow run {run_id})")


def train(
    store: Store,
    symbols: Symbols = None,
    horizons: Horizons = "4,12,24",
    experiment: Experiment = "flushcast",
    tracking_uri: TrackingUri = None,
    label_source: LabelSource = "liquidations",
    n_boot: Boot = 200,
    retrain_every: RetrainEvery = 168,
    min_train: MinTrain = 720,
    evaluate_first: Annotated[
        bool,
        typer.Option(
            "--evaluate/--no-evaluate",
            help="Run the walk-forward evaluation first (needed to promote without --force).",
        ),
    ] = True,
) -> None:
    """Train on everything in the store and register a new `flushcast` model version."""
    from models.lgbm import FitSpec
    from training.evaluate import count_folds
    from training.tracking import run_train

    try:
        dataset, spec = _setup(
            store, symbols, horizons, label_source, n_boot, retrain_every, min_train
        )
        total = count_folds(dataset, spec) if evaluate_first else 0
        with ticker("walk-forward folds", total) as tick:
            identity, document = run_train(
                dataset,
                spec,
                FitSpec(),
                experiment=experiment,
                uri=tracking_uri,
                evaluate_first=evaluate_first,
                on_fold=tick,
            )
    except DataError as exc:
        raise fail(exc) from None
    if document:
        print_metrics(document)
    console.print(
        f"registered {identity.name} version {identity.version} (MLflow run {identity.run_id})"
    )


def promote(
    version: Annotated[str, typer.Argument(help="Model version number to promote.")],
    force: Annotated[
        bool, typer.Option(help="Promote even if the gate refuses (recorded on the version).")
    ] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Move the `champion` alias to VERSION if it beats the champion's walk-forward metrics."""
    from training.registry import RegistryError
    from training.registry import promote as promote_version
    from training.tracking import tracking_uri as resolve

    try:
        decision = promote_version(version, force=force, tracking_uri=resolve(tracking_uri))
    except RegistryError as exc:
        raise fail(DataError(str(exc))) from None
    if not decision.promote:
        raise fail(DataError(f"version {version} not promoted: {decision.reason}"))
    console.print(f"version {version} is now the champion: {decision.reason}")


def rollback(tracking_uri: TrackingUri = None) -> None:
    """Give `champion` back to the previous champion (the `rollback` alias), swapping the two."""
    from training.registry import RegistryError
    from training.registry import rollback as roll_back
    from training.tracking import tracking_uri as resolve

    try:
        champion, previous = roll_back(tracking_uri=resolve(tracking_uri))
    except RegistryError as exc:
        raise fail(DataError(str(exc))) from None
    console.print(f"champion is version {champion} again; version {previous} kept as rollback")
