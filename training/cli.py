"""`flushcast train | evaluate | promote | rollback`: the contract other tools depend on.

Bad or insufficient data exits with code 2 and one line naming the problem; so does a bad
configuration key and a registry request that cannot be met (unknown version, refused
promotion, nothing to roll back).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Column, Table

from flushcast.common.cli import fail
from flushcast.common.errors import DataError
from flushcast.common.progress import ticker

if TYPE_CHECKING:
    from flushcast.training.config import TrainingConfig
    from flushcast.training.record import EvaluationRecord

console = Console(width=None if sys.stdout.isatty() else 140)
"""Logs and CI are not terminals: give the metrics table room instead of rich's 80 columns."""

Store = Annotated[
    list[Path],
    typer.Option(
        help="Market data store (from ingest, fetch or simulate); repeat to pool several of "
        "one bar size."
    ),
]
TrainStore = Annotated[
    list[Path] | None,
    typer.Option(
        help="A store that only trains (any bar size; repeat for several): the walk-forward "
        "tests on --store alone (a model learned on years of daily bars, or on another "
        "vendor, judged on this one's own folds)."
    ),
]
Symbols = Annotated[
    str | None, typer.Option(help="Comma-separated symbols (default: all in the store).")
]
Horizons = Annotated[
    str | None, typer.Option(help="Comma-separated horizons in hours (default: the config's).")
]
Experiment = Annotated[str, typer.Option(help="MLflow experiment name.")]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."
    ),
]
LabelSource = Annotated[
    str | None,
    typer.Option(
        help="'liquidations' (the definition) or 'oi-drop' (documented proxy for sources "
        "without liquidation data; never chosen silently)."
    ),
]
LabelName = Annotated[
    str | None,
    typer.Option("--label", help="A label variant by name (docs/label.md); default: the config's."),
]
Boot = Annotated[int | None, typer.Option(min=0, help="Block-bootstrap resamples for intervals.")]
RetrainEvery = Annotated[int | None, typer.Option(min=1, help="Hours between walk-forward refits.")]
TestBlock = Annotated[
    int | None,
    typer.Option(min=1, help="Hours per test block for within-fold ranking (default: a refit)."),
]
MinTrain = Annotated[int | None, typer.Option(min=1, help="Hours before the first test block.")]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="Training configuration YAML (conf/default.yaml).")
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one configuration key: --set fit.lightgbm.num_leaves=7."),
]
Cluster = Annotated[
    str | None,
    typer.Option(
        help="Where the walk-forward's tasks run: 'local' (a Dask LocalCluster, one worker per "
        "core; the default), 'inprocess', or a Dask scheduler's address such as "
        "tcp://127.0.0.1:8786 (default: $FLUSHCAST_CLUSTER, else local)."
    ),
]
Schema = Annotated[
    bool, typer.Option("--schema", help="Print the configuration's JSON schema and exit.")
]

TABLE = (
    "pr_auc",
    "lift",
    "roc_auc",
    "roc_auc_within_fold",
    "lift_within_fold",
    "brier_skill",
    "ece",
    "precision_top5",
    "event_recall",
)
"""The columns of the printed table (all metrics are in the JSON)."""


def cli_config(
    config_file: Path | None,
    sets: list[str] | None,
    label_name: str | None,
    horizons: str | None,
    label_source: str | None,
    n_boot: int | None,
    retrain_every: int | None,
    test_block: int | None,
    min_train: int | None,
) -> TrainingConfig:
    """The configuration file, then `--set`, then the named options (which win)."""
    from flushcast.training.config import load, parse_override
    from flushcast.training.labels import label_named

    overrides = dict(parse_override(text) for text in sets or [])
    if label_name is not None:
        overrides = {"label": label_named(label_name).model_dump(), **overrides}
    if horizons is not None:
        overrides["label.horizons"] = _parse_horizons(horizons)
    if label_source is not None:
        source = {"liquidations": "liquidations", "oi-drop": "oi_drop"}.get(label_source)
        if source is None:
            raise typer.BadParameter(
                f"--label-source must be liquidations or oi-drop, not {label_source!r}"
            )
        overrides["label.source"] = source
    named = {
        "evaluation.n_boot": n_boot,
        "walk_forward.retrain_every_hours": retrain_every,
        "walk_forward.test_block_hours": test_block,
        "walk_forward.min_train_hours": min_train,
    }
    overrides.update({k: v for k, v in named.items() if v is not None})
    return load(config_file, overrides)


