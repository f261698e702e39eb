"""The walk-forward: every candidate and baseline on the same purged folds, then calibration
and the choice of champion from out-of-fold evidence only.

Pass 1 refits every learner on each fold's training rows and scores the fold's test rows: the
out-of-fold (OOF) scores. Pass 2 walks the folds in time order; for fold f it looks only at
OOF rows whose labels were known before f's training cutoff (the inner walk-forward):

- each learner's calibrator is fitted on its OOF scores there (`models.calibration`), with the
  training base rate as the prior;
- the champion of fold f combines the candidates' and chosen baselines' standardised OOF
  scores there (`training.combine`: a non-negative stack shrunk toward equal shares, or the
  best candidate), and its combined score gets its own calibrator on the same rows;
- the trivial direction rules (majority side, sign of funding, sign of the 24 h return) learn
  their orientation from the fold's training rows.

So a test block is never used to tune, calibrate or choose anything that scores it. A fold
with no flush to train on, or too few OOF flushes to calibrate on, is left out for every
model alike, with the reason recorded. `flushcast train` runs the same two passes and then
applies the final choice and calibration to a model fitted on every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.registry import FEATURES, MISSING_GROUPS, depending_on
from models.calibration import Calibrator
from models.config import make_candidate, make_direction
from models.learners import GradientBoosting, Learner
from models.matrix import columns as model_columns
from models.matrix import model_matrix
from training.baselines import BASELINES, is_calibrated
from training.combine import combine
from training.config import TrainingConfig
from training.dataset import Dataset
from training.labels import LONG_FLUSH, SHORT_SQUEEZE, direction_column, flush_column
from training.metrics import pr_auc
from training.splits import Fold

HOUR = np.timedelta64(1, "h")
CHAMPION = "champion"


@dataclass
class HorizonData:
    """One horizon's labelled rows in time order, their model matrix and targets."""

    horizon: int
    keys: pd.DataFrame
    """`timestamp`, `symbol`, `venue` of each row."""
    X: np.ndarray
    y: np.ndarray
    direction: np.ndarray
    columns: list[str]
    symbols: list[str]
    episode_start: np.ndarray
    """True on the first bar of each flush episode (a run of flush bars of one series)."""
    tested: np.ndarray
    """True on rows the walk-forward scores (False: a training-only store's series)."""
    bar: pd.Timedelta
    """The folds' time grid: the finest bar of any row (`Dataset.split_bar`)."""

    @property
    def t(self) -> np.ndarray:
        return self.keys["timestamp"].to_numpy(dtype="datetime64[us]")

    def sided(self) -> tuple[np.ndarray, np.ndarray]:
        """(one-sided flush mask, 1.0 for a long flush)."""
        sided = (self.direction == LONG_FLUSH) | (self.direction == SHORT_SQUEEZE)
        return sided, (self.direction == LONG_FLUSH).astype("float64")

    def folds(self, config: TrainingConfig) -> list[Fold]:
        """The walk-forward folds of these rows (test rows only where `tested`)."""
        return config.walk_forward.folds(
            self.keys["timestamp"], self.horizon, self.bar, tested=self.tested
        )


def horizon_data(dataset: Dataset, horizon: int) -> HorizonData:
    """The labelled rows at `horizon`, sorted by time then symbol and venue."""
    rows = dataset.labelled(horizon)
    features, symbols = dataset.features, dataset.symbols()
    y = rows[flush_column(horizon)].to_numpy(dtype="float64")
    return HorizonData(
        horizon=horizon,
        keys=rows[["timestamp", "symbol", "venue"]],
        X=model_matrix(rows, features, symbols),
        y=y,
        direction=rows[direction_column(horizon)].astype(object).to_numpy(),
        columns=model_columns(features),
        symbols=list(symbols),
        episode_start=episode_starts(rows, y, dataset.bar),
        tested=dataset.tested(rows),
        bar=dataset.split_bar,
    )


