"""`flushcast collect binance|bybit`: keep a store current from a venue's public API.

Runs until interrupted (Ctrl-C or SIGTERM end it after the write in progress), or for
`--max-bars` live bars. Progress, reconnects, gaps and skipped messages are logged on stderr;
a summary is printed at the end. A store write the merge refuses (a stored bar that the venue
now reports differently) stops the collector with exit code 2 and the store unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flushcast.common.cli import fail
from flushcast.common.errors import DataError

app = typer.Typer(
    help="Keep a store current from an exchange's public API (klines, open interest, funding, "
    "liquidation stream).",
    no_args_is_help=True,
)


def _symbols(text: str) -> list[str]:
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise typer.BadParameter("give at least one symbol, e.g. BTCUSDT,ETHUSDT")
    return list(dict.fromkeys(symbols))


Symbols = Annotated[str, typer.Option(help="Comma-separated symbols, e.g. BTCUSDT,ETHUSDT.")]
Store = Annotated[Path, typer.Option(help="Store folder.")]
BaseUrl = Annotated[
    str | None, typer.Option(help="REST root (default: the venue's public API; a fake exchange).")
]
WsUrl = Annotated[
    str | None, typer.Option(help="Websocket root (default: the venue's, or --base-url's host).")
]
Backfill = Annotated[
    int, typer.Option(min=1, help="Days fetched for a symbol the store does not hold yet.")
]
Settle = Annotated[
    float, typer.Option(min=0, help="Seconds after a bar closes before it is fetched.")
]
MaxBars = Annotated[
    int | None, typer.Option(min=1, help="Stop after this many live bars per symbol.")
]


def _run(
    venue: str,
    symbols: str,
    store: Path,
    base_url: str | None,
    ws_url: str | None,
    backfill_days: int,
    settle: float,
    max_bars: int | None,
) -> None:
    import asyncio
    import logging
    import signal

    from flushcast.marketdata.collect.collector import VENUES, Collector, CollectorConfig

    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    config = CollectorConfig(
        symbols=_symbols(symbols),
        store=store,
        rest_url=base_url,
        ws_url=ws_url,
        backfill_days=backfill_days,
        settle_s=settle,
        max_bars=max_bars,
    )
    collector = Collector(VENUES[venue](), config)

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, collector.stop.set)
        return await collector.run()

    try:
        report = asyncio.run(main())
    except DataError as exc:
        raise fail(exc) from None
    bars = ", ".join(f"{s} {n}" for s, n in report.bars.items()) or "none"
    typer.echo(
        f"bars stored: {bars}; liquidations: {report.events} counted, {report.duplicates} "
        f"duplicates, {report.late} late, {report.malformed} malformed messages skipped; "
        f"{report.reconnects} reconnects, {report.rest_retries} REST retries; "
        f"{len(report.gaps)} gaps, {len(report.unknown_liquidations)} bars without liquidations"
    )


def _command(venue: str, summary: str):
    """The `collect VENUE` command (both venues take the same options)."""

    def command(
        symbols: Symbols,
        store: Store = Path("store"),
        base_url: BaseUrl = None,
        ws_url: WsUrl = None,
        backfill_days: Backfill = 75,
        settle: Settle = 20.0,
        max_bars: MaxBars = None,
    ) -> None:
        _run(venue, symbols, store, base_url, ws_url, backfill_days, settle, max_bars)

    command.__doc__ = summary
    return command


app.command("binance")(
    _command(
        "binance",
        "Binance USD-M: klines, OI, funding over REST; liquidations from forceOrder "
        "(lower bounds).",
    )
)
app.command("bybit")(
    _command(
        "bybit", "Bybit linear: klines, OI, funding over REST; liquidations from allLiquidation."
    )
)
