"""How a flush model is fitted: the candidate learners and their parameters, in one strict model.

The defaults are the recipe the walk-forward studies chose (issue 15): shallow trees, a small
learning rate, strong L2, a fixed number of rounds and balanced class weights, because early
stopping on a few weeks of validation tail stopped at a handful of trees and said nothing
about the next week. Every field can be set from `conf/default.yaml` or `--set fit.x=...`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flushcast.models.learners import GradientBoosting, Logistic

Candidate = Literal["logistic", "lightgbm", "lightgbm_on_logistic", "lightgbm_rank"]
CANDIDATES: tuple[str, ...] = ("logistic", "lightgbm", "lightgbm_on_logistic")
"""The default candidates; `lightgbm_rank` (trees trained to rank within time blocks) is an
option (`fit.candidates`, `combination.inputs`)."""
OPTIONAL_CANDIDATES: tuple[str, ...] = ("lightgbm_rank",)


class Strict(BaseModel):
    """Frozen, no unknown keys, no silent coercion of a string into a number."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class LightGBMConfig(Strict):
    """LightGBM parameters that matter here; everything else is fixed for determinism."""

    learning_rate: float = Field(0.12, gt=0)
    num_leaves: int = Field(4, ge=2)
    min_data_in_leaf: int = Field(100, ge=1)
    lambda_l2: float = Field(50.0, ge=0)
    feature_fraction: float = Field(0.7, gt=0, le=1)
    bagging_fraction: float = Field(0.5, gt=0, le=1)
    max_bin: int = Field(63, ge=2)
    rounds: int = Field(75, ge=1)
    """Half the rounds at twice the learning rate of the recipe of issue 15 (150 at 0.06): a
    refit's boosting costs half, and the inner walk-forward's champion ranked within 0.005 of
    within-block ROC-AUC of the old one on the shared daily set and the simulator, intervals
    after the cutoff across zero (README "Walk-forward speed")."""

    def params(self, seed: int) -> dict[str, Any]:
        """The full LightGBM parameter dict (single-threaded, deterministic)."""
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "lambda_l2": self.lambda_l2,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "max_bin": self.max_bin,
            "num_threads": 1,
            "seed": seed,
            "deterministic": True,
            "force_col_wise": True,
            # Bin edges from a sample: exact enough for 63 bins, and binning every refit's rows
            # cost as much as a third of its boosting.
            "bin_construct_sample_cnt": 5000,
            "verbose": -1,
        }


class DirectionConfig(LightGBMConfig):
    """The direction trees' parameters, and the extra rows they may learn from.

    A flush's side is mostly the side of the move that liquidated: a quiet training window
    whose forward move was one-sided and large (`training.labels` move side and ratio) says
    the same thing about its inputs, on many more rows than the few hundred flushes."""

    move_weight: float = Field(0.0, ge=0)
    """Weight of each extra row (a true one-sided flush weighs 1); 0: flushes only."""
    move_threshold: float = Field(1.0, gt=0)
    """An extra row's forward move must be at least this many times the move a flush needs
    (k·σ·√H)."""


class RankConfig(Strict):
    """How `lightgbm_rank` groups its training rows: it learns to order each calendar block's
    rows (the within-block ranking the walk-forward judges), not which blocks are busy, which
    the calibrator's prior carries."""

    objective: Literal["binary", "rank_xendcg", "lambdarank"] = "binary"
    """The binary loss boosted from each block's own flush log-odds
    (`models.learners.block_log_odds`: one intercept per block), LightGBM's listwise
    cross-entropy (every row of a block counts) or LambdaRank (NDCG: the top of each block
    counts most). The default and `per_symbol` ranked best within blocks on the first half
    of the shared daily and 4 h sets' spans (README, "Training for the ranking")."""
    block_hours: int | None = Field(None, ge=1)
    """Length of a training block; None: the walk-forward's test block."""
    per_symbol: bool = True
    """Rank within each symbol's block instead of across the block's symbols (the test
    blocks hold every symbol)."""
    equal_blocks: bool = False
    """Weigh every training block alike (its rows' weights scaled to the same total), so a
    busy block, whose every flush is kept, counts no more than a quiet one."""
    lambda_l2: float | None = Field(None, ge=0)
    """L2 penalty of its leaves; None: `fit.lightgbm.lambda_l2`. A ranking loss's gradients
    are a block's shares (about 1 / rows per block), far smaller than the balanced binary
    loss's, so the same penalty shrinks its trees far more."""


