"""Champion rules compared on one walk-forward's out-of-fold scores (README, "Why the stack
trails its best part within blocks").

    python -m benchmarks.combination_study --store DIR [--horizons 24,72] [--min-train H]
        --cache PASS1.pkl [--set KEY=VALUE ...] [--variant NAME:KEY=VALUE[;KEY=VALUE ...] ...]
        [--paired MODEL:OTHER ...] [--halves] [--json OUT.json]

Pass 1 (every candidate and baseline refitted on every fold: the expensive part) runs once and
is cached in `--cache` (pickle; scratch, never in git). Pass 2 (calibration, combination, the
record: `training.walkforward.calibrate_fold` and `training.evaluate.horizon_record`, exactly
what `flushcast evaluate` runs) is repeated for each variant's configuration (`--set` keys of
`flushcast evaluate`) on those same scores. `--direction-variant` also refits the direction
trees and rules (cheap) under its configuration; so does every variant when the cache predates
the rules' log-odds (`--direction-refit`). `--direction-only` reruns only pass 2's direction
part (`direction_pass`: the call's weights and the record's direction table), for each variant
and the default, with each variant's direction model against the default's on the same bars
(paired block-bootstrap interval), and with `--halves` the direction on each half of the
scored span. A direction variant may change the direction model's inputs alone with the
pseudo-key `direction.families=-FAMILY,+FAMILY` (`FAMILIES`). A cache made before the move
labels (`fit.direction.move_weight`) gets them from the stores (`with_moves`). Printed per
variant and horizon: the champion's
pooled ROC, ROC within blocks, lift, Brier skill, the best part's ROC within blocks (best on the
test blocks: hindsight, for reference only), the champion's mean shares and the direction
accuracies. Pass 2 never sees a test block's labels before it is scored, so a variant chosen
here is still chosen by its rule, not tuned on the blocks it is reported on; report each once.

`--set` changes every variant, `default` included; a candidate it adds to `fit.candidates`
that the cache lacks is refitted alone and added to the cache. `--paired MODEL:OTHER` prints, in the
default run, MODEL's pooled and within-block ROC and lift beside OTHER's with 95 %
block-bootstrap intervals of the paired difference (`benchmarks.feature_ablation.compare`);
each variant's champion is compared with the default's the same way. `--halves` prints each
candidate's pass-1 ROC within blocks on the first and the second half of the tested span (a
setting is chosen on the first; README, "Training for the ranking"), and each variant's
champion's pooled ROC, ROC within blocks and lift on the two halves (a rule is chosen on the
first).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.feature_ablation import KEYS, compare
from flushcast.common.engine import engine
from flushcast.features.registry import FEATURES, without_families
from flushcast.marketdata.schema import KEY_COLUMNS, conform
from flushcast.marketdata.store import MarketStore
from flushcast.training import metrics, recipe
from flushcast.training.cli import cli_config, cli_dataset
from flushcast.training.config import TrainingConfig, parse_override
from flushcast.training.evaluate import direction_record, horizon_record
from flushcast.training.horizon import horizon_data, side_codes
from flushcast.training.labels import (
    LONG_FLUSH,
    SHORT_SQUEEZE,
    direction_column,
    make_labels,
    move_columns,
)
from flushcast.training.metrics import block_bootstrap_cis, direction_accuracy, time_blocks
from flushcast.training.recipe import Evidence, Refit
from flushcast.training.tasks import out_of_fold_all, walk_forward_plans
from flushcast.training.walkforward import (
    CHAMPION,
    assemble,
    calibrate_fold,
    direction_columns,
    out_of_fold,
)


def direction_only(plans: Any, config: TrainingConfig) -> dict[int, Any]:
    """Pass 1's out-of-fold direction log-odds alone under `config` (the trees' and the rules':
    no flush model refitted, the direction trees are cheap, so their variants and a cache made
    before the rules shipped need no new pass 1)."""
    return {
        h: out_of_fold(data, folds, config, names=[]).direction
        for h, (data, folds) in plans.items()
    }


def with_moves(plans: Any, stores: list[Path], config: TrainingConfig) -> None:
    """Rows cached before the move labels existed given their move side and ratio, made from
    the stores' bars by the label's own code (`training.labels.make_labels`), in place; the
    labels' direction must match the cached one row for row (the same bars, the same label)."""
    if all(data.move_side is not None for data, _ in plans.values()):
        return
    parts = []
    for store in stores:
        market = MarketStore(store)
        parts.append(make_labels(conform(market.read()), config.label, bar=market.common_bar()))
    labels = pd.concat(parts, ignore_index=True)
    for key in ("symbol", "venue"):
        labels[key] = labels[key].astype(str)
    for h, (data, _) in plans.items():
        keys = data.keys.astype({"symbol": str, "venue": str})
        columns = [direction_column(h), *move_columns(h)]
        on = list(KEY_COLUMNS)
        got = keys.merge(labels[[*on, *columns]], on=on, how="left", validate="1:1")
        side, ratio = move_columns(h)
        same = got[direction_column(h)].astype(object).to_numpy() == data.direction
        if not np.all(same | (pd.isna(got[direction_column(h)]) & pd.isna(data.direction))):
            raise SystemExit(f"H={h}: the stores' labels differ from the cached rows'")
        data.move_side = side_codes(got[side].to_numpy())
        data.move_ratio = got[ratio].to_numpy(dtype="float64")