OPTIONS = {
    "horizon": "--horizons",
    "retrain_every": "--retrain-every",
    "test_block": "--test-block",
    "min_train": "--min-train",
    "symbol": "--symbols",
    "store": "--store",
    "label": "--label",
}
"""The command-line option behind a problem a DataError names by its field."""


def _as_option(exc: DataError) -> DataError:
    """A problem with an option's value names the option (`--horizons: ...`), not a column."""
    option = OPTIONS.get(exc.column or "")
    if option is None or exc.file is not None:
        return exc
    return DataError(f"{option}: {exc.problem}")


def run_name(command: str, stores: list[Path], config: TrainingConfig) -> str:
    """An MLflow run's name: what it was made of, readable in the run list
    (`train store-4h v2 4/12/24h`), not the command alone."""
    label = config.label
    horizons = "/".join(str(h) for h in label.horizons)
    return f"{command} {'+'.join(Path(s).name for s in stores)} {label.name} {horizons}h"


def _parse_horizons(text: str) -> list[int]:
    try:
        horizons = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"horizons must be whole hours, got {text!r}") from None
    if not horizons or min(horizons) < 1:
        raise typer.BadParameter(f"horizons must be positive whole hours, got {text!r}")
    return horizons


def cli_dataset(
    stores: list[Path], train_stores: list[Path] | None, symbols: str | None, config, runner=None
):
    """The stores as `evaluate`, `train` and `tune` read them (`--store`, `--train-store`,
    `--symbols`), learning from the configuration's feature families, with the simulated
    history the configuration adds (`augment`; a line says when it was added)."""
    from flushcast.training.augment import describe
    from flushcast.training.dataset import load_dataset, select_features

    wanted = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    dataset = load_dataset(
        stores,
        wanted,
        config.label,
        train_stores=train_stores or (),
        augment=config.augment,
        show_progress=True,
        runner=runner,
    )
    if dataset.augmented is not None:
        console.print(describe(dataset.augmented), highlight=False)
    return select_features(dataset, config)


def _print_schema() -> None:
    from flushcast.training.config import TrainingConfig

    console.print_json(json.dumps(TrainingConfig.model_json_schema()))


def print_metrics(record: EvaluationRecord) -> None:
    """Per horizon: every model pooled and within folds, the best baseline and the edge."""
    from flushcast.training.metrics import METRICS, WITHIN_FOLD_NOTE

    labels = {m.key: m.label for m in METRICS}
    for h, entry in sorted(record.horizons.items()):
        excluded = f", {len(entry.folds_excluded)} left out" if entry.folds_excluded else ""
        table = Table(
            Column("model", no_wrap=True, min_width=max(map(len, entry.models))),
            *(Column(labels[c], justify="right") for c in TABLE),
            box=box.SIMPLE_HEAD,
            title=f"{h} h: base rate {_pct(entry.base_rate)}, {entry.n_test} test bars, "
            f"{entry.n_events} flush episodes, {entry.n_folds} folds scored{excluded}",
        )
        for model, values in entry.models.items():
            style = "bold" if model == "champion" else None
            table.add_row(model, *(_fmt(getattr(values, c)) for c in TABLE), style=style)
        console.print(table)
        for line in _verdict(entry):
            console.print(line)
    console.print(f"[dim]{WITHIN_FOLD_NOTE}[/]")
    console.print(f"[dim]columns: {legend(TABLE)}[/]", highlight=False)


def _verdict(entry) -> list[str]:
    from flushcast.training.record import champion_made_of

    lines = []
    choices = ", ".join(f"{k} {v}" for k, v in entry.champion_choices.items())
    lines.append(f"  champion per fold (inner walk-forward): {choices or '–'}")
    shares = champion_made_of(entry.champion_shares, entry.champion_choices)
    lines.append(f"  champion made of (mean share over folds): {shares or '–'}")
    for label, best, edge, key in (
        (
            "pooled PR-AUC",
            entry.best_baseline,
            entry.edge_over_best_baseline,
            "edge_over_best_baseline",
        ),
        (
            "PR-AUC within folds",
            entry.best_baseline_within_fold,
            entry.edge_over_best_baseline_within_fold,
            "edge_over_best_baseline_within_fold",
        ),
        (
            "ROC-AUC within folds",
            entry.best_baseline_roc_within_fold,
            entry.edge_over_best_baseline_roc_within_fold,
            "edge_over_best_baseline_roc_within_fold",
        ),
    ):
        interval = entry.intervals.get(key)
        ci = (
            f" (95 % CI {interval[0]:+.4f} … {interval[1]:+.4f})"
            if interval and None not in interval
            else ""
        )
        lines.append(f"  {label}: strongest baseline {best or '–'}; {edge_words(edge)}{ci}")
    lines.append(_direction_line(entry.direction))
    return lines


