"""How the features and the full walk-forward grow with symbols, on a cluster.

    python -m benchmarks.scale_table --symbols 10 [--cluster tcp://127.0.0.1:8786]

Ten simulated symbols × two years of hourly bars (the `bench_training` market, simulated once
and cached in `--cache`); 30 or 100 symbols repeat those ten under new names (each copy its own
series: same cost per row as new markets, without simulating for an hour). Prints the time of
the features and of the walk-forward evaluation (the default recipe; three horizons unless
`--horizons` says fewer) and the
peak memory of the client and of each worker (fresh workers: start the cluster per run).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.bench_training import DAYS, SYMBOLS
from benchmarks.measure import peak_rss_mb, worker_peaks_mb
from flushcast.common.engine import engine
from flushcast.simulator import simulate
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import make_dataset
from flushcast.training.evaluate import evaluate
from flushcast.training.labels import LabelSpec


def market(symbols: int, cache: Path) -> pd.DataFrame:
    """`symbols` series: the ten simulated ones, then copies under new names."""
    if not cache.is_file():
        simulate("default", SYMBOLS, days=DAYS, seed=11).frame.to_parquet(cache)
    base = pd.read_parquet(cache)
    copies = []
    for k in range(-(-symbols // len(SYMBOLS))):
        part = base.copy()
        if k:
            part["symbol"] = part["symbol"].astype(str).str.replace("USDT", f"{k}USDT")
        copies.append(part)
    frame = pd.concat(copies, ignore_index=True)
    keep = sorted(frame["symbol"].astype(str).unique())[:symbols]
    if "BTCUSDT" not in keep:  # the alts' context series
        keep[-1] = "BTCUSDT"
    return frame[frame["symbol"].astype(str).isin(keep)].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--horizons", default="4,12,24", help="comma-separated hours")
    parser.add_argument("--cluster", help="as `flushcast evaluate --cluster` (default: local)")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "flushcast-scale-market.parquet"
    )
    args = parser.parse_args()
    frame = market(args.symbols, args.cache)
    runner = engine(args.cluster)
    began = time.perf_counter()
    horizons = tuple(int(h) for h in args.horizons.split(","))
    dataset = make_dataset(frame, LabelSpec(horizons=horizons), runner=runner)
    features_s = time.perf_counter() - began
    config = TrainingConfig(label=dataset.label)
    began = time.perf_counter()
    result = evaluate(dataset, config, runner=runner)
    evaluate_s = time.perf_counter() - began
    workers = ", ".join(f"{mb:.0f}" for mb in worker_peaks_mb(runner)) or "none"
    folds = len(result.folds)
    print(
        f"| {args.symbols} | {len(frame):,} | {args.horizons} | "
        f"{runner.name} ({runner.workers} workers) | "
        f"{features_s:.0f} s | {evaluate_s:.0f} s ({folds} folds, "
        f"{evaluate_s / folds * runner.workers:.2f} worker-s a fold) | "
        f"client {peak_rss_mb():.0f} MB; workers {workers} MB |",
        flush=True,
    )


if __name__ == "__main__":
    main()