FAMILIES = "direction.families"
"""A direction variant's pseudo-key: `-FAMILY` drops that feature family from the direction
model's inputs, `+FAMILY` adds one the configuration excludes (built from the stores for the
same rows); comma-separated. Benchmark only: the flush models keep their inputs."""


def family_plans(plans: Any, change: str, args: argparse.Namespace, config: TrainingConfig) -> Any:
    """The plans with the direction model's inputs changed as `change` says (`FAMILIES`)."""
    drop = [f[1:] for f in change.split(",") if f.startswith("-")]
    add = [f[1:] for f in change.split(",") if f.startswith("+")]
    wider = None
    if add:
        kept = [f for f in config.features.exclude_families if f not in add]
        wide = config.with_overrides({"features.exclude_families": kept})
        wider = cli_dataset(args.store, None, None, wide, engine(args.cluster))
    out = {}
    for h, (data, folds) in plans.items():
        source = data
        if wider is not None:
            source = horizon_data(wider, h)
            if not source.keys.equals(data.keys):
                raise SystemExit(f"H={h}: the rebuilt rows differ from the cached ones")
        features = [c for c in source.columns if c in FEATURES]
        keep = set(without_families(drop, features)) | {
            c for c in source.columns if c not in FEATURES
        }
        use = [j for j, c in enumerate(source.columns) if c in keep]
        columns = [source.columns[j] for j in use]
        out[h] = (dataclasses.replace(data, X=source.X[:, use], columns=columns), folds)
    return out


def pass_one(args: argparse.Namespace, config: TrainingConfig) -> tuple[Any, Any]:
    """Every horizon's plan (rows, folds) and out-of-fold scores, from the cache if there."""
    if args.cache.exists():
        with args.cache.open("rb") as f:
            plans, oofs = pickle.load(f)
        missing = [n for n in recipe.learners(config, next(iter(plans.values()))[0]) if n not in
                   next(iter(oofs.values())).raw]  # fmt: skip
        if missing:
            added = out_of_fold_all(plans, config, engine(args.cluster), names=missing)
            for h, oof in oofs.items():
                oof.raw |= added[h].raw
                oof.calibrated |= added[h].calibrated
            with args.cache.open("wb") as f:
                pickle.dump((plans, oofs), f)
        return plans, oofs
    runner = engine(args.cluster)
    dataset = cli_dataset(args.store, None, None, config, runner)
    plans = walk_forward_plans(dataset, config)
    oofs = out_of_fold_all(plans, config, runner)
    with args.cache.open("wb") as f:
        pickle.dump((plans, oofs), f)
    return plans, oofs


