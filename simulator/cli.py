"""`flushcast simulate`: write a simulated market, its cascade log and ground truth into a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def simulate(
    store: Annotated[Path, typer.Option(help="Store folder to write into.")],
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols; BTCUSDT leads.")] = (
        "BTCUSDT,ETHUSDT,SOLUSDT"
    ),
    days: Annotated[int, typer.Option(min=1, help="Days of hourly bars to output.")] = 365,
    seed: Annotated[int, typer.Option(help="Same seed and preset give the same market.")] = 7,
    preset: Annotated[
        str, typer.Option(help="Scenario: calm, default or overleveraged.")
    ] = "default",
    start: Annotated[str, typer.Option(help="First day (UTC date).")] = "2024-01-01",
    bar: Annotated[
        str, typer.Option(help="Bar size of the stored frames: 1h, 4h or 1d (from the hourly).")
    ] = "1h",
) -> None:
    """Simulate perpetual-futures markets whose liquidation cascades emerge from leverage."""
    from flushcast.simulator.config import PRESETS
    from flushcast.simulator.simulate import BARS, TRUTH_LOG
    from flushcast.simulator.simulate import simulate as run

    if preset not in PRESETS:
        raise typer.BadParameter(f"choose one of {', '.join(PRESETS)}", param_hint="--preset")
    if bar not in BARS:
        raise typer.BadParameter(f"choose one of {', '.join(BARS)}", param_hint="--bar")
    names = [s.strip().upper() for s in symbols.split(",") if s.strip()]
    if not names:
        raise typer.BadParameter("give at least one symbol", param_hint="--symbols")
    try:
        result = run(preset, names, days=days, seed=seed, start=start, bar=bar)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    log = result.write(store)
    counts = result.cascades["direction"].value_counts()
    typer.echo(
        f"wrote {len(result.frame)} {bar} bars of {', '.join(names)} (venue sim) to {store}; "
        f"{len(result.cascades)} cascades ({counts.get('long_flush', 0)} long flushes, "
        f"{counts.get('short_squeeze', 0)} short squeezes) to {log}; "
        f"hourly ground truth to {log.parent / TRUTH_LOG}"
    )
