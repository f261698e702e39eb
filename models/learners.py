"""The learners a flush model can be: one fit/score protocol, plain-number state, exact reasons.

Every learner maps a model matrix (`models.matrix`: float features, then the symbol code) to a
real-valued risk score, higher meaning riskier; a `models.calibration.Calibrator` fitted on
out-of-fold scores turns the score into a probability. Scores are log-odds-like, so each
learner can also split its score exactly into per-column contributions plus a base value
(TreeSHAP for trees, coefficient × standardised value for the linear model), which is what
every explanation shows.

Class imbalance is handled by balanced class weights on a subsample: every flush is kept, quiet
bars are subsampled to at most `negatives_per_positive` per flush and the two classes weigh the
same. Scores are on that balanced scale; calibration maps them back to the base rate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression

from flushcast.models.matrix import SYMBOL
from flushcast.models.single_row import CONTRIB, RAW_SCORE, SingleRow

WINSOR_SAMPLE = 5000
"""Rows the logistic model's 1st and 99th percentile bounds are taken from (a sample: the
percentiles barely move beyond a few thousand rows, and sorting every row costs)."""


def finite_percentiles(Z: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """`np.nanpercentile(Z, q, axis=0)` of the finite values (NaN for a column without one),
    the same numbers: the columns without a missing value in one vectorised call (numpy's
    per-column loop over the rest cost a logistic fit a fifth of its time)."""
    finite = np.isfinite(Z)
    out = np.full((len(q), Z.shape[1]), np.nan)
    whole = finite.all(axis=0)
    if whole.any():
        out[:, whole] = np.percentile(Z[:, whole], q, axis=0)
    for j in np.flatnonzero(~whole & finite.any(axis=0)):
        out[:, j] = np.percentile(Z[finite[:, j], j], q)
    return out


class Learner(Protocol):
    """What the walk-forward needs of a model (deployed or baseline).

    `t` holds each row's bar-open time (datetime64); only baselines that are about time
    (climatology, a random-time placebo) read it.
    """

    kind: str

    def fit(self, X: np.ndarray, y: np.ndarray, t: np.ndarray | None = None) -> Learner: ...

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray: ...


class Explainer(Protocol):
    """A deployable learner: exact contributions and a plain-number state."""

    kind: str

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray: ...

    def contributions(self, X: np.ndarray) -> np.ndarray: ...

    def state(self) -> dict[str, Any]: ...


def balanced_sample(
    y: np.ndarray,
    negatives_per_positive: float,
    min_negatives: int,
    seed: int,
    max_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on and their weights: the flushes, a sample of quiet bars, classes equal.

    Small data is not thinned below `min_negatives` quiet bars. `max_rows` bounds the cost of
    a fit on years of data: both classes are then sampled in proportion.
    """
    rng = np.random.default_rng(seed)
    positives = np.flatnonzero(y == 1)
    negatives = np.flatnonzero(y == 0)
    keep = min(len(negatives), max(int(negatives_per_positive * len(positives)), min_negatives))
    if max_rows is not None and len(positives) + keep > max_rows:
        share = max_rows / (len(positives) + keep)
        positives = rng.choice(positives, size=max(1, int(share * len(positives))), replace=False)
        keep = max(1, int(share * keep))
    if keep < len(negatives):
        negatives = rng.choice(negatives, size=keep, replace=False)
    rows = np.sort(np.concatenate([positives, negatives]))
    weights = np.where(y[rows] == 1, 0.5 / max(len(positives), 1), 0.5 / max(len(negatives), 1))
    return rows, weights * len(rows)


def _check(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype="float64")
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be 2-d with one row per label: {X.shape} vs {y.shape}")
    if not 0 < y.sum() < len(y):
        raise ValueError("a learner needs both flushes and quiet bars to fit")
    return X, y


def dropout_copies(rows: int, groups: Sequence[Sequence[int]], share: float) -> int:
    """How many blanked copies `with_dropout` appends to `rows` rows."""
    return max(1, round(share * rows)) if share > 0 and groups else 0