def episode_starts(keys: pd.DataFrame, y: np.ndarray, bar: pd.Timedelta) -> np.ndarray:
    """True where a flush bar follows a bar of the same series that was not one (or a gap)."""
    series = keys["symbol"].astype(str) + "@" + keys["venue"].astype(str)
    stamps = pd.DatetimeIndex(keys["timestamp"])
    order = np.lexsort((stamps.asi8, pd.factorize(series)[0]))
    same = np.r_[False, series.to_numpy()[order][1:] == series.to_numpy()[order][:-1]]
    step = np.r_[0, np.diff(stamps.asi8[order])]
    follows = same & (step == bar // pd.Timedelta("1us"))
    positive = y[order] == 1
    start_sorted = positive & ~(follows & np.r_[False, positive[:-1]])
    out = np.zeros(len(y), dtype=bool)
    out[order] = start_sorted
    return out


def dropout_groups(columns: Sequence[str]) -> list[list[int]]:
    """Column positions of each input group a real source may lack as a whole."""
    features = [c for c in columns if c in FEATURES]
    groups = [[columns.index(f) for f in depending_on(g, features)] for g in MISSING_GROUPS]
    return [g for g in groups if g]


def learners(config: TrainingConfig, data: HorizonData) -> dict[str, Callable[[int], Learner]]:
    """Every model of the evaluation by name: the candidates, then the baselines."""
    groups = dropout_groups(data.columns)
    made: dict[str, Callable[[int], Learner]] = {
        name: (lambda fold, name=name: make_candidate(name, data.columns, config.fit, groups))
        for name in config.fit.candidates
    }
    for name in config.evaluation.baselines:
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r} (choose from {', '.join(BASELINES)})")
        factory = BASELINES[name]
        made[name] = lambda fold, f=factory: f(data.columns, data.horizon, fold)
    return made


def score_scale(
    model: Learner, X: np.ndarray, t: np.ndarray | None = None, seed: int = 0
) -> tuple[float, float]:
    """Mean and spread of a fitted learner's scores on (a sample of) its training rows.

    Dividing by these puts refits trained on a month and on a year on one scale, which is what
    lets one calibrator serve scores from many refits (see `models.calibration`).
    """
    rows = np.random.default_rng(seed).choice(len(X), size=min(len(X), 3000), replace=False)
    scores = model.score(X[rows], None if t is None else t[rows])
    spread = float(np.std(scores))
    return float(np.mean(scores)), spread if spread > 1e-12 else 1.0


@dataclass
class OutOfFold:
    """Pass 1: every learner's scores on every trained fold's test rows.

    Scores of calibrated learners are standardised by their fold model's training-score mean
    and spread (`score_scale`); climatology's are its probabilities.
    """

    raw: dict[str, np.ndarray]
    p_long: np.ndarray
    fold_of: np.ndarray
    """Fold number of each row (-1: never tested)."""
    excluded: dict[int, str] = field(default_factory=dict)
    calibrated: dict[str, bool] = field(default_factory=dict)
    """Whether each learner's score needs a calibrator (climatology's is a probability)."""
    gain: pd.Series | None = None
    """Total LightGBM gain per input over the folds (when a LightGBM candidate ran)."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def out_of_fold(
    data: HorizonData,
    folds: Sequence[Fold],
    config: TrainingConfig,
    names: Sequence[str] | None = None,
    on_fold: Callable[[], None] | None = None,
) -> OutOfFold:
    """Refit each learner on each fold's training rows; score its test rows."""
    made = learners(config, data)
    names = list(made) if names is None else list(names)
    n = len(data.y)
    raw = {name: np.full(n, np.nan) for name in names}
    p_long = np.full(n, np.nan)
    fold_of = np.full(n, -1, dtype=np.int64)
    excluded: dict[int, str] = {}
    calibrated: dict[str, bool] = {}
    gain = pd.Series(0.0, index=data.columns)
    t = data.t
    for fold in folds:
        train, test = fold.train, fold.test
        fold_of[test] = fold.number
        if not 0 < data.y[train].sum() < len(train):
            excluded[fold.number] = "no flush in the training span"
        else:
            # One copy of the fold's rows for every learner (years of rows: copies add up).
            X_train, y_train, t_train = data.X[train], data.y[train], t[train]
            X_test, t_test = data.X[test], t[test]
            fitted: dict[str, Learner] = {}
            for name in names:
                model = made[name](fold.number)
                # Trees boosted from the logistic score start from this fold's logistic fit.
                if isinstance(model, GradientBoosting) and model.init and "logistic" in fitted:
                    model.init = fitted["logistic"]  # type: ignore[assignment]
                model.fit(X_train, y_train, t_train)
                fitted[name] = model
                scores = model.score(X_test, t_test)
                calibrated[name] = is_calibrated(model)
                if calibrated[name]:
                    loc, scale = score_scale(model, X_train, t_train, fold.number)
                    scores = (scores - loc) / scale
                raw[name][test] = scores
                if name == "lightgbm" and isinstance(model, GradientBoosting):
                    gain += model.booster.feature_importance("gain")  # type: ignore[union-attr]
            p_long[test] = direction_probability(data, train, test, config)
        if on_fold:
            on_fold()
    has_lightgbm = "lightgbm" in names
    return OutOfFold(raw, p_long, fold_of, excluded, calibrated, gain if has_lightgbm else None)


