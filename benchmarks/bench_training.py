"""Training foundations at the issue's benchmark size: ten symbols × two years of hourly bars.

Labels for all horizons, weekly purged walk-forward folds, and the full metric set with a block
bootstrap, each well inside the 120 s budget the whole walk-forward evaluation has to share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.measure import timed
from marketdata.schema import conform
from training.labels import LabelSpec, flush_column, make_labels
from training.metrics import block_bootstrap_ci, pr_auc, score_metrics, time_blocks
from training.splits import SplitSpec, walk_forward

SYMBOLS = 10
HOURS = 2 * 365 * 24


def market(seed: int = 0) -> pd.DataFrame:
    """Random-walk prices with heavy-tailed liquidations: realistic shape, no simulator cost."""
    rng = np.random.default_rng(seed)
    n = SYMBOLS * HOURS
    close = 100 * np.exp(np.cumsum(rng.standard_t(4, (SYMBOLS, HOURS)) * 0.006, axis=1)).ravel()
    wick = np.abs(rng.normal(0, 0.004, (2, n)))
    return conform(
        pd.DataFrame(
            {
                "timestamp": np.tile(
                    pd.date_range("2023-01-01", periods=HOURS, freq="h", tz="UTC"), SYMBOLS
                ),
                "symbol": np.repeat([f"S{i:02d}USDT" for i in range(SYMBOLS)], HOURS),
                "venue": "bench",
                "open": close,
                "high": close * np.exp(wick[0]),
                "low": close * np.exp(-wick[1]),
                "close": close,
                "liq_long_usd": rng.pareto(1.5, n) * 1e5,
                "liq_short_usd": rng.pareto(1.5, n) * 1e5,
            }
        )
    )


def main() -> None:
    frame = market()
    spec = LabelSpec()
    labels = timed(
        f"labels, H in {spec.horizons}, {len(frame):,} rows", lambda: make_labels(frame, spec), 10
    )
    h = 12
    folds = timed(
        "weekly walk-forward folds, H = 12",
        lambda: walk_forward(labels["timestamp"], SplitSpec(horizon=h)),
        2,
    )
    test = np.concatenate([f.test for f in folds])
    rows = labels.iloc[test]
    rows = rows[rows[flush_column(h)].notna()]
    y = rows[flush_column(h)].to_numpy()
    p = np.random.default_rng(1).random(len(y)) * 0.1 + 0.08 * y  # a score with some skill
    timed(
        f"score_metrics on {len(y):,} test rows",
        lambda: score_metrics(
            y, p, reference=y.mean(), series=rows["symbol"], timestamps=rows["timestamp"], horizon=h
        ),
        5,
    )
    blocks = time_blocks(rows["timestamp"], 72)
    timed(
        "PR-AUC block bootstrap, 200 resamples",
        lambda: block_bootstrap_ci(lambda i: pr_auc(y[i], p[i]), blocks, n_boot=200),
        30,
    )
    print(f"{len(folds)} folds, base rate at H = 12: {y.mean():.3%}")


if __name__ == "__main__":
    main()
