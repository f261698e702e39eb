"""What bounded tuning gains, judged only where it could not have looked.

`flushcast tune`'s study runs on the inner walk-forward before the cutoff (the middle of the
span); this evaluates the configuration it chose and the defaults on the same walk-forward of
the whole data and compares their champions on the test blocks that start after the cutoff:
within blocks (PR-AUC and ROC-AUC) with a bootstrap over blocks, and pooled PR-AUC with the
72-hour block bootstrap. Run on a shared set, e.g.

    python -m benchmarks.tuning_gain --store store-1d --horizons 24,72 --trials 12

With `--set KEY=VALUE ...` there is no study: the given settings are the other configuration,
scored by the same inner walk-forward before the cutoff and compared the same way after it
(how a cheaper recipe is shown to cost no skill), e.g.

    python -m benchmarks.tuning_gain --store store-1d --horizons 24,72 \
        --set fit.lightgbm.rounds=75 --set fit.lightgbm.learning_rate=0.12
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.common.engine import engine
from flushcast.training.config import TrainingConfig, parse_override
from flushcast.training.dataset import load_dataset
from flushcast.training.evaluate import evaluate
from flushcast.training.labels import LabelSpec
from flushcast.training.metrics import block_bootstrap_cis, per_block, pr_auc, time_blocks
from flushcast.training.tune import default_cutoff, inner_score, training_span, tune


def _after(frame: pd.DataFrame, folds: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    late = folds.loc[(folds["status"] == "scored") & (folds["test_start"] >= cutoff), "fold"]
    return frame[frame["fold"].isin(late)].set_index(["timestamp", "symbol", "venue"])


def _edge(value: float, interval: tuple[float, float]) -> str:
    return f"{value:+.4f} [{interval[0]:+.4f}, {interval[1]:+.4f}]"


def compare(default, tuned, cutoff: pd.Timestamp, n_boot: int = 500) -> pd.DataFrame:
    """Per horizon: the champions after the cutoff, tuned minus default, with 95 % intervals."""
    rows = []
    for h in default.horizons:
        a = _after(default.horizons[h].frame, default.folds[default.folds["horizon"] == h], cutoff)
        b = _after(tuned.horizons[h].frame, tuned.folds[tuned.folds["horizon"] == h], cutoff)
        both = (
            a[["y", "block"]]
            .join(a["p_champion"].rename("old"))
            .join(b["p_champion"].rename("new"), how="inner")
        )
        y, blocks = both["y"].to_numpy(), both["block"].to_numpy()
        old, new = (
            per_block(y, both["old"].to_numpy(), blocks),
            per_block(y, both["new"].to_numpy(), blocks),
        )
        (within_pr, within_roc) = block_bootstrap_cis(
            lambda i, old=old, new=new: [
                new.resampled(i).pr_auc - old.resampled(i).pr_auc,
                new.resampled(i).roc_auc - old.resampled(i).roc_auc,
            ],
            np.arange(len(old.events)),
            n_boot=n_boot,
        )
        p_old, p_new = both["old"].to_numpy(), both["new"].to_numpy()
        (pooled,) = block_bootstrap_cis(
            lambda i, y=y, p_old=p_old, p_new=p_new: [
                pr_auc(y[i], p_new[i]) - pr_auc(y[i], p_old[i])
            ],
            time_blocks(both.index.get_level_values("timestamp").to_series(), 72),
            n_boot=n_boot,
        )
        o, n = old.mean(), new.mean()
        rows.append(
            {
                "horizon": h,
                "blocks": len(old.events),
                "flush_bars": int(y.sum()),
                "within PR-AUC default": o.pr_auc,
                "within PR-AUC tuned": n.pr_auc,
                "edge [95 %]": _edge(n.pr_auc - o.pr_auc, within_pr),
                "within ROC default": o.roc_auc,
                "within ROC tuned": n.roc_auc,
                "ROC edge [95 %]": _edge(n.roc_auc - o.roc_auc, within_roc),
                "pooled PR-AUC edge [95 %]": _edge(pr_auc(y, p_new) - pr_auc(y, p_old), pooled),
            }
        )
    return pd.DataFrame(rows).set_index("horizon")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--horizons", default="4,12,24")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--cluster", help="as `flushcast evaluate --cluster`")
    parser.add_argument(
        "--set", action="append", default=[], help="KEY=VALUE: compare these settings, no study"
    )
    args = parser.parse_args()
    horizons = tuple(int(h) for h in args.horizons.split(","))
    runner = engine(args.cluster)
    label = LabelSpec(horizons=horizons)
    dataset = load_dataset(args.store, label=label, runner=runner)
    config = TrainingConfig(label=label)
    began = time.perf_counter()
    if args.set:
        other = config.with_overrides(dict(parse_override(text) for text in args.set))
        cutoff = default_cutoff(dataset)
        span = training_span(dataset, cutoff)
        inner = [inner_score(span, c, runner) for c in (config, other)]
        print(
            f"inner champion within-block {config.selection.metric} before {cutoff.date()}: "
            f"defaults {inner[0]:.4f}, with {' '.join(args.set)} {inner[1]:.4f} "
            f"({time.perf_counter() - began:.0f} s)"
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tuned = tune(
                dataset, config, runner, trials=args.trials, storage=Path(tmp) / "study.db"
            )
        print(
            f"tuning: {args.trials} trials in {time.perf_counter() - began:.0f} s; inner "
            f"champion within-block {config.selection.metric} {tuned.default:.4f} -> "
            f"{tuned.best:.4f} (before {tuned.cutoff.date()})"
        )
        other, cutoff = tuned.config, tuned.cutoff
    changed = {k: (v, other.flat()[k]) for k, v in config.flat().items() if other.flat()[k] != v}
    print("settings changed:", changed or "none")
    if not changed:
        return
    default = evaluate(dataset, config, runner=runner)
    chosen = evaluate(dataset, other, runner=runner)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(compare(default, chosen, cutoff).round(4).to_string())
    for h in default.horizons:
        for name, ev in (("defaults", default), ("other", chosen)):
            champion = ev.record.horizons[h].models["champion"]
            interval = ev.record.horizons[h].intervals.get("champion_pr_auc")
            print(
                f"H={h} {name}: champion PR-AUC {champion.pr_auc:.4f} {interval}, "
                f"within folds {champion.pr_auc_within_fold:.4f}"
            )


if __name__ == "__main__":
    main()
