"""`flushcast fetch binance`: download Binance Vision archives and ingest them into a store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flushcast.common.cli import fail
from flushcast.common.errors import DataError, shorten

app = typer.Typer(help="Download public market-data archives into the store.", no_args_is_help=True)
console = Console()


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{shorten(text)} is not a date like 2024-01-31") from None


@app.command("binance")
def binance(
    symbol: Annotated[
        list[str], typer.Option("--symbol", help="USD-M symbol, e.g. BTCUSDT (repeatable).")
    ],
    start: Annotated[str, typer.Option(help="First UTC day, e.g. 2024-01-01.")],
    end: Annotated[str, typer.Option(help="Last UTC day (inclusive), e.g. 2024-12-31.")],
    store: Annotated[Path, typer.Option(help="Store folder.")] = Path("store"),
    cache: Annotated[
        Path | None,
        typer.Option(help="Where verified zips are kept (default: STORE/.downloads/binance)."),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="Archive root (default: https://data.binance.vision/data/futures/um/)."),
    ] = None,
) -> None:
    """1 h klines, metrics (OI, long/short) and funding from data.binance.vision, verified."""
    from flushcast.marketdata.fetch import DEFAULT_BASE_URL, FetchError, fetch_binance
    from flushcast.marketdata.store import MarketStore

    first, last = _date(start), _date(end)
    cache = cache or store / ".downloads" / "binance"
    try:
        fetched, ingested = fetch_binance(
            symbol, first, last, MarketStore(store), cache, base_url or DEFAULT_BASE_URL
        )
    except DataError as exc:
        raise fail(exc) from None
    except FetchError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    console.print(
        f"{len(fetched.downloaded)} archives downloaded, {len(fetched.cached)} already verified, "
        f"{len(fetched.missing)} not published"
    )
    for archive in fetched.missing:
        console.print(f"  not published: {archive.path}", highlight=False)
    for ds in ingested.datasets:
        missing = sum(g.missing_bars for g in ds.gaps)
        console.print(
            f"{ds.symbol} {ds.venue}: {ds.rows} bars {ds.start} → {ds.end}, "
            f"{len(ds.gaps)} gaps ({missing} missing bars)"
        )
