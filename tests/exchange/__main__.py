"""Run the fake exchange on a port until interrupted (the README's live session).

    python -m tests.exchange --venue binance --recording simulated --start 2024-05-01T00:40Z \
        --speed 100 --port 8901

Recordings: `simulated` (the built-in simulator; `--symbols`, `--days`, `--seed`), and from
`../shared/data/real`: `bybit-2024` (Bybit's BTCUSDT liquidations of 2024), `binance-2024` (the
same tape in Binance's forceOrder form), `binance-2025` (Binance candles and funding of 2025).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import pandas as pd

from tests.conftest import REAL_DATA
from tests.exchange.recording import as_binance, binance_2025, bybit_2024, simulated
from tests.exchange.server import FakeExchange, Faults


def export(recording, start: pd.Timestamp, folder: Path) -> None:
    """Liquidations of whole days before `start`, as the plain CSV `liquidation-events` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    before = int(start.floor("1D").value // 1_000_000)
    for symbol, market in recording.markets.items():
        events = market.liquidations[market.liquidations["time_ms"] < before]
        path = folder / f"{symbol}-liquidations.csv"
        events[["time_ms", "side", "qty", "price"]].rename(columns={"time_ms": "time"}).to_csv(
            path, index=False
        )
        print(f"wrote {len(events)} liquidations of {symbol} to {path}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.exchange", description=__doc__)
    parser.add_argument("--venue", choices=["binance", "bybit"], default="binance")
    parser.add_argument(
        "--recording",
        choices=["simulated", "bybit-2024", "binance-2024", "binance-2025"],
        default="simulated",
    )
    parser.add_argument("--start", required=True, help="Virtual start time (UTC).")
    parser.add_argument("--speed", type=float, default=100.0, help="Virtual seconds per second.")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    parser.add_argument("--days", type=int, default=150)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sim-start", default="2024-01-01", help="First day of the simulation.")
    parser.add_argument("--drop-at", action="append", default=[], help="Drop streams at (UTC).")
    parser.add_argument(
        "--export",
        help="Also write each symbol's liquidations before the start day to "
        "EXPORT/<SYMBOL>-liquidations.csv (time,side,qty,price): the history a user would "
        "ingest with `flushcast ingest liquidation-events` before collecting.",
    )
    args = parser.parse_args()

    if args.recording == "simulated":
        symbols = tuple(s.strip() for s in args.symbols.split(","))
        recording = simulated(args.venue, symbols, args.days, args.seed, args.sim_start)
    elif args.recording == "binance-2025":
        recording = binance_2025(REAL_DATA)
    else:
        recording = bybit_2024(REAL_DATA)
        recording = as_binance(recording) if args.recording == "binance-2024" else recording
    faults = Faults(disconnect_at=[pd.Timestamp(t) for t in args.drop_at])
    if args.export:
        export(recording, pd.Timestamp(args.start), Path(args.export))

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        exchange = FakeExchange(recording, args.start, args.speed, faults, args.port)
        async with exchange:
            print(
                f"fake {recording.venue} on {exchange.url} replaying {recording.description} "
                f"from {args.start} at {args.speed:g}x",
                flush=True,
            )
            await stop.wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