def _direction_line(direction) -> str:
    """Direction accuracy of the call (and what it is made of), of the direction trees alone
    and of each trivial rule, with 95 % intervals."""
    from flushcast.models.direction import made_of

    if direction is None:
        return "  direction accuracy on true one-sided flushes: – (none scored)"

    def cell(name: str) -> str:
        interval = direction.intervals.get(name)
        ci = f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval and None not in interval else ""
        return f"{name} {_fmt(direction.accuracy.get(name))}{ci}"

    rules = ", ".join(cell(n) for n in direction.accuracy if n not in ("call", "model"))
    return (
        f"  direction accuracy on {direction.n_sided} one-sided flush bars "
        f"({direction.n_episodes} episodes): {cell('call')} "
        f"({made_of(direction.made_of) or 'trees alone'}); "
        f"{cell('model')}; trivial rules: {rules}"
    )


def edge_words(edge: float | None) -> str:
    """The champion's edge over a baseline as a sentence that is true whatever its sign."""
    if edge is None:
        return "no edge can be computed"
    if edge > 0:
        return f"champion beats it by {edge:.4f}"
    if edge < 0:
        return f"champion falls short of it by {-edge:.4f}"
    return "champion ties it"


def legend(keys: tuple[str, ...]) -> str:
    """What each column heading of the printed table means (from the one metric table)."""
    from flushcast.training.metrics import METRICS

    return "; ".join(f"{m.label}: {m.description}" for m in METRICS if m.key in keys)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def evaluate(
    store: Store,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json", help="Also write the evaluation JSON here (the MLflow run always has it)."
        ),
    ] = None,
    train_store: TrainStore = None,
    predictions: Annotated[
        Path | None,
        typer.Option(help="Write the out-of-sample predictions (Parquet) here."),
    ] = None,
    symbols: Symbols = None,
    horizons: Horizons = None,
    label_name: LabelName = None,
    experiment: Experiment = "flushcast",
    tracking_uri: TrackingUri = None,
    label_source: LabelSource = None,
    n_boot: Boot = None,
    retrain_every: RetrainEvery = None,
    test_block: TestBlock = None,
    min_train: MinTrain = None,
    config_file: ConfigFile = None,
    sets: Sets = None,
    cluster: Cluster = None,
    schema: Schema = False,
) -> None:
    """Walk-forward evaluation of the candidates, the champion and every baseline."""
    if schema:
        _print_schema()
        return
    from flushcast.common.engine import engine
    from flushcast.training.tasks import count_folds
    from flushcast.training.tracking import run_evaluate, write_json, write_predictions

    try:
        config = cli_config(
            config_file,
            sets,
            label_name,
            horizons,
            label_source,
            n_boot,
            retrain_every,
            test_block,
            min_train,
        )
        runner = engine(cluster)
        dataset = cli_dataset(store, train_store, symbols, config, runner)
        with ticker("walk-forward folds", count_folds(dataset, config)) as tick:
            evaluation, run_id = run_evaluate(
                dataset,
                config,
                experiment=experiment,
                uri=tracking_uri,
                on_fold=tick,
                name=run_name("evaluate", store, config),
                runner=runner,
            )
    except DataError as exc:
        raise fail(_as_option(exc)) from None
    if json_out is not None:
        write_json(json_out, evaluation.record.to_document())
    if predictions is not None:
        write_predictions(predictions, evaluation)
    print_metrics(evaluation.record)
    where = json_out if json_out is not None else "in the run's artefacts (--json writes a copy)"
    console.print(f"evaluation JSON: {where}  (MLflow run {run_id})")
    if predictions is not None:
        console.print(f"out-of-sample predictions: {predictions}")