class FitConfig(Strict):
    """The candidates the walk-forward chooses from, and how each is fitted."""

    candidates: tuple[Candidate, ...] = CANDIDATES
    """Chosen per horizon by the inner walk-forward; the first is the fallback while the
    out-of-fold evidence is too thin to choose."""
    lightgbm: LightGBMConfig = LightGBMConfig()
    rank: RankConfig = RankConfig()
    direction: DirectionConfig = DirectionConfig(
        num_leaves=7, min_data_in_leaf=20, lambda_l2=10.0, rounds=50, learning_rate=0.1
    )
    logistic_C: float = Field(0.1, gt=0)
    logistic_negatives_per_positive: float = Field(10.0, gt=0)
    logistic_min_negatives: int = Field(5_000, ge=0)
    negatives_per_positive: float = Field(4.0, gt=0)
    min_negatives: int = Field(5000, ge=0)
    max_fit_rows: int | None = Field(10_000, ge=100)
    """Rows one tree fit may use (both classes sampled alike): bounds a refit on years of data."""
    dropout_share: float = Field(0.2, ge=0, le=1)
    """Share of extra training rows with one input group (liquidations, OI, funding, volume)
    blanked, so trees learn what a missing source means instead of reading NaN as 0."""
    min_direction_rows: int = Field(30, ge=1)
    direction_inputs: tuple[str, ...] = ()
    """Columns of a logistic regression the direction trees are boosted from (as
    `lightgbm_on_logistic` is from the logistic): the trivial rules' inputs (`funding_bp`,
    `return_24h`) let the direction model start from what a sign rule knows. Empty: trees
    alone. Columns the data lacks are skipped."""
    seed: int = 0


def make_candidate(
    name: str,
    columns: Sequence[str],
    fit: FitConfig,
    dropout_groups: Sequence[Sequence[int]],
    block_hours: int = 168,
) -> GradientBoosting | Logistic:
    """An unfitted candidate learner by name (`block_hours`: the walk-forward's test block,
    the ranking candidate's training block unless `fit.rank.block_hours` says otherwise)."""
    if name == "logistic":
        return _logistic(columns, fit)
    if name in ("lightgbm", "lightgbm_on_logistic", "lightgbm_rank"):
        init = _logistic(columns, fit) if name == "lightgbm_on_logistic" else None
        params = fit.lightgbm.params(fit.seed)
        rank = name == "lightgbm_rank"
        if rank:
            params["objective"] = fit.rank.objective
            if fit.rank.lambda_l2 is not None:
                params["lambda_l2"] = fit.rank.lambda_l2
        return GradientBoosting(
            columns,
            params,
            fit.lightgbm.rounds,
            negatives_per_positive=fit.negatives_per_positive,
            min_negatives=fit.min_negatives,
            max_rows=fit.max_fit_rows,
            dropout_groups=dropout_groups,
            dropout_share=fit.dropout_share,
            init=init,
            group_hours=(fit.rank.block_hours or block_hours) if rank else None,
            group_by_symbol=fit.rank.per_symbol,
            equal_blocks=fit.rank.equal_blocks,
        )
    known = ", ".join((*CANDIDATES, *OPTIONAL_CANDIDATES))
    raise ValueError(f"unknown candidate {name!r} (choose from {known})")


def _logistic(columns: Sequence[str], fit: FitConfig) -> Logistic:
    return Logistic(
        columns,
        C=fit.logistic_C,
        negatives_per_positive=fit.logistic_negatives_per_positive,
        min_negatives=fit.logistic_min_negatives,
        max_rows=fit.max_fit_rows,
        seed=fit.seed,
    )


def make_direction(columns: Sequence[str], fit: FitConfig) -> GradientBoosting:
    """P(long flush | flush): LightGBM on one-sided flush rows, unweighted (its sigmoid is the
    probability; the two sides are roughly balanced)."""
    use = [c for c in fit.direction_inputs if c in columns]
    init = Logistic(columns, use, C=fit.logistic_C, max_rows=None, seed=fit.seed) if use else None
    return GradientBoosting(
        columns, fit.direction.params(fit.seed), fit.direction.rounds, balanced=False, init=init
    )
