"""`flushcast features build` and `flushcast features list`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flushcast.common.cli import fail
from flushcast.common.errors import DataError

app = typer.Typer(help="Build and describe model features.", no_args_is_help=True)


@app.command("build")
def build(
    store: Annotated[Path, typer.Option("--store", help="Market-data store folder.")],
    out: Annotated[Path, typer.Option("--out", help="Feature table to write (.parquet).")],
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Only these symbols (repeatable).")
    ] = None,
) -> None:
    """Compute every registered feature for the stored series, at their bar size, and write one
    Parquet table (features not built at that bar size are empty columns)."""
    from flushcast.common.atomic import write_atomic
    from flushcast.features.build import build_features
    from flushcast.marketdata.store import MarketStore

    try:
        market = MarketStore(store)
        frame = market.read(symbols=symbol or None)
        if frame.empty:
            raise DataError("no market data found", file=store)
        bar = market.common_bar(symbol or None)
        table = build_features(frame, bar=bar, show_progress=True)
    except DataError as exc:
        raise fail(exc) from exc
    write_atomic(out, lambda tmp: table.to_parquet(tmp, index=False))
    series = table.groupby(["symbol", "venue"], observed=True).ngroups
    typer.echo(
        f"wrote {len(table)} rows × {table.shape[1] - 3} features ({series} series) to {out}"
    )


@app.command("list")
def list_features(
    family: Annotated[str | None, typer.Option(help="Only this family.")] = None,
) -> None:
    """Print the feature registry: name, family, unit, lookback, inputs, description, and the
    stored bar sizes a feature is missing at (its window does not fit their bars)."""
    from flushcast.features.registry import as_frame

    rows = as_frame()
    if family is not None:
        rows = rows[rows["family"] == family]
    table = Table("name", "family", "unit", "lookback (h)", "inputs", "description", "missing at")
    for row in rows.itertuples(index=False):
        table.add_row(
            row.name,
            row.family,
            row.unit,
            str(row.lookback),
            row.inputs,
            row.description,
            row.missing_at,
        )
    Console(width=200).print(table)
