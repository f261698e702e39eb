"""Where a walk-forward's time goes: CPU seconds of one thread per phase, in this process.

`bench_training` times the whole evaluation on a cluster; on a shared machine its wall time
says more about the neighbours than about the code. This runs the same market and recipe in
process on one BLAS/OpenMP thread and reports `time.process_time` per phase of one horizon:
pass 1 per fold (on every `--step`-th fold), pass 2 per fold (every fold) and the horizon's
record. Run it on two versions of the code at the same time to compare them under one load.

    OMP_NUM_THREADS=1 python -m benchmarks.walkforward_phases [--horizon 24] [--days 730]
"""

from __future__ import annotations

import argparse
import time

from threadpoolctl import threadpool_limits

from benchmarks.bench_training import DAYS, SYMBOLS, default_recipe
from flushcast.common.engine import InProcess
from flushcast.simulator import simulate
from flushcast.training.dataset import make_dataset
from flushcast.training.evaluate import horizon_record
from flushcast.training.tasks import walk_forward_plans
from flushcast.training.walkforward import assemble, calibrate_fold, out_of_fold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--step", type=int, default=10, help="pass 1 on every step-th fold")
    args = parser.parse_args()
    threadpool_limits(1)
    market = simulate("default", SYMBOLS, days=args.days, seed=11).frame
    dataset = make_dataset(market, runner=InProcess())
    config = default_recipe(dataset)
    data, folds = walk_forward_plans(dataset, config)[args.horizon]
    sample = folds[args.step // 2 :: args.step]
    start = time.process_time()
    out_of_fold(data, sample, config)
    pass1 = (time.process_time() - start) / len(sample)
    oof = out_of_fold(data, folds, config)  # every fold's scores, for pass 2 (not timed)
    start = time.process_time()
    outcomes = [calibrate_fold(data, fold, oof, config) for fold in folds]
    pass2 = (time.process_time() - start) / len(folds)
    start = time.process_time()
    horizon_record(assemble(data, folds, oof, outcomes), args.horizon, config)
    record = time.process_time() - start
    print(
        f"H = {args.horizon}, {len(folds)} folds, CPU s: pass 1 {pass1:.3f} per fold "
        f"({len(sample)} folds), pass 2 {pass2:.3f} per fold, record {record:.2f}"
    )


if __name__ == "__main__":
    main()
