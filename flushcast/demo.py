"""`flushcast demo`: the main job end to end on the built-in simulated market.

Each step calls the same command the user would run by hand, so the demo can never drift from
the real commands: simulate → store summary → features → labels → train (walk-forward
evaluation beside the baselines, MLflow run, registered version) → promote → report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flushcast import report_cli
from flushcast.features import cli as features_cli
from flushcast.marketdata import cli as marketdata_cli
from flushcast.simulator import cli as simulator_cli
from flushcast.training import cli as training_cli

console = Console()


def demo(
    store: Annotated[Path, typer.Option(help="Store folder for the demo data.")] = Path(
        "demo-store"
    ),
    days: Annotated[int, typer.Option(min=30, help="Days of simulated hourly bars.")] = 365,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    n_boot: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for intervals.")] = 200,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default sqlite:///mlflow.db).")
    ] = None,
    report: Annotated[Path, typer.Option(help="Where to write the demo report.")] = Path(
        "report.html"
    ),
) -> None:
    """Run the main job end to end on built-in simulated data."""
    console.rule("1/7 simulate a perpetual-futures market (BTC leads ETH and SOL)")
    simulator_cli.simulate(store=store, days=days, seed=seed)

    console.rule("2/7 the stored canonical frames")
    marketdata_cli.info(store=store)

    console.rule("3/7 features")
    features_path = store / "features.parquet"
    features_cli.build(store=store, out=features_path)

    console.rule("4/7 flush labels (forward-looking, kept apart from features)")
    _label_summary(store)

    console.rule("5/7 train: walk-forward of candidates and baselines, then register")
    training_cli.train(store=[store], n_boot=n_boot, tracking_uri=tracking_uri)

    console.rule("6/7 promote the new version if it beats the best baseline and the champion")
    shown = _promote_latest(tracking_uri)

    console.rule(f"7/7 the trader report for BTCUSDT from version {shown}")
    report_cli.report(
        symbol="BTCUSDT", store=store, tracking_uri=tracking_uri, out=report, model=shown
    )


def _promote_latest(tracking_uri: str | None) -> str:
    """Promote the version just registered; a refusal by the gate is shown, not an error.

    Returns the version the report should show: the champion, or the new version when the gate
    refused it and there is no champion yet (the report marks it "not promoted").
    """
    from flushcast.training.registry import CHAMPION, promote
    from flushcast.training.tracking import tracking_uri as resolve
    from flushcast.training.versions import LATEST, champion_version, version_number

    uri = resolve(tracking_uri)
    latest = version_number(LATEST, uri)
    decision = promote(latest, tracking_uri=uri)
    verdict = "promoted to champion" if decision.promote else "not promoted"
    console.print(f"version {latest} {verdict}: {decision.reason}")
    if champion_version(uri) is None:
        console.print(
            "no champion yet: the report shows the new version, marked not promoted; serve it "
            "with `flushcast serve --version latest` (every answer says it is not promoted)"
        )
        return latest
    return CHAMPION


def _label_summary(store: Path) -> None:
    from rich.table import Table

    from flushcast.marketdata.store import MarketStore
    from flushcast.training.config import load
    from flushcast.training.labels import base_rate, flush_column, make_labels

    spec = load().label
    market = MarketStore(store)
    labels = make_labels(market.read(), spec, bar=market.common_bar())
    table = Table("horizon", "labelled bars", "flush base rate")
    for horizon in spec.horizons:
        labelled = int(labels[flush_column(horizon)].notna().sum())
        table.add_row(f"{horizon} h", str(labelled), f"{base_rate(labels, horizon):.1%}")
    console.print(table)
