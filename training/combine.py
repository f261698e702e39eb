"""What the champion is made of: one rule, called by the walk-forward's pass 2 and by `train`.

Given the inputs' standardised out-of-fold scores on rows whose labels were known before a
cutoff (pass 2: the fold's calibration rows; `train`: the recent out-of-fold rows), `combine`
returns the shares of each input in the champion's score (`CombinationConfig.method`):

- `stack` (default): a non-negative logistic stack, shrunk toward equal shares when episodes
  are few (`models.stacking`); optionally shrunk instead toward each input's plausibility of
  ranking within blocks as well as the best one (`combination.toward`), or with every share
  weighed by it (`combination.weigh_by_plausibility`): measured, not the default (README);
- `best`: winner-take-all, the candidate ranking best within blocks (`SelectionConfig`), or the
  first candidate while the episodes are too few: its share is 1;
- with `combination.level_inputs` set, a two-part stack (`two_part`): the stack of `inputs`
  (with a level-free input such as `lightgbm_rank`) for the order within blocks, the stack of
  `level_inputs` for which blocks are busy, and a pooled fit of the two scores weighing them,
  so the level-free input lifts the order without diluting the level the pooled fit rewards.

The champion's score is then Σ share · score, calibrated like any model's (strictly
increasing, so the combination's ranking is what is measured).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from flushcast.models.stacking import plausibility
from flushcast.models.stacking import shares as stack_shares
from flushcast.training.config import TrainingConfig
from flushcast.training.metrics import per_block, within_blocks
from flushcast.training.record import champion_made_of


@dataclass
class Choice:
    """Which candidate the out-of-fold evidence favours, and that evidence."""

    chosen: str
    scores: dict[str, float]
    episodes: int
    reason: str


def choose(
    candidates: Sequence[str],
    scores: dict[str, np.ndarray],
    y: np.ndarray,
    blocks: np.ndarray,
    episodes: int,
    config: TrainingConfig,
) -> Choice:
    """The candidate ranking best within blocks on these out-of-fold rows (first on a tie).

    With fewer than `selection.min_episodes` flush episodes the evidence is noise: the first
    candidate (the simplest, by convention) is kept.
    """
    ranked = {}
    for name in candidates:
        value = getattr(within_blocks(y, scores[name], blocks), config.selection.metric)
        ranked[name] = float(value) if np.isfinite(value) else float("nan")
    if episodes < config.selection.min_episodes:
        return Choice(candidates[0], ranked, episodes, f"{episodes} out-of-fold episodes: fallback")
    finite = {k: v for k, v in ranked.items() if np.isfinite(v)}
    if not finite:
        return Choice(candidates[0], ranked, episodes, "no rankable out-of-fold block: fallback")
    best = max(finite.values())
    chosen = next(name for name in candidates if finite.get(name) == best)
    return Choice(chosen, ranked, episodes, f"best {config.selection.metric} within blocks")


@dataclass
class Combination:
    """The champion's inputs and their shares (summing to 1), with the evidence behind them."""

    shares: dict[str, float]
    method: str
    episodes: int
    reason: str
    fitted: dict[str, float]
    """The shares the evidence alone asked for (before shrinkage; the chosen one for `best`;
    for `two_part`, its parts weighed by the pooled fit before that fit's shrinkage)."""
    inner: dict[str, float]
    """Each input's within-block ranking metric on the rows it was fitted on."""
    plausible: dict[str, float]
    """Each input's plausibility of ranking within blocks as well as the best input on those
    rows (`models.stacking.plausibility`; 1 for the best)."""

    @property
    def inputs(self) -> list[str]:
        """The inputs that carry weight, in order."""
        return [name for name, share in self.shares.items() if share > 0]

    @property
    def label(self) -> str:
        """One word for the fold table: the chosen candidate, or the rule (`stack`, `two_part`)."""
        return self.inputs[0] if len(self.inputs) == 1 else self.method

    def score(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Σ share · standardised score, over whatever rows `raw` holds."""
        return sum(share * raw[name] for name, share in self.shares.items() if share > 0)

    def describe(self) -> str:
        """`logistic 0.41 + lightgbm 0.33 + …`: what the champion is made of."""
        return champion_made_of(self.shares, {})


def inputs(config: TrainingConfig, part: Literal["all", "order", "level"] = "all") -> list[str]:
    """Every model whose scores the combination reads (the candidates for `best`; for `stack`
    the inputs that are run: configured candidates and baselines); `part="order"` or `"level"`:
    those of a two-part champion's part (`combination.inputs`, `combination.level_inputs`)."""
    if config.combination.method == "best":
        return list(config.fit.candidates)
    run = {*config.fit.candidates, *config.evaluation.baselines}
    order, level = config.combination.inputs, config.combination.level_inputs
    wanted = {"order": order, "level": level, "all": dict.fromkeys([*order, *level])}[part]
    return [name for name in wanted if name in run]


def combine(
    raw: dict[str, np.ndarray],
    y: np.ndarray,
    blocks: np.ndarray,
    episodes: int,
    config: TrainingConfig,
) -> Combination:
    """The champion's shares from these out-of-fold rows (`raw`: standardised scores by model).

    Only inputs present in `raw` are used; the caller guarantees every row's label was known
    before the cutoff whose test rows the combination will score.
    """
    names = [n for n in inputs(config, "order") if n in raw]
    if not names:
        raise ValueError("the champion has no input: none of combination.inputs was run")
    if config.combination.method == "best":
        choice = choose(names, raw, y, blocks, episodes, config)
        one_hot = {n: float(n == choice.chosen) for n in names}
        return Combination(
            one_hot,
            "best",
            episodes,
            choice.reason,
            one_hot,
            choice.scores,
            {n: 1.0 for n in names},
        )
    settings = config.combination
    order = stack(names, raw, y, blocks, episodes, config, settings.within_blocks)
    level = [n for n in inputs(config, "level") if n in raw]
    if not level or set(level) == set(names):  # no second part: the stack is the champion
        return order
    within = settings.level_within_blocks
    return two_part(order, stack(level, raw, y, blocks, episodes, config, within), raw, y, config)


def stack(
    names: Sequence[str],
    raw: dict[str, np.ndarray],
    y: np.ndarray,
    blocks: np.ndarray,
    episodes: int,
    config: TrainingConfig,
    within_blocks: bool,
) -> Combination:
    """The non-negative logistic stack of `names` on these rows (`within_blocks`: one
    intercept per block), shrunk as `combination` says."""
    settings = config.combination
    inner, ranked = {}, []
    for name in names:
        each = per_block(y, raw[name], blocks)
        value = getattr(each.mean(), config.selection.metric)
        inner[name] = float(value) if np.isfinite(value) else float("nan")
        ranked.append(getattr(each, config.selection.metric))
    # Every input's blocks hold the same rows, so the last one's flush counts are every one's.
    plausible = plausibility(np.column_stack(ranked), each.events)
    S = np.column_stack([raw[n] for n in names])
    share, fitted, weight = stack_shares(
        S,
        y,
        episodes,
        settings.shrinkage_episodes,
        settings.ridge,
        blocks if within_blocks else None,
        toward=plausible / plausible.sum() if settings.toward == "plausible" else None,
    )
    if settings.weigh_by_plausibility:
        kept = share * plausible
        if kept.sum() <= 1e-12:  # every part with a share is implausible: the best alone
            kept = (plausible >= 1.0).astype("float64")
        share = kept / kept.sum()
    target = "plausible shares" if settings.toward == "plausible" else "equal shares"
    reason = (
        f"non-negative logistic stack on {episodes} out-of-fold episodes, "
        f"{weight:.0%} fitted, {1 - weight:.0%} {target}"
        + (", weighed by plausibility" if settings.weigh_by_plausibility else "")
    )
    return Combination(
        dict(zip(names, share.tolist(), strict=True)),
        "stack",
        episodes,
        reason,
        dict(zip(names, fitted.tolist(), strict=True)),
        inner,
        dict(zip(names, plausible.tolist(), strict=True)),
    )


def two_part(
    order: Combination,
    level: Combination,
    raw: dict[str, np.ndarray],
    y: np.ndarray,
    config: TrainingConfig,
) -> Combination:
    """The order part and the level part weighed by a pooled non-negative logistic of their
    standardised scores on the same rows (one intercept: this fit rewards the level, which
    the parts' per-block fits ignore), shrunk toward equal weights when episodes are few.

    Both parts are weighted sums of the inputs' scores, so the champion is one too: its
    shares are the two parts' shares weighed and summed, what the bundle's `Stack` ships.
    """
    S = np.column_stack([order.score(raw), level.score(raw)])
    spread = S.std(axis=0)
    spread[spread <= 1e-12] = 1.0
    settings = config.combination
    episodes = order.episodes
    weight, fitted, a = stack_shares(
        S / spread, y, episodes, settings.shrinkage_episodes, settings.ridge
    )
    names = [*order.shares, *(n for n in level.shares if n not in order.shares)]

    def blend(w: np.ndarray) -> dict[str, float]:
        coef = np.array(
            [
                w[0] * order.shares.get(n, 0.0) / spread[0]
                + w[1] * level.shares.get(n, 0.0) / spread[1]
                for n in names
            ]
        )
        return dict(zip(names, (coef / coef.sum()).tolist(), strict=True))

    return Combination(
        blend(weight),
        "two_part",
        episodes,
        f"two parts, weighed by a pooled non-negative logistic on {episodes} out-of-fold "
        f"episodes ({a:.0%} fitted): order {weight[0]:.2f} ({order.describe()}), "
        f"level {weight[1]:.2f} ({level.describe()})",
        blend(fitted),
        {**level.inner, **order.inner},
        {**level.plausible, **order.plausible},
    )