def pass_two(
    plans: Any, oofs: Any, config: TrainingConfig, direction: dict[int, Any] | None = None
) -> dict[int, dict[str, Any]]:
    """The record's headline figures per horizon under `config` (with `direction`: these
    out-of-fold direction log-odds in place of pass 1's)."""
    out = {}
    for h, (data, folds) in plans.items():
        oof = oofs[h]
        if direction is not None:
            oof = dataclasses.replace(oof, direction=direction[h], excluded=dict(oof.excluded))
        outcomes = [calibrate_fold(data, fold, oof, config) for fold in folds]
        result = assemble(data, folds, oof, outcomes)
        entry = horizon_record(result, h, config)
        parts = [n for n in config.combination.inputs if n in entry.models]
        best = max(parts, key=lambda n: entry.metric(n, "roc_auc_within_fold") or 0.0)
        out[h] = {
            "episodes": entry.n_events,
            "champion": {
                k: entry.metric(CHAMPION, k)
                for k in (
                    "roc_auc",
                    "roc_auc_within_fold",
                    "lift",
                    "lift_within_fold",
                    "brier_skill",
                )
            },
            "models": {
                n: {k: entry.metric(n, k) for k in ("roc_auc", "roc_auc_within_fold", "lift")}
                for n in entry.models
            },
            "best_part": best,
            "best_part_roc_within": entry.metric(best, "roc_auc_within_fold"),
            "best_baseline_roc_within": entry.best_baseline_roc_within_fold,
            "edge_roc_within": entry.edge_over_best_baseline_roc_within_fold,
            "shares": entry.champion_shares,
            "direction": entry.direction.model_dump() if entry.direction else None,
            "frame": result.frame,  # the predictions `--paired` compares (not in the JSON)
        }
    return out


def direction_pass(
    plans: Any, oofs: Any, config: TrainingConfig, direction: dict[int, Any] | None = None
) -> dict[int, dict[str, Any]]:
    """Pass 2's direction part alone under `config` (a direction setting moves nothing else):
    on the folds pass 2 scores, the call's weights and P(long flush)
    (`training.walkforward.direction_columns`), then the record's direction table."""
    out = {}
    for h, (data, folds) in plans.items():
        oof = oofs[h]
        if direction is not None:
            oof = dataclasses.replace(oof, direction=direction[h], excluded=dict(oof.excluded))
        columns: dict[str, np.ndarray] = {}
        weights = []
        for fold in folds:
            evidence = Evidence.at(data, oof, Refit.of_fold(fold), config)
            if oof.excluded.get(fold.number) or evidence.shortfall(config):
                continue
            call, values = direction_columns(data, fold, evidence, oof, config)
            weights.append(call.weights)
            for column, p in values.items():
                columns.setdefault(column, np.full(len(data.y), np.nan))[fold.test] = p
        keep = np.isfinite(columns["p_long"])
        frame = data.keys[keep].reset_index(drop=True)
        frame["y"] = data.y[keep]
        frame["direction"] = pd.Categorical(data.direction[keep])
        for column, p in columns.items():
            frame[column] = p[keep]
        made_of = pd.DataFrame(weights).fillna(0.0).mean().to_dict()
        entry = direction_record(frame, h, config, made_of)
        out[h] = {"direction": entry.model_dump() if entry else None, "frame": frame}
    return out


def direction_halves(frame: pd.DataFrame, h: int, config: TrainingConfig) -> str:
    """The direction model's and the best rule's accuracy on the first and the second half of
    the scored span (a direction setting is chosen on the first half)."""
    stamps = frame["timestamp"]
    middle = stamps.min() + (stamps.max() - stamps.min()) / 2
    cells = []
    for half, rows in (("first", stamps < middle), ("second", stamps >= middle)):
        entry = direction_record(frame[rows.to_numpy()], h, config)
        if entry is None:
            cells.append(f"{half} half: no one-sided flush")
            continue
        best = entry.best_rule
        cells.append(
            f"{half} half: n {entry.n_sided} model {entry.accuracy['model']:.3f} "
            f"best rule {best} {entry.accuracy.get(best) or float('nan'):.3f}"
        )
    return " | ".join(cells)