def with_dropout(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    groups: Sequence[Sequence[int]],
    share: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Append copies of `share` of the rows with one random input group blanked (NaN).

    A source that lacks liquidations (or OI, or funding) leaves whole groups of features
    missing at serving time. Trees that never saw such rows send NaN down an arbitrary branch
    (LightGBM reads it as 0: "no liquidations"); with these copies they learn what a missing
    group means. Copies carry their rows' labels and weights, scaled by `share`.
    """
    n = dropout_copies(len(X), groups, share)
    if not n:
        return X, y, w
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), size=n, replace=len(X) < n)
    copies = X[rows].copy()
    chosen = rng.integers(0, len(groups), size=n)
    for g, columns in enumerate(groups):
        copies[np.ix_(chosen == g, np.asarray(columns, dtype=int))] = np.nan
    return (
        np.vstack([X, copies]),
        np.concatenate([y, y[rows]]),
        np.concatenate([w, w[rows] * share]),
    )


Bins = dict[str, tuple[np.ndarray, lgb.Dataset, np.ndarray]]
"""Binned training rows, shared by the fits of one refit (`GradientBoosting.fit`): by what
they were drawn from, with that array (held, so that its identity stays its own) and the
drawn rows themselves (an init model scores them)."""


def _binned(
    X: np.ndarray,
    drawn: tuple[np.ndarray, ...],
    made: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]],
    columns: list[str],
    categorical: list[int],
    params: dict[str, Any],
    bins: Bins | None,
) -> tuple[lgb.Dataset, np.ndarray]:
    """LightGBM's binned copy of the rows `made()` draws from `X` (and those rows), built once
    for the fits of a refit on them. `made()` gives rows, labels, weights and, for a ranking
    objective, the sizes of its query groups (the rows sorted by group; None otherwise).

    In a walk-forward fold the two tree candidates (plain, and boosted from the logistic score)
    draw the same sample of the same rows, so the second reuses the first's bins (binning is a
    fifth of a fit). The key is what the rows are drawn from: the array `X` itself (kept in
    `bins`, so it cannot be freed and its identity reused), the draw (`drawn`: row positions,
    labels, weights, the dropout copies' settings and seed) and the binning settings; a
    different sample, or other settings, build anew. (Hashing the drawn rows' content instead
    cost a tenth of a binning.) The caller owns `bins` (one per refit), so nothing outlives the
    refit.
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in drawn:
        digest.update(np.ascontiguousarray(part).view(np.uint8))
    digest.update(repr((id(X), X.shape, columns, categorical, sorted(params.items()))).encode())
    key = digest.hexdigest()
    found = bins.get(key) if bins is not None else None
    if found is not None and found[0] is X:
        return found[1], found[2]
    Xf, yf, wf, group = made()
    dataset = lgb.Dataset(
        Xf,
        yf,
        weight=wf,
        group=group,
        feature_name=columns,
        categorical_feature=categorical,
        params=params,
        free_raw_data=True,
    ).construct()
    if bins is not None:
        bins[key] = (X, dataset, Xf)
    return dataset, Xf


BLOCK_PRIOR_ROWS = 10.0
"""Rows' worth of the overall rate each block's own rate is shrunk toward (`block_log_odds`)."""


def block_log_odds(y: np.ndarray, w: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each row's starting score: the log-odds of its block's (weighted) flush rate, shrunk
    toward the overall rate by `BLOCK_PRIOR_ROWS` rows. Trees boosted from it with the binary
    loss learn what ranks rows within a block, not which blocks are busy (one intercept per
    block, as the stack is fitted); at scoring time there is no block and the trees alone
    score."""
    query = np.repeat(np.arange(len(sizes)), sizes)
    overall = float(np.sum(w * y) / np.sum(w))
    prior = BLOCK_PRIOR_ROWS * float(np.mean(w))
    rate = (np.bincount(query, w * y) + prior * overall) / (np.bincount(query, w) + prior)
    return np.log(rate / (1 - rate))[query]


def _drawn(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    query: np.ndarray | None,
    dropout: tuple[Sequence[Sequence[int]], float, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """A tree fit's rows with their dropout copies (`with_dropout`); with ranking groups
    (`query`), each copy stays in its row's group and the rows are sorted by group, whose sizes
    LightGBM's ranking objectives read."""
    if query is None:
        return (*with_dropout(X, y, w, *dropout), None)
    # The group rides along as one more column, which no dropout group blanks.
    Xq, yd, wd = with_dropout(np.column_stack([X, query]), y, w, *dropout)
    order = np.argsort(Xq[:, -1], kind="stable")
    sizes = np.unique(Xq[order, -1], return_counts=True)[1]
    return Xq[order, :-1], yd[order], wd[order], sizes


class GradientBoosting:
    """LightGBM on the model matrix, the symbol as a categorical, a fixed number of rounds.

    No early stopping: a validation tail a few weeks long says little about the next week (at
    12 h its ROC correlated -0.15 with the test week's), and stopping on it left 9-tree models.
    Shallow trees, a small learning rate and a strong L2 penalty regularise instead.
    """

    kind = "lightgbm"

    def __init__(
        self,
        columns: Sequence[str],
        params: dict[str, Any],
        rounds: int,
        *,
        negatives_per_positive: float = 10.0,
        min_negatives: int = 5000,
        max_rows: int | None = None,
        dropout_groups: Sequence[Sequence[int]] = (),
        dropout_share: float = 0.0,
        balanced: bool = True,
        init: Logistic | None = None,
        group_hours: float | None = None,
        group_by_symbol: bool = False,
        equal_blocks: bool = False,
    ) -> None:
        self.columns = list(columns)
        self.params = dict(params)
        self.rounds = int(rounds)
        self.negatives_per_positive = negatives_per_positive
        self.min_negatives = min_negatives
        self.max_rows = max_rows
        self.dropout_groups = [list(g) for g in dropout_groups]
        self.dropout_share = dropout_share
        self.balanced = balanced
        self.init = init
        """With a linear model here, trees are boosted from its score (its log-odds is the
        starting point): they only learn what the linear model misses."""
        self.group_hours = group_hours
        """Set (`lightgbm_rank`): the training rows are grouped in calendar blocks this long
        (counted from the first training row), as the walk-forward judges ranking within test
        blocks, so which blocks are busy is not learnt: a ranking objective (`lambdarank`,
        `rank_xendcg`) ranks within each block, the binary one is boosted from each block's own
        log-odds (`block_log_odds`)."""
        self.group_by_symbol = group_by_symbol
        """Rank within each symbol's block instead of within the block across symbols."""
        self.equal_blocks = equal_blocks
        """Scale each block's row weights to the same total."""
        self.booster: lgb.Booster | None = None

    _single: SingleRow | None = None
    """The booster's prepared one-row calls (`models.single_row`), made at the first."""

    def __getstate__(self) -> dict[str, Any]:
        """Without the prepared calls: C handles do not cross processes (a copy makes its own)."""
        return {k: v for k, v in self.__dict__.items() if k != "_single"}

    @property
    def _categorical(self) -> list[int]:
        return [self.columns.index(SYMBOL)] if SYMBOL in self.columns else []

    def queries(self, X: np.ndarray, t: np.ndarray | None) -> np.ndarray:
        """Each row's ranking group: its calendar block of `group_hours` counted from the
        earliest of these rows (and its symbol, with `group_by_symbol`), numbered 0, 1, … in
        time order. Read from the rows being fitted only."""
        if t is None or len(t) != len(X):
            raise ValueError("a ranking learner needs each training row's time")
        hours = (t - t.min()) / np.timedelta64(1, "h")
        block = np.floor_divide(hours, float(self.group_hours or 1)).astype("int64")
        if self.group_by_symbol and SYMBOL in self.columns:
            symbol = np.nan_to_num(X[:, self.columns.index(SYMBOL)], nan=-1).astype("int64")
            block = block * (int(symbol.max()) + 2) + symbol + 1
        return np.unique(block, return_inverse=True)[1].astype("int64")

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        t: np.ndarray | None = None,
        *,
        bins: Bins | None = None,
        weight: np.ndarray | None = None,
    ) -> GradientBoosting:
        """Fit on these rows; `bins` (one dict per refit) shares binned rows between fits.
        `weight`: each row's weight, for a learner that is not `balanced` (None: equal)."""
        X, y = _check(X, y)
        seed = int(self.params.get("seed", 0))
        ranking = self.group_hours is not None
        if self.balanced:
            rows, w = balanced_sample(
                y, self.negatives_per_positive, self.min_negatives, seed, self.max_rows
            )
        else:
            rows = np.arange(len(y))
            w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype="float64")
        query = self.queries(X, t)[rows] if ranking else None
        pointwise = self.params.get("objective", "binary") == "binary"
        if query is not None and not pointwise:
            w = np.ones(len(rows))  # a ranking loss compares rows within a block: no class weights
        if query is not None and self.equal_blocks:
            total = np.bincount(query, w)
            w = w / total[query] * (w.sum() / np.count_nonzero(total))
        dropout = (self.dropout_groups, self.dropout_share, seed + 1)
        n = len(rows) + dropout_copies(len(rows), self.dropout_groups, self.dropout_share)
        # A leaf must hold ~2 % of the rows, capped by the configured size: the cap regularises
        # large folds, and on two months of real data the cap alone would leave no split.
        leaf = min(int(self.params.get("min_data_in_leaf", 20)), max(20, n // 50))
        params = {**self.params, "min_data_in_leaf": leaf}
        data, Xf = _binned(
            X,
            (rows, y[rows], w, np.frombuffer(repr(dropout).encode(), np.uint8))
            + (() if query is None else (query,)),
            lambda: _drawn(X[rows], y[rows], w, query, dropout),
            self.columns,
            self._categorical,
            params,
            bins,
        )
        init_score = None
        if self.init is not None:
            if not self.init.fitted:  # a walk-forward fold may hand over its fitted one
                self.init.fit(X, y)
            init_score = self.init.score(Xf)
        elif query is not None and pointwise:
            init_score = block_log_odds(data.get_label(), data.get_weight(), data.get_group())
        data.set_init_score(init_score)
        self.booster = lgb.train(params, data, num_boost_round=self.rounds)
        return self

    def _booster(self) -> lgb.Booster:
        if self.booster is None:
            raise RuntimeError(f"{type(self).__name__}.fit must be called first")
        return self.booster

    def _predict(self, X: np.ndarray, kind: int) -> np.ndarray:
        """The booster's raw scores or contributions; one row by LightGBM's prepared one-row
        call, the same numbers without `Booster.predict`'s per-call cost (`models.single_row`)."""
        booster = self._booster()
        if X.ndim == 2 and len(X) == 1:
            if self._single is None or self._single.booster is not booster:
                self._single = SingleRow(booster)
            if X.shape[1] == self._single.columns:  # otherwise LightGBM's own refusal below
                return self._single.predict(X[0], kind)
        if kind == RAW_SCORE:
            return booster.predict(X, raw_score=True, num_threads=1)
        return booster.predict(X, pred_contrib=True, num_threads=1)

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        raw = self._predict(X, RAW_SCORE)
        return raw + self.init.score(X) if self.init is not None else raw

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP per column, then the base value; with an init model, its terms added."""
        trees = self._predict(X, CONTRIB)
        return trees + self.init.contributions(X) if self.init is not None else trees

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self._booster().model_to_string(),
            "init": self.init.state() if self.init is not None else None,
        }


class Logistic:
    """L2 logistic regression on chosen columns: winsorised, mean-imputed, standardised, balanced.

    Inference is plain numpy on the stored bounds, means, scales and coefficients. Values are
    clipped to the training rows' 1st-99th percentiles first: ratios such as "liquidations over
    their median" reach 50 in a cascade, and one such row must not set a linear model's slope.
    A missing value is imputed with the training mean, so it contributes exactly nothing.
    """

    kind = "logistic"

    def __init__(
        self,
        columns: Sequence[str],
        use: Sequence[str] | None = None,
        *,
        C: float = 0.1,
        negatives_per_positive: float = 10.0,
        min_negatives: int = 5_000,
        max_rows: int | None = 10_000,
        seed: int = 0,
    ) -> None:
        self.columns = list(columns)
        chosen = [c for c in self.columns if c != SYMBOL] if use is None else list(use)
        unknown = [c for c in chosen if c not in self.columns]
        if unknown:
            raise KeyError(f"logistic regression on unknown column(s) {unknown}")
        self.use = np.array([self.columns.index(c) for c in chosen], dtype=int)
        self.C = C
        self.negatives_per_positive = negatives_per_positive
        self.min_negatives = min_negatives
        self.max_rows = max_rows
        self.seed = seed
        self.low = np.full(len(self.use), -np.inf)
        self.high = np.full(len(self.use), np.inf)
        self.mean = np.zeros(len(self.use))
        self.scale = np.ones(len(self.use))
        self.coef = np.zeros(len(self.use))
        self.intercept = 0.0
        self.fitted = False

    def _standardised(self, X: np.ndarray) -> np.ndarray:
        Z = np.clip(X[:, self.use], self.low, self.high)
        Z = np.where(np.isfinite(Z), Z, self.mean)
        return (Z - self.mean) / self.scale

    def fit(self, X: np.ndarray, y: np.ndarray, t: np.ndarray | None = None) -> Logistic:
        X, y = _check(X, y)
        rows, w = balanced_sample(
            y, self.negatives_per_positive, self.min_negatives, self.seed, self.max_rows
        )
        # The rows' used columns in one copy, column-major as `X[rows][:, use]` made it (the
        # fit's sums run in that layout's order: another gives other last bits).
        Z = X.T[np.ix_(self.use, rows)].T
        finite = np.isfinite(Z)
        sample = (
            Z
            if len(Z) <= WINSOR_SAMPLE
            else Z[np.random.default_rng(self.seed).choice(len(Z), WINSOR_SAMPLE, replace=False)]
        )
        bounds = finite_percentiles(sample, (1, 99))
        self.low = np.where(np.isfinite(bounds[0]), bounds[0], -np.inf)
        self.high = np.where(np.isfinite(bounds[1]), bounds[1], np.inf)
        Z = np.clip(Z, self.low, self.high)
        counts = finite.sum(axis=0)
        mean = np.where(counts > 0, np.nansum(np.where(finite, Z, 0.0), axis=0), 0.0)
        self.mean = mean / np.maximum(counts, 1)
        Z = np.where(finite, Z, self.mean)
        std = Z.std(axis=0)
        self.scale = np.where(std > 1e-12, std, 1.0)
        model = LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=200)
        model.fit((Z - self.mean) / self.scale, y[rows].astype(int), sample_weight=w)
        self.coef = model.coef_[0].astype("float64")
        self.intercept = float(model.intercept_[0])
        self.fitted = True
        return self

    def score(self, X: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        return self._standardised(X) @ self.coef + self.intercept

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """coef × standardised value per used column (zero elsewhere), then the intercept."""
        out = np.zeros((len(X), len(self.columns) + 1))
        out[:, self.use] = self._standardised(X) * self.coef
        out[:, -1] = self.intercept
        return out

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "use": [self.columns[i] for i in self.use],
            "C": self.C,
            "low": [v if np.isfinite(v) else None for v in self.low.tolist()],
            "high": [v if np.isfinite(v) else None for v in self.high.tolist()],
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }


def from_state(state: dict[str, Any], columns: Sequence[str]) -> GradientBoosting | Logistic:
    """A fitted deployable learner back from `state()` (the bundle's plain-number form)."""
    kind = state.get("kind")
    if kind == Logistic.kind:
        model = Logistic(columns, state["use"], C=float(state["C"]))
        model.low = np.array([-np.inf if v is None else v for v in state["low"]], dtype=float)
        model.high = np.array([np.inf if v is None else v for v in state["high"]], dtype=float)
        model.mean = np.asarray(state["mean"], dtype="float64")
        model.scale = np.asarray(state["scale"], dtype="float64")
        model.coef = np.asarray(state["coef"], dtype="float64")
        model.intercept = float(state["intercept"])
        model.fitted = True
        sizes = {len(v) for v in (model.low, model.high, model.mean, model.scale, model.coef)}
        if sizes != {len(model.use)}:
            raise ValueError("logistic state: coefficient lengths disagree")
        numbers = np.r_[model.mean, model.scale, model.coef, model.intercept]
        if (
            not np.isfinite(numbers).all()
            or (model.scale <= 0).any()
            or np.isnan(np.r_[model.low, model.high]).any()
        ):
            raise ValueError("logistic state: a coefficient is not finite, or a scale is <= 0")
        return model
    if kind == GradientBoosting.kind:
        init = from_state(state["init"], columns) if state.get("init") else None
        if init is not None and not isinstance(init, Logistic):
            raise ValueError("a boosted model's init must be a logistic regression")
        model = GradientBoosting(columns, {}, 0, init=init)
        model.booster = lgb.Booster(model_str=state["model"])
        if model.booster.feature_name() != list(columns):
            raise ValueError("the booster's input columns differ from the bundle's")
        return model
    raise ValueError(f"unknown learner kind {kind!r}")