def direction_probability(
    data: HorizonData, train: np.ndarray, test: np.ndarray, config: TrainingConfig
) -> np.ndarray:
    """P(long flush | flush) for `test`, from the one-sided flushes among `train` (or 0.5)."""
    sided, is_long = data.sided()
    rows = train[sided[train]]
    if len(rows) < config.fit.min_direction_rows or not 0 < is_long[rows].sum() < len(rows):
        return np.full(len(test), 0.5)
    model = make_direction(data.columns, config.fit).fit(data.X[rows], is_long[rows])
    return _sigmoid(model.score(data.X[test]))


DIRECTION_RULES = {"majority": None, "funding_sign": "funding_bp", "return_24h_sign": "return_24h"}
"""The trivial direction rules and the feature whose sign each reads (majority: none)."""
DIRECTION_PREFIX = "dir_"
"""Prediction-frame column prefix of a direction rule's P(long flush)."""


def direction_rules(
    data: HorizonData, train: np.ndarray, test: np.ndarray
) -> dict[str, np.ndarray]:
    """P(long flush | flush) of each trivial rule on `test`, learned from `train` only.

    majority: the training span's share of long flushes among its one-sided flushes. A sign
    rule calls the side that the sign of its feature went with more often among those
    training flushes (positive funding: crowded longs flushed, or not); where the feature is
    missing or zero it falls back to the majority. Without one-sided training flushes: 0.5.
    """
    sided, is_long = data.sided()
    rows = train[sided[train]]
    share = float(is_long[rows].mean()) if len(rows) else 0.5
    out = {"majority": np.full(len(test), share)}
    for rule, column in DIRECTION_RULES.items():
        if column is None:
            continue
        if column not in data.columns:
            out[rule] = np.full(len(test), np.nan)
            continue
        j = data.columns.index(column)
        sign = np.sign(np.nan_to_num(data.X[rows, j]))
        known = sign != 0
        agree = np.mean((sign[known] > 0) == (is_long[rows][known] == 1)) if known.any() else 0.5
        flip = 1.0 if agree >= 0.5 else -1.0
        value = np.sign(np.nan_to_num(data.X[test, j])) * flip
        out[rule] = np.where(value > 0, 1.0, np.where(value < 0, 0.0, share))
    return out


def fit_calibrator(
    scores: np.ndarray,
    y: np.ndarray,
    episodes: int,
    folds: int,
    prior: float,
    config: TrainingConfig,
) -> Calibrator:
    """The calibration recipe, one place for folds and the final model."""
    return Calibrator.fit(
        scores,
        y,
        prior=prior,
        episodes=episodes,
        shrinkage_episodes=config.calibration.shrinkage_episodes,
        folds=folds,
        shrinkage_folds=config.calibration.shrinkage_folds,
        isotonic_min_class=config.calibration.isotonic_min_class,
        level=config.calibration.level,
    )


@dataclass
class HorizonPredictions:
    """Pass 2: calibrated out-of-sample probabilities of every model and the champion."""

    frame: pd.DataFrame
    """One row per scored test row: keys, `horizon`, `fold`, `block`, `y`, `direction`,
    `p_<model>` for every model and `p_champion`, `p_long` and each trivial direction
    rule's `dir_<rule>`."""
    folds: pd.DataFrame
    """One row per fold: span, counts, status (scored or why not), the champion (`stack` or
    the chosen candidate), each input's share in it and its inner score."""
    gain: pd.Series | None
    oof: OutOfFold


