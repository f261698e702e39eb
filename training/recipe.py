"""The fold recipe, written once: what one refit does with its training rows and with the
out-of-fold evidence before its cutoff. The walk-forward applies it to every fold; `train`
applies it to one more refit whose training rows are every labelled row (`Refit.final`), so
the walk-forward's figures describe exactly the recipe that made the shipped model.

A refit (`Refit`: a number, training rows, a cutoff where they end):

- **members** (`fit_members`): every candidate and baseline fitted on the training rows, the
  tree boosted from the logistic score starting from the refit's own logistic fit; each score
  standardised by the member's mean and spread on (a sample of) its training rows
  (`score_scale`), so refits trained on a month and on a year share one scale;
- **direction** (`fit_direction`): P(long flush | flush) from the one-sided training flushes
  (and, with `fit.direction.move_weight`, the quiet training rows that moved far on one side),
  when there are `fit.min_direction_rows` of them with both sides present, and the trivial
  direction rules (`fit_rules`: their orientations from the same flushes);
- **evidence** (`Evidence.at`): the out-of-fold rows whose bar opens before the cutoff and at
  most `calibration.window_hours` before it, with their flush episodes, folds and the training
  base rate (the prior); too few episodes and the refit cannot be calibrated (`shortfall`);
- **champion** (`champion`): the inputs' standardised scores combined on that evidence
  (`training.combine`), the combined score calibrated there;
- **direction call** (`direction_weights`): the direction trees alone, or stacked with the rules
  on that evidence's one-sided flushes (`combination.direction`, `models.direction`).

The calibration window is measured from the cutoff (the exclusive end of the refit's training
rows), never from the last out-of-fold row that happened to be scored: the window says how old
the evidence may be relative to the model it calibrates, and a model trained up to the cutoff
is used right after it. Measured from the last scored row, the window slides back in time
whenever the last folds are left out or a series stops being tested, and admits evidence older
than any fold of the walk-forward was calibrated on, so the shipped calibration would not be
the one the walk-forward measured. With the cutoff definition, `train` on data ending at a
fold's cutoff reproduces that fold (tests/training/test_recipe.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from flushcast.features.registry import FEATURES, MISSING_GROUPS, depending_on
from flushcast.models.calibration import Calibrator
from flushcast.models.config import make_candidate, make_direction
from flushcast.models.direction import (
    MODEL,
    call_log_odds,
    input_log_odds,
    toward_best_rule,
    weights,
)
from flushcast.models.learners import Bins, GradientBoosting, Learner
from flushcast.models.rules import DIRECTION_RULES, DirectionRule
from flushcast.training.baselines import BASELINES, is_calibrated
from flushcast.training.combine import Combination, combine
from flushcast.training.config import TrainingConfig
from flushcast.training.horizon import HorizonData
from flushcast.training.splits import Fold

HOUR = np.timedelta64(1, "h")


@dataclass(frozen=True)
class Refit:
    """One application of the recipe: its number (the seed of its random draws), the row
    positions it trains on and the exclusive end of their time (its cutoff)."""

    number: int
    train: np.ndarray
    cutoff: np.datetime64

    @classmethod
    def of_fold(cls, fold: Fold) -> Refit:
        return cls(fold.number, fold.train, np.datetime64(fold.train_end.tz_convert(None), "us"))

    @classmethod
    def final(cls, data: HorizonData, folds: int) -> Refit:
        """The refit `train` ships: every labelled row, numbered as the fold after the
        walk-forward's last (`folds` of them), its cutoff one bar after the last row."""
        t = data.t
        cutoff = t.max() + np.timedelta64(data.bar.to_timedelta64(), "us")
        return cls(folds, np.arange(len(t)), cutoff)


def dropout_groups(columns: Sequence[str]) -> list[list[int]]:
    """Column positions of each input group a real source may lack as a whole."""
    features = [c for c in columns if c in FEATURES]
    groups = [[columns.index(f) for f in depending_on(g, features)] for g in MISSING_GROUPS]
    return [g for g in groups if g]


