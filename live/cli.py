"""The command-line side of live operation: `serve --live` options, and `flushcast monitor`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flushcast.common.errors import DataError
from flushcast.marketdata.cli import console, fail


def live_environment(
    folder: Path,
    store: Path,
    alerts: Path | None,
    tracking_uri: str | None,
    watch_champion: float | None,
    clock_url: str | None,
    stale_after_h: float,
    stale_limit_h: float,
) -> dict[str, str]:
    """Check the live options, write them to the live folder, and the environment to pass."""
    from flushcast.live.alerts import AlertConfigError, load_config
    from flushcast.live.clock import parse
    from flushcast.live.engine import LIVE_ENV, LiveConfig
    from flushcast.training.tracking import tracking_uri as resolve

    try:
        if alerts is not None:
            load_config(alerts)
        if clock_url is not None:
            parse(clock_url)
        if stale_limit_h < stale_after_h:
            raise ValueError("--stale-limit must be at least --stale-after")
    except (AlertConfigError, ValueError) as exc:
        raise fail(DataError(str(exc))) from None
    config = LiveConfig(
        store=str(store.resolve()),
        alerts=str(alerts.resolve()) if alerts else None,
        tracking_uri=resolve(tracking_uri),
        watch_champion_s=watch_champion,
        clock=clock_url,
        stale_after_s=stale_after_h * 3600,
        stale_limit_s=stale_limit_h * 3600,
    )
    config.save(folder)
    return {LIVE_ENV: str(folder.resolve())}


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def monitor(
    live: Annotated[Path, typer.Option(help="The service's live folder (serve --live).")],
    store: Annotated[Path, typer.Option(help="Market data store (labels and drift).")] = Path(
        "demo-store"
    ),
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "--version",
            help="Model version: a number, an alias or `latest` (the version the service "
            "serves: `latest` when it was started with `serve --version latest`).",
        ),
    ] = "champion",
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default as for train).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Recent days compared for drift.")] = 7,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """Live reliability and Brier of the logged predictions beside the walk-forward's, and drift."""
    from flushcast.common.atomic import write_atomic
    from flushcast.live.engine import monitor_report
    from flushcast.marketdata.store import MarketStore
    from flushcast.reporting.registered import load_predictor
    from flushcast.training.registry import RegistryError

    try:
        predictor, walk_forward = load_predictor(model, tracking_uri, "monitor")
        market = MarketStore(store).read()
        report = monitor_report(live, market, predictor, walk_forward, drift_days=days)
    except (RegistryError, DataError) as exc:
        raise fail(DataError(str(exc))) from None
    console.print(f"model version {report.model_version}; drift {report.drift_window}")
    console.print("horizon  predictions  matured  flushes  Brier (live / walk-forward)  "
                  "Brier skill (live / wf)  ECE (live / wf)")  # fmt: skip
    for h in report.horizons:
        wf = h.walk_forward
        console.print(
            f"{h.horizon_hours:>5} h  {h.predictions:>11}  {h.matured:>7}  {h.flushes:>7}  "
            f"{_fmt(h.brier):>8} / {_fmt(wf['brier']):<8}          "
            f"{_fmt(h.brier_skill):>8} / {_fmt(wf['brier_skill']):<8}   "
            f"{_fmt(h.ece):>7} / {_fmt(wf['ece'])}",
            highlight=False,
        )
    shifted = [d for d in report.drift if d.level in ("moderate", "shifted")]
    console.print(f"feature drift (PSI): {len(shifted)} of {len(report.drift)} features moved")
    for d in report.drift[:10]:
        console.print(f"  {d.feature:32} {_fmt(d.psi):>8}  {d.level}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    if json_out is not None:
        text = json.dumps(report.to_dict(), indent=1)
        write_atomic(json_out, lambda tmp: tmp.write_text(text))
