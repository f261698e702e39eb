"""`flushcast report`: the trader page for one symbol, from a store and a registered model.

Bad input (unknown symbol or bar, empty store, no champion) exits with code 2 and one line
naming the problem, like the other commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flushcast.common.cli import fail
from flushcast.common.errors import DataError


def report(
    symbol: Annotated[str, typer.Option(help="Symbol to report on, e.g. BTCUSDT.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
    at: Annotated[
        str | None,
        typer.Option(
            help="Bar open time to report on (UTC unless it has an offset); default: the last bar."
        ),
    ] = None,
    store: Annotated[Path, typer.Option(help="Market data store.")] = Path("demo-store"),
    venue: Annotated[
        str | None, typer.Option(help="Venue, if the symbol trades on several in the store.")
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "--version",
            help="Model version: a number, an alias or `latest` (a version that is not the "
            "champion is marked not promoted).",
        ),
    ] = "champion",
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."
        ),
    ] = None,
    weeks: Annotated[int, typer.Option(min=1, help="Weeks of probability history to show.")] = 4,
    live: Annotated[
        Path | None,
        typer.Option(help="A service's live folder: add how its logged forecasts did."),
    ] = None,
) -> None:
    """Write a self-contained HTML report: flush risk, reasons, heatmap, history, model card."""
    from flushcast.common.atomic import write_atomic
    from flushcast.marketdata.store import MarketStore
    from flushcast.models.bundle import BundleMismatch
    from flushcast.reporting.build import ReportError, render_report
    from flushcast.reporting.registered import load_predictor
    from flushcast.training.registry import RegistryError

    frame = MarketStore(store).read()
    if frame.empty:
        raise fail(DataError(f"no market data in store {store}: ingest, fetch or simulate first"))
    try:
        predictor, walk_forward = load_predictor(model, tracking_uri)
        monitored = None
        if live is not None:
            from flushcast.live.engine import monitor_report

            monitored = monitor_report(live, frame, predictor, walk_forward).to_dict()
        html = render_report(
            predictor,
            frame,
            symbol,
            at=at,
            venue=venue,
            walk_forward=walk_forward,
            weeks=weeks,
            live=monitored,
        )
    except (RegistryError, BundleMismatch, ReportError, DataError) as exc:
        raise fail(DataError(str(exc))) from None
    write_atomic(out, lambda tmp: tmp.write_text(html, encoding="utf-8"))
    typer.echo(f"report: {out.resolve()}")
