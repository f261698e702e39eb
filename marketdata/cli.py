"""`flushcast ingest` and `flushcast data info`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from flushcast.common.cli import fail
from flushcast.common.errors import DataError

data_app = typer.Typer(help="Inspect the local market-data store.", no_args_is_help=True)
# Piped output (CI logs, files) gets a width that fits the tables instead of rich's default 80.
console = Console(width=None if sys.stdout.isatty() else 140)

StoreOption = Annotated[Path, typer.Option("--store", help="Store folder.")]


def _bar(text: str | None) -> pd.Timedelta | None:
    from flushcast.marketdata.schema import parse_bar

    if text is None:
        return None
    try:
        return parse_bar(text)
    except ValueError as exc:
        raise DataError(f"--bar: {exc}") from None


def ingest(
    source: Annotated[
        str,
        typer.Argument(
            help="coinalyze, coinglass, coinglass-api, binance-vision, liquidation-events, "
            "funding-csv, table (with --mapping) or canonical."
        ),
    ],
    files: Annotated[list[Path], typer.Argument(help="Files in the source's native format.")],
    store: StoreOption = Path("store"),
    symbol: Annotated[
        str | None, typer.Option(help="Symbol, e.g. BTCUSDT, where the file does not say.")
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(help="Time zone of naive timestamps: IANA name or offset like +06:00."),
    ] = None,
    venue: Annotated[str | None, typer.Option(help="Venue, where the file does not say.")] = None,
    bar: Annotated[
        str | None,
        typer.Option(
            help="Store the series at this bar (1h, 4h, 1d), aggregating finer sources into it. "
            "Default: the bar the series has, else the sources' own."
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Let the files supersede stored values where they overlap.")
    ] = False,
    mapping: Annotated[
        Path | None, typer.Option(help="table: the YAML mapping of the files' columns.")
    ] = None,
    series: Annotated[
        str | None,
        typer.Option(help="coinglass-api: price, open-interest, funding or liquidation."),
    ] = None,
    keep_last: Annotated[
        bool, typer.Option(help="coinglass-api: keep the snapshot's last (forming) bar.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(help="coinglass-api: when the snapshot was taken (default: its last bar)."),
    ] = None,
) -> None:
    """Read exports as they are, merge them into the store's canonical frames."""
    from flushcast.marketdata.ingest import ingest as run_ingest
    from flushcast.marketdata.schema import bar_name
    from flushcast.marketdata.store import MarketStore

    options = {"mapping": mapping, "series": series, "keep_last": keep_last, "as_of": as_of}
    try:
        report = run_ingest(
            source,
            files,
            MarketStore(store),
            symbol=symbol,
            tz=tz,
            venue=venue,
            bar=_bar(bar),
            replace=replace,
            **options,
        )
    except DataError as exc:
        raise fail(exc) from None
    for ds in report.datasets:
        missing = sum(g.missing_bars for g in ds.gaps)
        console.print(
            f"{ds.symbol} {ds.venue}: {ds.rows} {bar_name(ds.bar)} bars "
            f"{ds.start:%Y-%m-%d %H:%M} → {ds.end:%Y-%m-%d %H:%M} UTC (bar opens), "
            f"{len(ds.gaps)} gaps ({missing} missing bars kept as gaps)"
        )
        if ds.dropped_incomplete:
            console.print(f"  {ds.dropped_incomplete} incomplete source bars not aggregated")
        if ds.dropped_without_price:
            console.print(f"  {ds.dropped_without_price} bars outside the price coverage dropped")
        for rev in ds.revisions:
            worst = (
                f", largest change {rev.max_relative_change:.2%} ({rev.column} at "
                f"{rev.at:%Y-%m-%d %H:%M})"
                if rev.column is not None
                else ""
            )
            older = f" over {', '.join(rev.superseded)}" if rev.superseded else ""
            console.print(
                f"  revised by {rev.source}{older}: {rev.bars_changed} of {rev.bars_compared} "
                f"overlapping bars changed{worst}",
                highlight=False,
            )


@data_app.command("info")
def info(store: StoreOption = Path("store")) -> None:
    """Per symbol and venue: bar size, span, bars, gaps and the coverage of every column."""
    from flushcast.marketdata.info import store_info
    from flushcast.marketdata.schema import VALUE_COLUMNS, bar_name
    from flushcast.marketdata.store import MarketStore

    try:
        infos = store_info(MarketStore(store))
    except DataError as exc:
        raise fail(exc) from None
    if not infos:
        console.print(f"no datasets in {store}")
        raise typer.Exit(code=1)
    spans = Table(title=f"datasets in {store}")
    columns = ("symbol", "venue", "bar", "start (UTC)", "end (UTC)", "bars", "gaps", "missing bars")
    for name in columns:
        spans.add_column(name, no_wrap=True)
    for ds in infos:
        spans.add_row(
            ds.symbol,
            ds.venue,
            bar_name(ds.bar),
            f"{ds.start:%Y-%m-%d %H:%M}",
            f"{ds.end:%Y-%m-%d %H:%M}",
            str(ds.bars),
            str(ds.gaps),
            str(ds.missing_bars),
        )
    console.print(spans)
    # One coverage column per dataset keeps the table narrow whatever the schema's width.
    coverage = Table(title="coverage of present bars")
    coverage.add_column("column", no_wrap=True)
    for ds in infos:
        coverage.add_column(f"{ds.symbol} {ds.venue}", justify="right")
    for column in VALUE_COLUMNS:
        coverage.add_row(column, *(f"{ds.coverage[column]:.0%}" for ds in infos))
    console.print(coverage)
