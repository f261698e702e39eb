"""Walk-forward evaluation at the issue's size: ten symbols × two years of hourly bars.

The market is the built-in simulator (realistic OI, funding and liquidation columns, so every
feature family is live); its cost is reported but is not part of the target. The target covers
the full walk-forward evaluation of all horizons with weekly refits of every candidate and
baseline, the champion's combination per fold, calibration, the metrics and the block bootstrap:
under 120 s and 4 GB on the 2-core machine. It runs on `common.engine`'s default (a LocalCluster
of one worker per core) or wherever `$FLUSHCAST_CLUSTER` says.
"""

from __future__ import annotations

import os
import sys

import pandas as pd

from benchmarks.measure import timed, worker_peaks_mb
from flushcast.common.engine import CLUSTER_ENV, LOCAL, engine
from flushcast.simulator import simulate
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import Dataset, make_dataset, select_features
from flushcast.training.evaluate import evaluate

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"]
SYMBOLS += ["BNBUSDT", "ADAUSDT", "AVAXUSDT", "LINKUSDT", "LTCUSDT"]
DAYS = 730


def default_recipe(dataset: Dataset) -> TrainingConfig:
    """The default configuration, `dataset` narrowed (in place) to its feature families: what
    `flushcast evaluate` learns from, so the benchmarks measure what users run."""
    config = TrainingConfig(label=dataset.label)
    select_features(dataset, config)
    return config


def main(days: int = DAYS) -> None:
    market = timed(
        f"simulate {len(SYMBOLS)} symbols × {days} days (setup, not in the target)",
        lambda: simulate("default", SYMBOLS, days=days, seed=11).frame,
    )
    runner = timed(f"start the engine ({CLUSTER_ENV}={os.environ.get(CLUSTER_ENV, LOCAL)})", engine)
    dataset = timed(
        f"features + labels for {len(market):,} rows",
        lambda: make_dataset(market, runner=runner),
    )
    config = default_recipe(dataset)
    print(f"model inputs (the default families): {len(dataset.features)}")
    result = timed(
        f"walk-forward evaluation, H in {dataset.label.horizons}, refit every "
        f"{config.walk_forward.retrain_every_hours} h, candidates {config.fit.candidates}, "
        f"{len(config.evaluation.baselines)} baselines, {config.evaluation.n_boot} resamples",
        lambda: evaluate(dataset, config, runner=runner),
        120,
    )
    peaks = worker_peaks_mb(runner)
    if peaks:
        print(f"peak RSS per worker: {', '.join(f'{mb:.0f}' for mb in peaks)} MB")
    folds = result.folds.groupby("horizon").agg(
        folds=("fold", "size"), scored=("status", lambda s: (s == "scored").sum())
    )
    print(folds.to_string())
    table = pd.DataFrame(
        {
            h: {m: v.roc_auc_within_fold for m, v in e.models.items()}
            for h, e in result.record.horizons.items()
        }
    )
    print("ROC-AUC within folds per horizon (columns) and model (rows):")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else DAYS)