def train(
    store: Store,
    train_store: TrainStore = None,
    symbols: Symbols = None,
    horizons: Horizons = None,
    label_name: LabelName = None,
    experiment: Experiment = "flushcast",
    tracking_uri: TrackingUri = None,
    label_source: LabelSource = None,
    n_boot: Boot = None,
    retrain_every: RetrainEvery = None,
    test_block: TestBlock = None,
    min_train: MinTrain = None,
    config_file: ConfigFile = None,
    sets: Sets = None,
    cluster: Cluster = None,
    schema: Schema = False,
    evaluate_first: Annotated[
        bool,
        typer.Option(
            "--evaluate/--no-evaluate",
            help="Run the full walk-forward evaluation first (needed to promote without --force).",
        ),
    ] = True,
) -> None:
    """Train on everything in the store and register a new `flushcast` model version."""
    if schema:
        _print_schema()
        return
    from flushcast.common.engine import engine
    from flushcast.training.tasks import count_folds
    from flushcast.training.tracking import run_train

    try:
        config = cli_config(
            config_file,
            sets,
            label_name,
            horizons,
            label_source,
            n_boot,
            retrain_every,
            test_block,
            min_train,
        )
        runner = engine(cluster)
        dataset = cli_dataset(store, train_store, symbols, config, runner)
        total = count_folds(dataset, config) if evaluate_first else 0
        with ticker("walk-forward folds", total) as tick:
            identity, evaluation = run_train(
                dataset,
                config,
                experiment=experiment,
                uri=tracking_uri,
                evaluate_first=evaluate_first,
                on_fold=tick,
                name=run_name("train", store, config),
                runner=runner,
            )
    except DataError as exc:
        raise fail(_as_option(exc)) from None
    if evaluation is not None:
        print_metrics(evaluation.record)
    console.print(
        f"registered {identity.model_name} version {identity.model_version} "
        f"(MLflow run {identity.run_id})"
    )


def promote(
    version: Annotated[str, typer.Argument(help="Model version number to promote.")],
    force: Annotated[
        bool, typer.Option(help="Promote even if the gate refuses (recorded on the version).")
    ] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Make VERSION the `champion` if it beats the best baseline (pooled and within blocks) and
    the current champion."""
    from flushcast.training.registry import RegistryError
    from flushcast.training.registry import promote as promote_version
    from flushcast.training.tracking import tracking_uri as resolve

    try:
        decision = promote_version(version, force=force, tracking_uri=resolve(tracking_uri))
    except RegistryError as exc:
        raise fail(DataError(str(exc))) from None
    if not decision.promote:
        raise fail(DataError(f"version {version} not promoted: {decision.reason}"))
    console.print(f"version {version} is now the champion: {decision.reason}")


def rollback(tracking_uri: TrackingUri = None) -> None:
    """Give `champion` back to the previous champion (the `rollback` alias), swapping the two."""
    from flushcast.training.registry import RegistryError
    from flushcast.training.registry import rollback as roll_back
    from flushcast.training.tracking import tracking_uri as resolve

    try:
        champion, previous = roll_back(tracking_uri=resolve(tracking_uri))
    except RegistryError as exc:
        raise fail(DataError(str(exc))) from None
    console.print(f"champion is version {champion} again; version {previous} kept as rollback")


def tune(
    store: Store,
    out: Annotated[
        Path, typer.Option("--out", help="Write the tuned configuration (YAML) here.")
    ] = Path("tuned.yaml"),
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials (the first: --config).")] = 20,
    cutoff: Annotated[
        str | None,
        typer.Option(help="Tune on rows whose labels close by this time (default: mid-span)."),
    ] = None,
    train_store: TrainStore = None,
    symbols: Symbols = None,
    horizons: Horizons = None,
    label_name: LabelName = None,
    experiment: Experiment = "flushcast",
    tracking_uri: TrackingUri = None,
    label_source: LabelSource = None,
    config_file: ConfigFile = None,
    sets: Sets = None,
    cluster: Cluster = None,
) -> None:
    """Tune the LightGBM and logistic settings on the inner walk-forward of a training span."""
    import pandas as pd

    from flushcast.common.engine import engine
    from flushcast.training.tracking import run_tune

    try:
        config = cli_config(
            config_file, sets, label_name, horizons, label_source, None, None, None, None
        )
        try:
            when = pd.Timestamp(cutoff, tz="UTC") if cutoff else None
        except ValueError:
            raise DataError(f"--cutoff: not a time: {cutoff!r}", column="cutoff") from None
        runner = engine(cluster)
        dataset = cli_dataset(store, train_store, symbols, config, runner)
        tuned, run_id = run_tune(
            dataset,
            config,
            runner,
            trials=trials,
            cutoff=when,
            out=out,
            experiment=experiment,
            uri=tracking_uri,
        )
    except DataError as exc:
        raise fail(exc) from None
    metric = config.selection.metric
    console.print(
        f"inner walk-forward before {tuned.cutoff.isoformat()}: champion within-block {metric} "
        f"{tuned.best:.4f} tuned, {tuned.default:.4f} as configured ({trials} trials)"
    )
    console.print(f"tuned configuration: {out}  (train --config {out}; MLflow run {run_id})")
