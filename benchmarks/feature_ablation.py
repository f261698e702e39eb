"""The feature-family ablations of docs/features.md: one family added at a time, paired.

    python -m benchmarks.feature_ablation PREFIX [--model champion] [--n-boot 200]

reads the out-of-sample predictions `PREFIX-<variant>.parquet` written by
`flushcast evaluate --predictions` with `--set features.exclude_families=[...]` (variants
`base`: none of the new families; `positioning`, `clock`, `events`, `breadth`: base plus that
one; `all`: every family; `chosen`: the default, positioning and clock; `relative`, `reach`,
`vol_regime`, `demean`: the default plus that one, beside a `base` that is the default), and
prints per horizon the model's pooled and within-block ROC and lift for each variant beside
`base`, with 95 % block-bootstrap intervals of the difference.
The variants share their rows, labels and folds (the evaluation's fingerprint does not depend
on the features), so the difference is paired: both sides are judged on the same resampled
blocks (`training.metrics.block_bootstrap_cis`, the evaluation's own intervals).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.training.metrics import block_bootstrap_cis, lift, per_block, roc_auc, time_blocks

VARIANTS = (
    "positioning",
    "clock",
    "events",
    "breadth",
    "all",
    "chosen",
    "relative",
    "reach",
    "vol_regime",
    "demean",
)
KEYS = ["horizon", "timestamp", "symbol", "venue"]


def _scores(path: Path, model: str) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame[[*KEYS, "y", "block", f"p_{model}"]].rename(columns={f"p_{model}": "p"})


def compare(base: pd.DataFrame, other: pd.DataFrame, n_boot: int) -> dict[str, object]:
    """Pooled and within-block ROC and lift of both, and the paired difference's intervals."""
    both = base.merge(other[[*KEYS, "p"]], on=KEYS, suffixes=("_base", ""), validate="1:1")
    both = both[np.isfinite(both["p"]) & np.isfinite(both["p_base"])]
    y, p, q = (both[c].to_numpy(dtype="float64") for c in ("y", "p", "p_base"))
    blocks = both["block"].to_numpy()
    mine, theirs = per_block(y, p, blocks), per_block(y, q, blocks)
    pooled = block_bootstrap_cis(
        lambda i: [roc_auc(y[i], p[i]) - roc_auc(y[i], q[i]), lift(y[i], p[i]) - lift(y[i], q[i])],
        time_blocks(both["timestamp"], 72),
        n_boot=n_boot,
    )

    def within(i: np.ndarray) -> list[float]:
        a, b = mine.resampled(i), theirs.resampled(i)
        return [a.roc_auc - b.roc_auc, a.lift - b.lift]

    inside = block_bootstrap_cis(within, np.arange(len(mine.events)), n_boot=n_boot)
    a, b = mine.mean(), theirs.mean()
    return {
        "rows": len(both),
        "flushes": int(y.sum()),
        "blocks": len(mine.events),
        "roc": (roc_auc(y, q), roc_auc(y, p), pooled[0]),
        "lift": (lift(y, q), lift(y, p), pooled[1]),
        "roc_in_blocks": (b.roc_auc, a.roc_auc, inside[0]),
        "lift_in_blocks": (b.lift, a.lift, inside[1]),
    }


MIN_BLOCKS = 5
"""Fewer test blocks with a flush than this: the interval is not marked (one or two blocks
resample to nearly one value, an interval in name only)."""


def _cell(values: tuple[float, float, tuple[float, float]], blocks: int) -> str:
    base, mine, (low, high) = values
    sure = blocks >= MIN_BLOCKS
    mark = " **+**" if sure and low > 0 else (" **−**" if sure and high < 0 else "")
    return f"{mine:.3f} ({mine - base:+.3f} [{low:+.3f}, {high:+.3f}]){mark}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix")
    parser.add_argument("--model", default="champion")
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    base = _scores(Path(f"{args.prefix}-base.parquet"), args.model)
    print("| H | variant | flush rows (blocks) | ROC | lift | ROC in blocks | lift in blocks |")
    print("|---|---|---|---|---|---|---|")
    for horizon in sorted(base["horizon"].unique()):
        rows = base[base["horizon"] == horizon]
        first = None
        for variant in VARIANTS:
            path = Path(f"{args.prefix}-{variant}.parquet")
            if not path.exists():
                continue
            other = _scores(path, args.model)
            got = compare(rows, other[other["horizon"] == horizon], args.n_boot)
            if first is None:
                first = got
                print(
                    f"| {horizon} | base | {got['flushes']} ({got['blocks']}) | "
                    f"{got['roc'][0]:.3f} | "
                    f"{got['lift'][0]:.3f} | {got['roc_in_blocks'][0]:.3f} | "
                    f"{got['lift_in_blocks'][0]:.3f} |"
                )
            keys = ("roc", "lift", "roc_in_blocks", "lift_in_blocks")
            cells = " | ".join(_cell(got[k], got["blocks"]) for k in keys)
            print(f"| {horizon} | +{variant} | {got['flushes']} ({got['blocks']}) | {cells} |")


if __name__ == "__main__":
    main()