def calibrate_and_choose(
    data: HorizonData, folds: Sequence[Fold], oof: OutOfFold, config: TrainingConfig
) -> HorizonPredictions:
    """Pass 2 over the folds in time order (see the module docstring)."""
    names = list(oof.raw)
    t = data.t
    n = len(data.y)
    probability = {name: np.full(n, np.nan) for name in [*names, CHAMPION]}
    block_of = np.full(n, -1, dtype=np.int64)
    for fold in folds:
        block_of[fold.test] = fold.block
    rules = {rule: np.full(n, np.nan) for rule in DIRECTION_RULES}
    window = config.calibration.window_hours
    excluded = dict(oof.excluded)
    table = []
    for fold in folds:
        record: dict[str, Any] = {
            "horizon": data.horizon,
            "fold": fold.number,
            "block": fold.block,
            "train_end": fold.train_end,
            "test_start": fold.test_start,
            "test_end": fold.test_end,
            "n_train": len(fold.train),
            "n_test": len(fold.test),
            "train_events": int(data.y[fold.train].sum()),
            "positives": int(data.y[fold.test].sum()),
        }
        cutoff = np.datetime64(fold.train_end.tz_convert(None), "us")
        scored = np.isfinite(oof.raw[names[0]]) & (t < cutoff)
        calibration_rows = scored & (t >= cutoff - window * HOUR) if window else scored
        oof_episodes = int(data.episode_start[calibration_rows].sum())
        oof_folds = len(np.unique(oof.fold_of[calibration_rows]))
        record["oof_episodes"] = oof_episodes
        record["oof_folds"] = oof_folds
        if fold.number not in excluded and not (
            oof_episodes >= config.calibration.min_episodes
            and data.y[calibration_rows].sum() < calibration_rows.sum()
        ):
            excluded[fold.number] = (
                f"{oof_episodes} out-of-fold flush episodes before the fold "
                f"(calibration needs {config.calibration.min_episodes})"
            )
        if fold.number in excluded:
            table.append({**record, "status": excluded[fold.number]})
            continue
        prior = float(data.y[fold.train].mean())
        for name in names:
            scores = oof.raw[name]
            if oof.calibrated.get(name, True):
                calibrator = fit_calibrator(
                    scores[calibration_rows],
                    data.y[calibration_rows],
                    oof_episodes,
                    oof_folds,
                    prior,
                    config,
                )
                probability[name][fold.test] = calibrator.predict(scores[fold.test])
            else:
                probability[name][fold.test] = scores[fold.test]
        combination = combine(
            {name: oof.raw[name][calibration_rows] for name in names},
            data.y[calibration_rows],
            block_of[calibration_rows],
            oof_episodes,
            config,
        )
        z = combination.score(oof.raw)
        calibrator = fit_calibrator(
            z[calibration_rows], data.y[calibration_rows], oof_episodes, oof_folds, prior, config
        )
        probability[CHAMPION][fold.test] = calibrator.predict(z[fold.test])
        for rule, p_long in direction_rules(data, fold.train, fold.test).items():
            rules[rule][fold.test] = p_long
        table.append(
            {
                **record,
                "status": "scored",
                "pr_auc": pr_auc(data.y[fold.test], probability[CHAMPION][fold.test]),
                "champion": combination.label,
                "choice": combination.reason,
                **{f"share_{c}": v for c, v in combination.shares.items()},
                **{f"inner_{c}": v for c, v in combination.inner.items()},
            }
        )
    keep = np.isfinite(probability[CHAMPION])
    frame = data.keys[keep].reset_index(drop=True)
    frame["horizon"] = data.horizon
    frame["fold"] = oof.fold_of[keep]
    frame["block"] = block_of[keep]
    frame["y"] = data.y[keep]
    frame["direction"] = pd.Categorical(data.direction[keep])
    for name in [*names, CHAMPION]:
        frame[f"p_{name}"] = probability[name][keep]
    frame["p_long"] = oof.p_long[keep]
    for rule, p_long in rules.items():
        frame[f"{DIRECTION_PREFIX}{rule}"] = p_long[keep]
    oof.excluded = excluded
    return HorizonPredictions(frame, pd.DataFrame(table), oof.gain, oof)