def direction_paired(
    mine: pd.DataFrame, theirs: pd.DataFrame, config: TrainingConfig
) -> tuple[float, float, tuple[float, float]]:
    """Accuracy of `mine`'s direction model and of `theirs`' on the same one-sided flush bars,
    with the 95 % block-bootstrap interval of the difference (blocks as the record's)."""
    on = list(KEY_COLUMNS)
    both = mine.merge(theirs[[*on, "p_long_model"]], on=on, suffixes=("", "_theirs"))
    truth = both["direction"].astype(object).to_numpy()
    sided = (both["y"].to_numpy() == 1) & np.isin(truth, [LONG_FLUSH, SHORT_SQUEEZE])
    part, truth = both[sided], truth[sided]
    a, b = part["p_long_model"].to_numpy(), part["p_long_model_theirs"].to_numpy()

    def gap(rows: np.ndarray) -> list[float]:
        return [direction_accuracy(truth[rows], a[rows]) - direction_accuracy(truth[rows], b[rows])]

    blocks = time_blocks(part["timestamp"], config.evaluation.block_hours)
    (interval,) = block_bootstrap_cis(gap, blocks, n_boot=config.evaluation.n_boot)
    return direction_accuracy(truth, a), direction_accuracy(truth, b), interval


def _direction_text(d: dict[str, Any] | None) -> str:
    """The direction accuracies, their intervals and what the call is made of, on one line."""
    if not d:
        return "no one-sided flush"
    ci = d.get("intervals", {})

    def cell(name: str) -> str:
        low, high = ci.get(name) or (None, None)
        return f"{name} {d['accuracy'][name]:.3f}" + (
            f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        )

    best = d.get("best_rule")
    gaps = [k for k in ci if "_minus_" in k]
    return (
        f"n {d['n_sided']} ({d['n_episodes']} ep) | "
        + " ".join(cell(n) for n, v in d["accuracy"].items() if v is not None)
        + f" | best rule {best} | "
        + " ".join(f"{k} [{ci[k][0]:+.3f}, {ci[k][1]:+.3f}]" for k in gaps if None not in ci[k])
        + " | made of "
        + " ".join(f"{k} {v:.2f}" for k, v in d.get("made_of", {}).items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, action="append", required=True)
    parser.add_argument("--horizons")
    parser.add_argument("--min-train", type=int)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--cluster")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--paired", action="append", default=[])
    parser.add_argument("--halves", action="store_true")
    parser.add_argument("--direction-variant", action="append", default=[])
    parser.add_argument("--direction-refit", action="store_true")
    parser.add_argument("--direction-only", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = cli_config(
        None, args.sets, None, args.horizons, None, args.n_boot, None, None, args.min_train
    )
    plans, oofs = pass_one(args, base)
    with_moves(plans, args.store, base)
    if args.halves and not args.direction_only:
        halves(plans, oofs, base)
    variants: dict[str, tuple[TrainingConfig, Any]] = {"default": (base, None)}
    refit = args.direction_refit or not hasattr(next(iter(oofs.values())), "direction")
    if refit:
        variants["default"] = (base, direction_only(plans, base))
    for text in args.variant + args.direction_variant:
        name, _, sets = text.partition(":")
        families = [s.partition("=")[2] for s in sets.split(";") if s.startswith(FAMILIES + "=")]
        overrides = dict(
            parse_override(s) for s in sets.split(";") if s and not s.startswith(FAMILIES + "=")
        )
        config = base.with_overrides(overrides)
        own = text in args.direction_variant and (
            families or any(k.startswith("fit.") for k in overrides)
        )
        seen = family_plans(plans, families[0], args, base) if families else plans
        direction = direction_only(seen, config) if own else variants["default"][1]
        variants[name] = (config, direction)
    results = {}
    for name, (config, direction) in variants.items():
        if args.direction_only:
            results[name] = direction_pass(plans, oofs, config, direction)
            for h, r in results[name].items():
                print(f"{name:>24} H={h:>3} dir {_direction_text(r['direction'])}", flush=True)
                if args.halves:
                    halved = direction_halves(r["frame"], h, config)
                    print(f"{name:>24} H={h:>3} dir {halved}", flush=True)
                if name != "default":
                    got = direction_paired(r["frame"], results["default"][h]["frame"], config)
                    print(
                        f"{name:>24} H={h:>3} dir model {got[0]:.3f} vs default {got[1]:.3f} "
                        f"[{got[2][0]:+.3f}, {got[2][1]:+.3f}]",
                        flush=True,
                    )
            continue
        results[name] = pass_two(plans, oofs, config, direction)
        for h, r in results[name].items():
            c = r["champion"]
            d = r["direction"] or {}
            acc = d.get("accuracy", {})
            print(
                f"{name:>24} H={h:>3} ep={r['episodes']:>4}  champion roc {c['roc_auc']:.3f} "
                f"in-blocks {c['roc_auc_within_fold']:.3f} lift {c['lift']:.2f} "
                f"bss {c['brier_skill']:+.3f} | best part {r['best_part']} "
                f"{r['best_part_roc_within']:.3f} | edge vs {r['best_baseline_roc_within']} "
                f"{r['edge_roc_within']:+.3f} | dir "
                + " ".join(f"{k} {v:.3f}" for k, v in acc.items() if v is not None)
                + " | "
                + " ".join(f"{k} {v:.2f}" for k, v in r["shares"].items()),
                flush=True,
            )
    if args.halves:
        for name, got in results.items():
            for h, r in got.items():
                print(f"{name:>24} H={h:>3} champion {champion_halves(r['frame'])}", flush=True)
    pairs = [(text.partition(":")[0], text.partition(":")[2], "default") for text in args.paired]
    pairs += [(CHAMPION, CHAMPION, name) for name in variants if name != "default"]
    if args.direction_only:
        pairs = []  # no champion was scored
    for model, other, variant in pairs:
        for h, entry in results[variant].items():
            mine = _paired(entry["frame"], model)
            theirs = _paired(results["default"][h]["frame"], other)
            got = compare(theirs, mine, args.n_boot)
            cells = " | ".join(
                f"{k} {got[k][1]:.3f} vs {got[k][0]:.3f} [{got[k][2][0]:+.3f}, {got[k][2][1]:+.3f}]"
                for k in ("roc", "lift", "roc_in_blocks", "lift_in_blocks")
            )
            print(f"paired H={h:>3} {variant}:{model} vs default:{other} | {cells}", flush=True)
    if args.json:
        shown = {
            name: {h: {k: v for k, v in r.items() if k != "frame"} for h, r in got.items()}
            for name, got in results.items()
        }
        args.json.write_text(json.dumps(shown, indent=1, default=str))


def halves(plans: Any, oofs: Any, config: TrainingConfig) -> None:
    """Print each candidate's pass-1 ROC within blocks on the first and the second half of
    the tested span: a setting is chosen on the first half (README, "Training for the
    ranking"), the second is for reference."""
    for h, (data, _) in plans.items():
        oof = oofs[h]
        tested = oof.block_of >= 0
        first, last = data.t[tested].min(), data.t[tested].max()
        middle = first + (last - first) / 2
        for half, rows in (
            ("first", tested & (data.t < middle)),
            ("second", tested & (data.t >= middle)),
        ):
            cells = []
            for name in config.fit.candidates:
                scores = oof.raw[name]
                used = rows & np.isfinite(scores)
                got = metrics.within_blocks(data.y[used], scores[used], oof.block_of[used]).roc_auc
                cells.append(f"{name} {got:.3f}")
            print(f"H={h:>3} {half} half: " + " | ".join(cells), flush=True)


def champion_halves(frame: pd.DataFrame) -> str:
    """The champion's pooled ROC, ROC within blocks and lift on the first and the second half
    of the tested span (a rule's setting is chosen on the first)."""
    first, last = frame["timestamp"].min(), frame["timestamp"].max()
    middle = first + (last - first) / 2
    cells = []
    for half, rows in (
        ("first", frame["timestamp"] < middle),
        ("second", frame["timestamp"] >= middle),
    ):
        part = frame[rows & np.isfinite(frame[f"p_{CHAMPION}"])]
        y, p = part["y"].to_numpy(dtype="float64"), part[f"p_{CHAMPION}"].to_numpy()
        inner = metrics.within_blocks(y, p, part["block"].to_numpy()).roc_auc
        cells.append(
            f"{half} half roc {metrics.roc_auc(y, p):.3f} in-blocks {inner:.3f} "
            f"lift {metrics.lift(y, p):.2f}"
        )
    return " | ".join(cells)


def _paired(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """One model's predictions in the form `feature_ablation.compare` pairs."""
    return frame[[*KEYS, "y", "block", f"p_{model}"]].rename(columns={f"p_{model}": "p"})


if __name__ == "__main__":
    main()
