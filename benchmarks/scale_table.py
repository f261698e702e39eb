"""How the features and the full walk-forward grow with symbols, on a cluster.

    python -m benchmarks.scale_table --symbols 10 [--horizons 12] [--cluster tcp://127.0.0.1:8786]

Ten simulated symbols × two years of hourly bars (the `bench_training` market, simulated once
and cached in `--cache`); 30 or 100 symbols repeat those ten under new names (each copy its own
series: same cost per row as new markets, without simulating for an hour). Prints one row of
the README's table: the wall time of the features and of the walk-forward evaluation (the
default recipe, learning from its feature families as `flushcast evaluate` does; the row says
how many inputs; three horizons unless `--horizons` says fewer), the CPU seconds the client and
each worker spent on them (on a shared machine wall time stretches with other work; CPU seconds
do much less), the peak memory of the client and of each worker (fresh workers: start the
cluster per run) and the load average while it ran. `--json PATH` also writes every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.bench_training import DAYS, SYMBOLS, default_recipe
from benchmarks.measure import (
    LoadSampler,
    cpu_s,
    cpu_spent,
    peak_rss_mb,
    worker_cpu_s,
    worker_peaks_mb,
)
from flushcast.common.engine import LOCAL, engine
from flushcast.simulator import simulate
from flushcast.training.dataset import make_dataset
from flushcast.training.evaluate import evaluate
from flushcast.training.labels import LabelSpec

CONTEXT = "BTCUSDT"
"""The alts' context series: every market keeps it."""


def base_market(cache: Path) -> pd.DataFrame:
    """The ten simulated symbols (simulated once, then read from `cache`)."""
    if not cache.is_file():
        simulate("default", SYMBOLS, days=DAYS, seed=11).frame.to_parquet(cache)
    return pd.read_parquet(cache)


def copy_name(symbol: str, k: int) -> str:
    """The `k`-th copy's name of `symbol` (`k` = 0: the symbol itself): BTCUSDT → BTC2USDT."""
    return symbol if k == 0 else symbol.replace("USDT", f"{k}USDT")


def market(symbols: int, base: pd.DataFrame) -> pd.DataFrame:
    """`symbols` series: those of `base`, then copies of them under new names."""
    names = sorted(base["symbol"].astype(str).unique())
    copies = []
    for k in range(-(-symbols // len(names))):
        part = base.copy()
        part["symbol"] = part["symbol"].astype(str).map(lambda s, k=k: copy_name(s, k))
        copies.append(part)
    frame = pd.concat(copies, ignore_index=True)
    keep = sorted(frame["symbol"].unique())[:symbols]
    if CONTEXT in names and CONTEXT not in keep:
        keep[-1] = CONTEXT
    return frame[frame["symbol"].isin(keep)].reset_index(drop=True)


def cpu_split(runner: Any, phase: Any) -> tuple[Any, float, dict[str, float]]:
    """`phase()`'s answer, the client's CPU seconds and each worker's spent on it."""
    client_before, workers_before = cpu_s(), worker_cpu_s(runner)
    answer = phase()
    return answer, cpu_s() - client_before, cpu_spent(workers_before, worker_cpu_s(runner))


def scheduler_cpu_s(runner: Any) -> float | None:
    """CPU seconds of a separate scheduler process (a LocalCluster's runs in the client)."""
    if runner.name == LOCAL or getattr(runner, "client", None) is None:
        return None
    return float(runner.client.run_on_scheduler(cpu_s))


def progress(runner: Any, began: float, every: int = 10) -> Any:
    """A pass-1 callback printing, every `every` folds, the wall and CPU time so far and the
    workers' peak memory (a run stopped early still says how fast it went)."""
    done = 0
    client_before, workers_before = cpu_s(), worker_cpu_s(runner)

    def tick() -> None:
        nonlocal done
        done += 1
        if done % every == 0:
            workers = sum(cpu_spent(workers_before, worker_cpu_s(runner)).values())
            peaks = ", ".join(f"{mb:.0f}" for mb in worker_peaks_mb(runner))
            print(
                f"fold {done}: {time.perf_counter() - began:.0f} s, CPU client "
                f"{cpu_s() - client_before:.0f} s, workers {workers:.0f} s; peak client "
                f"{peak_rss_mb():.0f} MB, workers {peaks} MB",
                flush=True,
            )

    return tick


def row(figures: dict[str, Any]) -> str:
    """The README table's row of one run."""
    f = figures
    wf_cpu = f["walk_forward"]["cpu_workers_s"]
    peaks = ", ".join(f"{mb:,.0f}" for mb in f["peak_mb"]["workers"]) or "none"
    scheduler = (
        f"; scheduler {f['cpu_scheduler_s']:.0f}" if f["cpu_scheduler_s"] is not None else ""
    )
    workers = (
        f"{' + '.join(f'{s:.0f}' for s in wf_cpu.values())} = {sum(wf_cpu.values()):.0f}"
        if wf_cpu
        else "none"
    )
    return (
        f"| {f['symbols']} | {f['rows']:,} | {f['inputs']} | {f['horizons']} | {f['where']} | "
        f"{f['features']['wall_s']:.0f} s | "
        f"{f['walk_forward']['wall_s']:.0f} s ({f['folds']} folds) | "
        f"{f['walk_forward']['cpu_client_s']:.0f} / {workers}{scheduler} | "
        f"client {f['peak_mb']['client']:,.0f} MB; workers {peaks} MB | "
        f"{f['load']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--horizons", default="4,12,24", help="comma-separated hours")
    parser.add_argument("--cluster", help="as `flushcast evaluate --cluster` (default: local)")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "flushcast-scale-market.parquet"
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    frame = market(args.symbols, base_market(args.cache))
    runner = engine(args.cluster)
    horizons = tuple(int(h) for h in args.horizons.split(","))
    with LoadSampler() as load:
        began = time.perf_counter()
        dataset, features_cpu, features_workers = cpu_split(
            runner, lambda: make_dataset(frame, LabelSpec(horizons=horizons), runner=runner)
        )
        features_s = time.perf_counter() - began
        print(
            f"features: {features_s:.0f} s, CPU client {features_cpu:.0f} s, workers "
            f"{sum(features_workers.values()):.0f} s, peak client {peak_rss_mb():.0f} MB",
            flush=True,
        )
        config = default_recipe(dataset)
        print(f"model inputs (the default families): {len(dataset.features)}", flush=True)
        began = time.perf_counter()
        result, evaluate_cpu, evaluate_workers = cpu_split(
            runner,
            lambda: evaluate(dataset, config, runner=runner, on_fold=progress(runner, began)),
        )
        evaluate_s = time.perf_counter() - began
    figures = {
        "symbols": args.symbols,
        "rows": len(frame),
        "horizons": ", ".join(str(h) for h in horizons),
        "where": f"{runner.name} ({runner.workers} workers)",
        "folds": len(result.folds),
        "inputs": len(dataset.features),
        "features": {
            "wall_s": features_s,
            "cpu_client_s": features_cpu,
            "cpu_workers_s": features_workers,
        },
        "walk_forward": {
            "wall_s": evaluate_s,
            "cpu_client_s": evaluate_cpu,
            "cpu_workers_s": evaluate_workers,
        },
        "cpu_scheduler_s": scheduler_cpu_s(runner),
        "peak_mb": {"client": peak_rss_mb(), "workers": worker_peaks_mb(runner)},
        "load": load.summary(),
    }
    print(json.dumps(figures, indent=1), flush=True)
    print(row(figures), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
