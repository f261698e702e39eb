"""Print the side-by-side stylized-facts table of docs/simulator_calibration.md.

    python -m simulator.calibration [REAL_DATA_DIR] [--days 365] [--seed 7]

Real facts come from the shared real data read by the project's own adapters (Coinalyze hourly
BTC/ETH/SOL, 2024-06-20 -> 08-20; Binance/Bybit funding histories); simulated ones from the
default scenario. Both go through `stylized_facts`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from simulator.simulate import simulate
from simulator.stylized_facts import TOLERANCES, funding_facts, stylized_facts

COINALYZE = "denizyts__Coinalyze-Backtester/src/csvFolder"
PAKCHU_BTC = "pakchu__rllm/data/binance_um_btcusdt_funding_marks_2020_2023.csv.gz"
SUPERVIK = "supervik__historical-funding-rates-fetcher/data"


def real_facts(root: Path) -> pd.DataFrame:
    """Facts of the real samples: one row per Coinalyze symbol, one per funding history."""
    from marketdata.ingest import read_canonical, read_sources

    folder = root / COINALYZE
    bars = pd.concat(
        [
            # Coinalyze's hourly exports are naive UTC+6 (see the data README).
            read_canonical("coinalyze", sorted(folder.glob(f"{c}USDT_PERP.A_*.csv")), tz="+06:00")
            for c in ("BTC", "ETH", "SOL")
        ],
        ignore_index=True,
    )
    facts = stylized_facts(bars).droplevel("venue")
    funding = read_sources("funding-csv", [root / PAKCHU_BTC])
    supervik = sorted((root / SUPERVIK).glob("*/*_b[iy]*_funding_history.csv"))
    funding += read_sources("funding-csv", supervik, tz="+03:00")  # naive UTC+3
    rows = {
        f"{f.symbol} {f.venue} funding": funding_facts(
            f.data.set_index("timestamp")["funding_rate"]
        )
        for f in funding
    }
    return pd.concat([facts, pd.DataFrame.from_dict(rows, orient="index")])


def table(real: pd.DataFrame, sim: pd.DataFrame) -> str:
    """Markdown: one line per fact, real range, simulated per symbol, tolerance."""
    lines = [
        "| fact | real (min - max) | "
        + " | ".join(f"sim {s}" for s in sim.index)
        + " | tolerance |",
        "|---" * (3 + len(sim)) + "|",
    ]
    for fact, (lo, hi) in TOLERANCES.items():
        r = real[fact].dropna()
        cells = " | ".join(f"{v:.3g}" for v in sim[fact])
        lines.append(f"| {fact} | {r.min():.3g} - {r.max():.3g} | {cells} | [{lo:g}, {hi:g}] |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", nargs="?", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sim = stylized_facts(simulate("default", days=args.days, seed=args.seed).frame)
    print(table(real_facts(args.real), sim.droplevel("venue")))


if __name__ == "__main__":
    main()
