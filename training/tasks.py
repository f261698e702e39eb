"""The walk-forward as tasks on `common.engine`: pass 1 one task per fold (folds are
independent), pass 2 a task per few folds (independent there too), then one per horizon to
assemble its predictions and build its record; each horizon's rows shared once (the
folds are made from them where they are).

Results come back in the order the tasks were given, so the evaluation is the same wherever
they ran (tests/training/test_engine.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from flushcast.common.engine import Engine
from flushcast.common.errors import DataError
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import Dataset, require_enough
from flushcast.training.horizon import HorizonData, horizon_data
from flushcast.training.recipe import OutOfFold
from flushcast.training.splits import Fold
from flushcast.training.walkforward import (
    FoldOutcome,
    HorizonPredictions,
    assemble,
    calibrate_fold,
    out_of_fold,
)

Plans = dict[int, tuple[HorizonData, list[Fold]]]
Shared = dict[int, tuple[Any, int, int]]
"""Per horizon: its rows on the engine (`runner.share`d `HorizonData`; each task makes the
folds from them, `HorizonData.folds`), how many rows and how many folds."""


def _score_fold(
    data: HorizonData,
    number: int,
    config: TrainingConfig,
    names: list[str] | None,
) -> tuple[np.ndarray, OutOfFold]:
    """Pass 1 on fold `number` of a horizon's rows: its test rows' positions and their
    out-of-fold scores only (a task's answer travels back, so it carries no full-length
    arrays)."""
    fold = data.folds(config)[number]
    oof = out_of_fold(data, [fold], config, names=names)
    rows = np.flatnonzero(oof.fold_of >= 0)
    oof.raw = {name: scores[rows] for name, scores in oof.raw.items()}
    oof.direction = {name: scores[rows] for name, scores in oof.direction.items()}
    oof.fold_of, oof.block_of = oof.fold_of[rows], oof.block_of[rows]
    return rows, oof


def _merge(parts: Sequence[tuple[np.ndarray, OutOfFold]], n: int) -> OutOfFold:
    """One horizon's OutOfFold from its folds' parts, taken in fold order (so the gains add up
    in the order a single pass adds them)."""
    names = list(parts[0][1].raw)
    merged = OutOfFold(
        raw={name: np.full(n, np.nan) for name in names},
        direction={},
        fold_of=np.full(n, -1, dtype=np.int64),
        block_of=np.full(n, -1, dtype=np.int64),
    )
    gains = [p.gain for _, p in parts if p.gain is not None]
    for rows, part in parts:
        merged.fold_of[rows] = part.fold_of
        merged.block_of[rows] = part.block_of
        for name, scores in part.direction.items():
            merged.direction.setdefault(name, np.full(n, np.nan))[rows] = scores
        for name in names:
            merged.raw[name][rows] = part.raw[name]
        merged.excluded.update(part.excluded)
        merged.calibrated.update(part.calibrated)
    merged.gain = sum(gains[1:], gains[0]) if gains else None
    return merged


def out_of_fold_all(
    plans: Plans,
    config: TrainingConfig,
    runner: Engine,
    *,
    names: list[str] | None = None,
    on_fold: Callable[[], None] | None = None,
) -> dict[int, OutOfFold]:
    """Pass 1 of every horizon, one task per fold: each horizon's rows are shared once (its
    folds, `data.folds(config)`, are made again where the rows are)."""
    shared = {
        h: (runner.share(data), len(data.y), len(folds)) for h, (data, folds) in plans.items()
    }
    return _pass_one(shared, config, runner, names, on_fold)


def _pass_one(
    shared: Shared,
    config: TrainingConfig,
    runner: Engine,
    names: list[str] | None,
    on_fold: Callable[[], None] | None,
) -> dict[int, OutOfFold]:
    """Pass 1 of every horizon of `shared`, one task per fold."""
    shared_config = runner.share(config)
    calls = [
        (data, i, shared_config, names)
        for data, _, n_folds in shared.values()
        for i in range(n_folds)
    ]
    results = iter(runner.run(_score_fold, calls, on_fold))
    return {
        h: _merge([next(results) for _ in range(n_folds)], rows)
        for h, (_, rows, n_folds) in shared.items()
    }


def _plan(dataset: Dataset, config: TrainingConfig, horizon: int) -> tuple[HorizonData, list[Fold]]:
    """One horizon's rows and folds, refusing a horizon too short to evaluate."""
    min_hours = config.walk_forward.min_train_hours + config.walk_forward.retrain_every_hours
    require_enough(dataset, horizon, min_hours)
    data = horizon_data(dataset, horizon)
    folds = data.folds(config)
    if not folds:
        raise DataError(f"no walk-forward fold at H={horizon}: the data is too short")
    return data, folds