def learners(config: TrainingConfig, data: HorizonData) -> dict[str, Callable[[int], Learner]]:
    """Every model a refit may fit, by name (the candidates, then the baselines), made from
    the refit's number."""
    groups = dropout_groups(data.columns)
    walk = config.walk_forward
    block = walk.test_block_hours or walk.retrain_every_hours
    made: dict[str, Callable[[int], Learner]] = {
        name: (
            lambda number, name=name: make_candidate(name, data.columns, config.fit, groups, block)
        )
        for name in config.fit.candidates
    }
    for name in config.evaluation.baselines:
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r} (choose from {', '.join(BASELINES)})")
        factory = BASELINES[name]
        made[name] = lambda number, f=factory: f(data.columns, data.horizon, number)
    return made


def scale_sample(
    X: np.ndarray, t: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """The (seeded) sample of training rows `score_scale` reads: drawn once per refit, the
    same for every member."""
    rows = np.random.default_rng(seed).choice(len(X), size=min(len(X), 3000), replace=False)
    return X[rows], None if t is None else t[rows]


def score_scale(model: Learner, X: np.ndarray, t: np.ndarray | None = None) -> tuple[float, float]:
    """Mean and spread of a fitted learner's scores on a sample of its training rows
    (`scale_sample`).

    Dividing by these puts refits trained on a month and on a year on one scale, which is what
    lets one calibrator serve scores from many refits (see `models.calibration`).
    """
    scores = model.score(X, t)
    spread = float(np.std(scores))
    return float(np.mean(scores)), spread if spread > 1e-12 else 1.0


@dataclass
class Member:
    """A fitted model of a refit and the standardisation of its score (none for a model whose
    score is already a probability: climatology)."""

    model: Learner
    loc: float = 0.0
    scale: float = 1.0
    calibrated: bool = True

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        scores = self.model.score(X, t)
        return (scores - self.loc) / self.scale if self.calibrated else scores


def rows_of(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`a[rows]`, without the copy when `rows` is one run of consecutive positions (a view).

    An expanding-window fold trains on every row before its cutoff, rows in time order: the
    run from the first row. Copying a year of rows of the model matrix cost a fold's refit a
    tenth of its time, and no learner writes to its input.
    """
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and (np.diff(rows) == 1).all():
        return a[rows[0] : rows[-1] + 1]
    return a[rows]


def fit_members(
    names: Sequence[str], data: HorizonData, refit: Refit, config: TrainingConfig
) -> dict[str, Member]:
    """Each named model fitted on the refit's training rows, with its score's standardisation."""
    made = learners(config, data)
    # One copy of the refit's rows for every model (years of rows: copies add up), or none.
    X, y, t = (rows_of(a, refit.train) for a in (data.X, data.y, data.t))
    fitted: dict[str, Member] = {}
    bins: Bins = {}  # the tree candidates draw the same rows: binned once for both
    sample: tuple[np.ndarray, np.ndarray | None] | None = None
    for name in names:
        model = made[name](refit.number)
        if isinstance(model, GradientBoosting):
            # Trees boosted from the logistic score start from this refit's logistic fit.
            if model.init and "logistic" in fitted:
                model.init = fitted["logistic"].model  # type: ignore[assignment]
            model.fit(X, y, t, bins=bins)
        else:
            model.fit(X, y, t)
        if is_calibrated(model):
            sample = sample or scale_sample(X, t, refit.number)
            loc, scale = score_scale(model, *sample)
            fitted[name] = Member(model, loc, scale)
        else:
            fitted[name] = Member(model, calibrated=False)
    return fitted


def fit_direction(
    data: HorizonData, refit: Refit, config: TrainingConfig
) -> GradientBoosting | None:
    """The direction model from the refit's one-sided training flushes, or None when they are
    fewer than `fit.min_direction_rows` or all on one side (the answer is then 0.5).

    With `fit.direction.move_weight` it also learns, at that weight, from the refit's quiet
    training rows whose forward move was one-sided and at least `fit.direction.move_threshold`
    times the move a flush needs, labelled by their move side (`HorizonData.moved`); those rows
    count toward `fit.min_direction_rows` at their weight (where flushes are few, they are
    what the idea is for), and a start from `fit.direction_inputs` is fitted on the flushes
    alone."""
    sided, is_long = data.sided()
    rows = refit.train[sided[refit.train]]
    both, target, weight = rows, is_long[rows], np.ones(len(rows))
    setting = config.fit.direction
    if setting.move_weight:
        moved, move_long = data.moved(setting.move_threshold)
        extra = refit.train[moved[refit.train]]
        both = np.concatenate([rows, extra])
        target = np.concatenate([target, move_long[extra]])
        weight = np.r_[weight, np.full(len(extra), setting.move_weight)]
    if weight.sum() < config.fit.min_direction_rows or not 0 < target.sum() < len(target):
        return None
    model = make_direction(data.columns, config.fit)
    if len(both) == len(rows):
        return model.fit(data.X[rows], target)
    if model.init is not None:
        if 0 < is_long[rows].sum() < len(rows):
            model.init.fit(data.X[rows], is_long[rows])
        else:
            model.init = None  # the flushes alone cannot start it: the trees alone
    return model.fit(data.X[both], target, weight=weight)


def fit_rules(data: HorizonData, refit: Refit) -> list[DirectionRule]:
    """The trivial direction rules the data can feed, their orientations learned from the
    refit's one-sided training flushes."""
    sided, is_long = data.sided()
    rows = refit.train[sided[refit.train]]
    rules = [DirectionRule(name, data.columns) for name in DIRECTION_RULES]
    return [r.fit(data.X[rows], is_long[rows]) for r in rules if r.usable]


def direction_scores(
    data: HorizonData, refit: Refit, config: TrainingConfig, rows: np.ndarray
) -> dict[str, np.ndarray]:
    """Log-odds of a long flush on `rows` of the refit's direction trees (0 without trees) and
    of each of its rules."""
    trees, rules = fit_direction(data, refit, config), fit_rules(data, refit)
    return input_log_odds(trees, rules, data.X[rows])


@dataclass
class OutOfFold:
    """Pass 1 of the walk-forward: every model's standardised scores on every trained fold's
    test rows (climatology's are its probabilities)."""

    raw: dict[str, np.ndarray]
    direction: dict[str, np.ndarray]
    """Log-odds of a long flush given a flush: the direction trees' (`model`) and each trivial
    rule's, on every tested row."""
    fold_of: np.ndarray
    """Fold number of each row (-1: never tested)."""
    block_of: np.ndarray
    """Test block of each row (-1: never tested)."""
    excluded: dict[int, str] = field(default_factory=dict)
    calibrated: dict[str, bool] = field(default_factory=dict)
    """Whether each learner's score needs a calibrator (climatology's is a probability)."""
    gain: pd.Series | None = None
    """Total LightGBM gain per input over the folds (when a LightGBM candidate ran)."""


@dataclass
class Evidence:
    """The out-of-fold rows a refit learns its calibration and combination from."""

    rows: np.ndarray
    """Mask of the out-of-fold rows in the window before the refit's cutoff."""
    y: np.ndarray
    """Every row's label (the mask selects)."""
    episodes: int
    folds: int
    prior: float
    """The refit's training base rate."""

    @classmethod
    def at(
        cls, data: HorizonData, oof: OutOfFold, refit: Refit, config: TrainingConfig
    ) -> Evidence:
        t = data.t
        rows = np.isfinite(next(iter(oof.raw.values()))) & (t < refit.cutoff)
        window = config.calibration.window_hours
        if window:
            rows &= t >= refit.cutoff - window * HOUR
        return cls(
            rows=rows,
            y=data.y,
            episodes=int(data.episode_start[rows].sum()),
            folds=len(np.unique(oof.fold_of[rows])),
            prior=float(data.y[refit.train].mean()),
        )

    def shortfall(self, config: TrainingConfig, before: str = "the fold") -> str | None:
        """Why these rows cannot calibrate a refit (None: they can)."""
        if self.episodes >= config.calibration.min_episodes and (
            self.y[self.rows].sum() < self.rows.sum()
        ):
            return None
        return (
            f"{self.episodes} out-of-fold flush episodes before {before} "
            f"(calibration needs {config.calibration.min_episodes})"
        )

    def calibrator(self, scores: np.ndarray, config: TrainingConfig) -> Calibrator:
        """The calibration recipe on these rows (`scores`: one per row of the horizon)."""
        return Calibrator.fit(
            scores[self.rows],
            self.y[self.rows],
            prior=self.prior,
            episodes=self.episodes,
            shrinkage_episodes=config.calibration.shrinkage_episodes,
            folds=self.folds,
            shrinkage_folds=config.calibration.shrinkage_folds,
            isotonic_min_class=config.calibration.isotonic_min_class,
            level=config.calibration.level,
        )


def champion(
    evidence: Evidence, oof: OutOfFold, config: TrainingConfig
) -> tuple[Combination, Calibrator]:
    """The champion's shares fitted on the evidence and the calibrator of its combined score."""
    rows = evidence.rows
    combination = combine(
        {name: scores[rows] for name, scores in oof.raw.items()},
        evidence.y[rows],
        oof.block_of[rows],
        evidence.episodes,
        config,
    )
    return combination, evidence.calibrator(combination.score(oof.raw), config)


@dataclass
class DirectionWeights:
    """What the direction call is made of: each input's weight on the log-odds scale."""

    weights: dict[str, float]
    fitted: dict[str, float]
    """The weights the evidence alone asked for (before shrinkage toward the trees)."""
    episodes: int
    """One-sided flush episodes of the evidence."""
    reason: str

    def p_long(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """P(long flush | flush) from the inputs' log-odds."""
        return 0.5 * (1.0 + np.tanh(0.5 * call_log_odds(self.weights, scores)))


def direction_weights(
    evidence: Evidence, data: HorizonData, oof: OutOfFold, config: TrainingConfig
) -> DirectionWeights:
    """The direction call's weights from the evidence's one-sided flushes (their inputs'
    out-of-fold log-odds): the trees alone unless `combination.direction` is `stack`."""
    names = [MODEL, *(n for n in oof.direction if n != MODEL)]
    sided, is_long = data.sided()
    rows = evidence.rows & sided
    episodes = int(data.episode_start[rows].sum())
    alone = {n: float(n == MODEL) for n in names}
    if config.combination.direction == "model":
        return DirectionWeights(alone, alone, episodes, "the direction model alone")
    S = np.column_stack([oof.direction[n][rows] for n in names])
    if config.combination.direction == "plausible":
        w, a = toward_best_rule(S, is_long[rows], oof.block_of[rows])
        chosen = dict(zip(names, w.tolist(), strict=True))
        return DirectionWeights(
            chosen,
            chosen,
            episodes,
            f"the direction model's plausibility of calling as well as the best input on "
            f"{episodes} one-sided out-of-fold episodes: {a:.0%}, the rest on the best rule",
        )
    w, fitted, a = weights(
        S, is_long[rows], episodes, config.combination.direction_shrinkage, config.combination.ridge
    )
    return DirectionWeights(
        dict(zip(names, w.tolist(), strict=True)),
        dict(zip(names, fitted.tolist(), strict=True)),
        episodes,
        f"non-negative logistic stack on {episodes} one-sided out-of-fold episodes, "
        f"{a:.0%} fitted, {1 - a:.0%} the direction model alone",
    )