def walk_forward_plans(dataset: Dataset, config: TrainingConfig) -> Plans:
    """Every horizon's rows and folds, refusing a horizon too short to evaluate."""
    return {h: _plan(dataset, config, h) for h in dataset.label.horizons}


def share_plans(dataset: Dataset, config: TrainingConfig, runner: Engine) -> Shared:
    """Every horizon's rows, built, shared and let go in turn: on a cluster the client holds
    one horizon's model matrix at a time while building and none while the tasks run (the
    workers hold them)."""
    shared: Shared = {}
    for h in dataset.label.horizons:
        data, folds = _plan(dataset, config, h)
        shared[h] = (runner.share(data), len(data.y), len(folds))
        del data, folds
    return shared


def count_folds(dataset: Dataset, config: TrainingConfig) -> int:
    """Folds over all horizons (for a progress bar)."""
    total = 0
    for h in dataset.label.horizons:
        rows = dataset.labelled(h)
        if len(rows):
            stamps, tested = rows["timestamp"], dataset.tested(rows)
            total += len(config.walk_forward.folds(stamps, h, dataset.split_bar, tested=tested))
    return total


FOLDS_PER_TASK = 8
"""Pass 2 folds per task: enough work to outweigh a task's overhead, small enough that two
workers share a horizon's folds evenly."""


def _calibrate_folds(
    data: HorizonData, oof: OutOfFold, numbers: range, config: TrainingConfig
) -> list[FoldOutcome]:
    """Pass 2 of some folds of one horizon (folds are independent in pass 2)."""
    folds = data.folds(config)
    return [calibrate_fold(data, folds[i], oof, config) for i in numbers]


def _assemble(
    data: HorizonData,
    oof: OutOfFold,
    parts: list[list[FoldOutcome]],
    config: TrainingConfig,
    then: Callable[[HorizonPredictions, int, TrainingConfig], Any] | None,
) -> tuple[HorizonPredictions, Any]:
    """One horizon's predictions from its folds' pass 2 (`parts`: the pass 2 tasks' answers,
    in fold order), and `then` of them (the record: built in the same task)."""
    result = assemble(
        data, data.folds(config), oof, [outcome for part in parts for outcome in part]
    )
    return result, then(result, data.horizon, config) if then is not None else None


def walk_forward(
    dataset: Dataset,
    config: TrainingConfig,
    runner: Engine,
    *,
    names: list[str] | None = None,
    on_fold: Callable[[], None] | None = None,
    then: Callable[[HorizonPredictions, int, TrainingConfig], Any] | None = None,
) -> dict[int, tuple[HorizonPredictions, Any]]:
    """Both passes of every horizon on `runner` (of the `names`d models; default: every
    candidate and baseline): per horizon its predictions and `then`'s answer for them."""
    shared = share_plans(dataset, config, runner)
    oofs = _pass_one(shared, config, runner, names, on_fold)
    shared_oofs = {h: runner.share(oof) for h, oof in oofs.items()}
    shared_config = runner.share(config)
    chunks = {
        h: [range(n_folds)[i : i + FOLDS_PER_TASK] for i in range(0, n_folds, FOLDS_PER_TASK)]
        for h, (_, _, n_folds) in shared.items()
    }
    calls = [(shared[h][0], shared_oofs[h], c, shared_config) for h in shared for c in chunks[h]]
    # Pass 2's answers (every model's probabilities on every test row: megabytes) stay on the
    # workers; the assembling task reads them there.
    parts = iter(runner.keep(_calibrate_folds, calls))
    kept = {h: [next(parts) for _ in chunks[h]] for h in shared}
    calls = [(shared[h][0], shared_oofs[h], kept[h], shared_config, then) for h in shared]
    return dict(zip(shared, runner.run(_assemble, calls), strict=True))
