"""Evaluation metrics for flush probabilities, from calibration to event-level warning.

Rare events judged on pooled, time-ordered rows: ranking (PR-AUC, lift, ROC-AUC), probability
quality (Brier and its skill against climatology, log loss, ECE), an alert budget (the top 5 % of
scores), and the question a trader asks: was each flush episode warned about in time, and how
early. Confidence intervals resample whole blocks of time, because a cascade hits several symbols
and several consecutive bars at once and must count as one success, not many.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from flushcast.marketdata.schema import BAR
from flushcast.training.labels import LONG_FLUSH, SHORT_SQUEEZE

TOP_FRACTION = 0.05
"""The alert budget: the share of rows with the highest scores that raise an alert."""

EPS = 1e-15


def _arrays(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels and scores must be 1-d and the same length: {y.shape}, {p.shape}")
    if not (np.isfinite(y).all() and np.isfinite(p).all()):
        raise ValueError("labels and scores must be finite: drop unlabelled rows first")
    return y, p


def _two_classes(y: np.ndarray) -> bool:
    return 0 < y.sum() < len(y)


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision); NaN without positives."""
    y, p = _arrays(y, p)
    positives = y.sum()
    if positives == 0:
        return float("nan")
    # sklearn's definition (steps at each distinct score), without its input checks: the
    # block bootstrap calls this hundreds of times on the pooled test rows.
    order = np.argsort(-p)  # ties need not keep their order: only tie groups' ends are read
    return _average_precision(p[order], y[order], positives)


def _average_precision(p_sorted: np.ndarray, y_sorted: np.ndarray, positives: float) -> float:
    """PR-AUC of rows sorted by descending score (any order within a tie)."""
    hits = np.cumsum(y_sorted)
    last_of_tie = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    tp = hits[last_of_tie]
    seen = np.flatnonzero(last_of_tie) + 1.0
    recall_step = np.diff(tp, prepend=0.0) / positives
    return float(np.sum(recall_step * tp / seen))


class Ranked:
    """Rows sorted once by score, so that the PR-AUC of any resample of them needs no sort.

    A resample (row positions, repeats allowed) in score order is the sorted rows, each
    repeated as often as it was drawn; within a tie the order is never read, so
    `Ranked(y, p).pr_auc(rows)` is exactly `pr_auc(y[rows], p[rows])`, in linear time (the
    block bootstrap's cost was its sorts).
    """

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        y, p = _arrays(y, p)
        self.order = np.argsort(-p)
        self.y, self.p = y[self.order], p[self.order]

    def pr_auc(self, rows: np.ndarray) -> float:
        """`pr_auc(y[rows], p[rows])`: each drawn row counted as often as it was drawn, in
        place of repeating it (the counts at tie groups' ends are the same whole numbers, so
        every step and their sum are the same floats)."""
        return self.pr_auc_of_counts(np.bincount(rows, minlength=len(self.order)))

    def pr_auc_of_counts(self, counts: np.ndarray) -> float:
        """`pr_auc` of the resample that drew row i `counts[i]` times (`np.bincount(rows,
        minlength=len(y))`: counted once for the several models a resample scores)."""
        drawn = counts[self.order]
        kept = drawn > 0
        times = drawn[kept].astype("float64")
        hits = np.cumsum(self.y[kept] * times)
        if len(hits) == 0 or hits[-1] == 0:
            return float("nan")
        p = self.p[kept]
        last_of_tie = np.r_[p[1:] != p[:-1], True]
        tp = hits[last_of_tie]
        recall_step = np.diff(tp, prepend=0.0) / hits[-1]
        return float(np.sum(recall_step * tp / np.cumsum(times)[last_of_tie]))


def lift(y: np.ndarray, p: np.ndarray) -> float:
    """PR-AUC over the base rate: 1 is a random ranking."""
    y, p = _arrays(y, p)
    return _over_base_rate(pr_auc(y, p), y)


def _over_base_rate(average_precision: float, y: np.ndarray) -> float:
    return average_precision / y.mean() if y.sum() > 0 else float("nan")


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, p = _arrays(y, p)
    return float(roc_auc_score(y, p)) if _two_classes(y) else float("nan")


@dataclass(frozen=True)
class WithinBlocks:
    """Ranking judged inside each test block, averaged over blocks weighted by their events.

    Pooled ROC and PR-AUC rank every block's rows together, so they mostly reward a forecast
    whose *level* tracks the block's event rate; within a block only the ranking of a week's
    flushes against the same week's quiet bars counts. Blocks without an event (and, for ROC,
    without a quiet bar) have no ranking to judge and are left out.
    """

    roc_auc: float
    pr_auc: float
    lift: float
    blocks_used: int


@dataclass(frozen=True)
class PerBlock:
    """Ranking metrics of each test block that holds at least one flush."""

    roc_auc: np.ndarray
    """NaN for a block without a quiet bar."""
    pr_auc: np.ndarray
    lift: np.ndarray
    events: np.ndarray

    def mean(self) -> WithinBlocks:
        """Event-weighted means (the `WithinBlocks` figures)."""
        return self.resampled(np.arange(len(self.events)))

    def resampled(self, chosen: np.ndarray) -> WithinBlocks:
        """The event-weighted means over the blocks at positions `chosen` (repeats count)."""
        w = self.events[chosen]

        def mean(values: np.ndarray) -> float:
            v = values[chosen]
            used = np.isfinite(v)
            return float(np.sum(v[used] * w[used]) / w[used].sum()) if used.any() else float("nan")

        return WithinBlocks(mean(self.roc_auc), mean(self.pr_auc), mean(self.lift), len(chosen))


def per_block(y: np.ndarray, p: np.ndarray, blocks: np.ndarray) -> PerBlock:
    """ROC-AUC, PR-AUC and lift of every block with a flush, vectorised over blocks.

    ROC by the Mann-Whitney rank sum with tied scores sharing their mean rank, PR-AUC with
    sklearn's step definition (one step per distinct score).
    """
    y, p = _arrays(y, p)
    codes, _ = pd.factorize(np.asarray(blocks))
    k = int(codes.max()) + 1 if len(codes) else 0
    if k == 0:
        empty = np.array([], dtype="float64")
        return PerBlock(empty, empty, empty, empty)
    n = len(y)
    positives = np.bincount(codes, weights=y, minlength=k)
    counts = np.bincount(codes, minlength=k).astype("float64")
    negatives = counts - positives
    starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)

    # ROC: ascending scores within each block.
    ascending = np.lexsort((p, codes))
    c, s, yy = codes[ascending], p[ascending], y[ascending]
    pos = np.arange(n) - starts[c]
    tie = np.cumsum(np.r_[True, (c[1:] != c[:-1]) | (s[1:] != s[:-1])]) - 1
    rank = (np.bincount(tie, weights=pos + 1.0) / np.bincount(tie))[tie]
    rank_sum = np.bincount(c, weights=rank * yy, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        roc = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)

    # PR-AUC: descending scores within each block, one step per tie group's end: the ascending
    # order reversed within each block (tied rows come reversed, which changes no step).
    reverse = 2 * starts[c] + counts.astype(np.int64)[c] - 1 - np.arange(n)
    c, s, yy = c[reverse], s[reverse], yy[reverse]
    hits = np.cumsum(yy)
    hits -= np.r_[0.0, hits][starts][c]  # cumulative hits within the block
    seen = np.arange(n) - starts[c] + 1.0
    last = np.r_[(c[1:] != c[:-1]) | (s[1:] != s[:-1]), True]
    tp, seen_at, block = hits[last], seen[last], c[last]
    first_of_block = np.r_[True, block[1:] != block[:-1]]
    previous = np.where(first_of_block, 0.0, np.r_[0.0, tp[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = (tp - previous) / positives[block] * tp / seen_at
    ap = np.bincount(block, weights=np.nan_to_num(steps), minlength=k)

    used = positives > 0
    roc = np.where(negatives > 0, roc, np.nan)
    return PerBlock(
        roc_auc=roc[used],
        pr_auc=ap[used],
        lift=ap[used] / (positives[used] / counts[used]),
        events=positives[used],
    )


def within_blocks(y: np.ndarray, p: np.ndarray, blocks: np.ndarray) -> WithinBlocks:
    """Event-weighted mean of per-block ROC-AUC, PR-AUC and lift (PR-AUC over the block's rate).

    Blocks without a flush have no ranking to judge and are left out; so are blocks without a
    quiet bar, for ROC.
    """
    return per_block(y, p, blocks).mean()


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the probability."""
    y, p = _arrays(y, p)
    return float(np.mean((p - y) ** 2))


def brier_skill(y: np.ndarray, p: np.ndarray, reference: np.ndarray | float) -> float:
    """1 - Brier / Brier of the reference (climatology): > 0 beats it, 1 is perfect."""
    y, p = _arrays(y, p)
    ref = np.broadcast_to(np.asarray(reference, dtype="float64"), y.shape)
    ref_score = brier(y, ref)
    return 1.0 - brier(y, p) / ref_score if ref_score > 0 else float("nan")


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood (natural log), probabilities clipped away from 0 and 1."""
    y, p = _arrays(y, p)
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per equal-width probability bin: mean forecast, observed frequency, row count.

    The data behind a reliability plot; empty bins are omitted.
    """
    y, p = _arrays(y, p)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    forecast = np.bincount(bins, weights=p, minlength=n_bins)
    observed = np.bincount(bins, weights=y, minlength=n_bins)
    used = count > 0
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1][used],
            "bin_upper": edges[1:][used],
            "mean_forecast": forecast[used] / count[used],
            "observed": observed[used] / count[used],
            "count": count[used],
        }
    )


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error: row-weighted mean |forecast - observed| over the bins."""
    table = reliability_table(y, p, n_bins)
    weights = table["count"] / table["count"].sum()
    return float(np.sum(weights * np.abs(table["mean_forecast"] - table["observed"])))


def alert_mask(scores: np.ndarray, fraction: float = TOP_FRACTION, seed: int = 0) -> np.ndarray:
    """True for exactly ceil(fraction · n) rows: the highest scores.

    Ties at the threshold are broken by a seeded random order, so a constant forecast alerts at
    random times (it earns what a placebo earns) instead of all at once or never.
    """
    scores = np.asarray(scores, dtype="float64")
    n = len(scores)
    k = int(np.ceil(fraction * n))
    mask = np.zeros(n, dtype=bool)
    if k == 0:
        return mask
    tiebreak = np.random.default_rng(seed).random(n)
    # The last k of the rows ordered by score, then tiebreak: every score above the k-th
    # highest, and the tied rows at it with the highest tiebreaks (no full sort).
    threshold = np.partition(scores, n - k)[n - k]
    above = scores > threshold
    tied = np.flatnonzero(scores == threshold)
    need = k - int(above.sum())
    mask[above] = True
    mask[tied[np.argsort(tiebreak[tied], kind="stable")[len(tied) - need :]]] = True
    return mask


def precision_recall_at_top(
    y: np.ndarray, scores: np.ndarray, fraction: float = TOP_FRACTION, seed: int = 0
) -> tuple[float, float]:
    """Precision and recall of alerting on the top `fraction` of scores."""
    y, scores = _arrays(y, scores)
    return _precision_recall(y, alert_mask(scores, fraction, seed))


def _precision_recall(y: np.ndarray, alerts: np.ndarray) -> tuple[float, float]:
    hits = float(y[alerts].sum())
    precision = hits / alerts.sum() if alerts.any() else float("nan")
    recall = hits / y.sum() if y.sum() > 0 else float("nan")
    return precision, recall


def _series_codes(series: np.ndarray | pd.Series) -> np.ndarray:
    return pd.factorize(pd.Series(np.asarray(series, dtype=object)), sort=False)[0]


@dataclass(frozen=True)
class Episodes:
    """The flush episodes of a set of rows, found once for every model's alerts on them.

    Rows must be unique per (series, timestamp). An episode is a run of consecutive positive bars
    of one series (a missing bar ends it). It is warned when an alert fell on its first bar or
    in the `horizon` bars before it, on the same series; `lead_hours` counts from the earliest
    such alert to the episode's first bar. The flush itself begins within H hours after that
    first bar, so the real warning is at least this long. (Finding the episodes, with the
    series' names, was most of a model's event recall; a metric table has a dozen models.)
    """

    key: np.ndarray
    """One sortable key per row and (series, bar); the stride keeps a series' window from
    reaching another."""
    start_keys: np.ndarray
    start_positions: np.ndarray
    lengths: np.ndarray
    series: np.ndarray | pd.Series
    stamps: pd.DatetimeIndex
    horizon: int

    @classmethod
    def find(
        cls,
        y: np.ndarray,
        series: np.ndarray | pd.Series,
        timestamps: np.ndarray | pd.Series | pd.DatetimeIndex,
        horizon: int,
    ) -> Episodes:
        y = np.asarray(y, dtype="float64")
        codes = _series_codes(series)
        stamps = pd.DatetimeIndex(timestamps)
        if not (len(y) == len(codes) == len(stamps)):
            raise ValueError("labels, alerts, series and timestamps must have the same length")
        if len(y) == 0:
            none = np.array([], dtype=np.int64)
            return cls(none, none, none, none, series, stamps, horizon)
        origin = stamps.min()
        bars = np.asarray((stamps - origin) // BAR, dtype=np.int64)
        stride = int(bars.max()) + 2 * horizon + 2
        key = codes.astype(np.int64) * stride + bars
        order = np.argsort(key, kind="stable")
        key_sorted, positive = key[order], y[order] == 1.0
        previous_positive = np.r_[False, positive[:-1]] & (np.diff(key_sorted, prepend=-2) == 1)
        starts = positive & ~previous_positive
        episode = np.cumsum(starts) - 1
        start_keys = key_sorted[starts]
        lengths = np.bincount(episode[positive], minlength=len(start_keys))
        return cls(key, start_keys, order[starts], lengths, series, stamps, horizon)

    def warned(self, alerts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(warned, lead hours: NaN where not warned) of each episode under `alerts`."""
        alerts = np.asarray(alerts, dtype=bool)
        if len(alerts) != len(self.key):
            raise ValueError("labels, alerts, series and timestamps must have the same length")
        alert_keys = np.sort(self.key[alerts])
        warned = np.zeros(len(self.start_keys), dtype=bool)
        earliest = self.start_keys
        if len(alert_keys):
            # The first alert at or after start - H; it warns only if it is not after the start.
            first = np.searchsorted(alert_keys, self.start_keys - self.horizon, side="left")
            earliest = alert_keys[np.minimum(first, len(alert_keys) - 1)]
            warned = (first < len(alert_keys)) & (earliest <= self.start_keys)
        lead = np.where(warned, (self.start_keys - earliest) * (BAR / pd.Timedelta("1h")), np.nan)
        return warned, lead

    def table(self, alerts: np.ndarray) -> pd.DataFrame:
        """One row per episode: its series, start, length, whether it was warned, lead time."""
        warned, lead = self.warned(alerts)
        if len(self.key) == 0:
            return pd.DataFrame(
                {"series": [], "start": pd.DatetimeIndex([], tz="UTC"), "bars": [], "warned": []}
            ).assign(lead_hours=np.array([], dtype="float64"))
        return pd.DataFrame(
            {
                "series": np.asarray(self.series, dtype=object)[self.start_positions],
                "start": self.stamps[self.start_positions],
                "bars": self.lengths,
                "warned": warned,
                "lead_hours": lead,
            }
        )

    def recall(self, alerts: np.ndarray) -> EventRecall:
        """Share of the episodes warned in time and their median lead time."""
        warned, lead = self.warned(alerts)
        n, hits = len(warned), int(warned.sum())
        return EventRecall(
            n_events=n,
            warned=hits,
            recall=hits / n if n else float("nan"),
            median_lead_hours=float(pd.Series(lead).median()) if hits else float("nan"),
        )


def event_table(
    y: np.ndarray,
    alerts: np.ndarray,
    series: np.ndarray | pd.Series,
    timestamps: np.ndarray | pd.Series | pd.DatetimeIndex,
    horizon: int,
) -> pd.DataFrame:
    """One row per flush episode: its series, start, length, whether it was warned, lead time
    (`Episodes`)."""
    return Episodes.find(y, series, timestamps, horizon).table(alerts)


@dataclass(frozen=True)
class EventRecall:
    """Episode-level warning summary."""

    n_events: int
    warned: int
    recall: float
    median_lead_hours: float


def event_recall(
    y: np.ndarray,
    alerts: np.ndarray,
    series: np.ndarray | pd.Series,
    timestamps: np.ndarray | pd.Series | pd.DatetimeIndex,
    horizon: int,
) -> EventRecall:
    """Share of flush episodes warned in time (see `Episodes`) and their median lead time."""
    return Episodes.find(y, series, timestamps, horizon).recall(alerts)


def direction_accuracy(
    true_direction: np.ndarray | pd.Series, p_long_flush: np.ndarray, threshold: float = 0.5
) -> float:
    """Accuracy of long-flush vs short-squeeze calls on true one-sided flushes.

    Rows whose true direction is mixed (or that are not flushes) have no right answer and are
    left out; NaN when none remain.
    """
    truth = np.asarray(true_direction, dtype=object)
    p = np.asarray(p_long_flush, dtype="float64")
    sided = (truth == LONG_FLUSH) | (truth == SHORT_SQUEEZE)
    if not sided.any():
        return float("nan")
    predicted_long = p[sided] >= threshold
    return float(np.mean(predicted_long == (truth[sided] == LONG_FLUSH)))


def time_blocks(
    timestamps: np.ndarray | pd.Series | pd.DatetimeIndex, block_bars: int = 72
) -> np.ndarray:
    """Block id per row: consecutive `block_bars`-bar stretches of time, all symbols together.

    Symbols share a block because a cascade hits them at the same time.
    """
    stamps = pd.DatetimeIndex(timestamps)
    if len(stamps) == 0:
        return np.array([], dtype=np.int64)
    return np.asarray((stamps - stamps.min()) // (block_bars * BAR), dtype=np.int64)


def block_bootstrap_cis(
    statistics: Callable[[np.ndarray], Sequence[float]],
    blocks: np.ndarray,
    *,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> list[tuple[float, float]]:
    """Percentile intervals of each of `statistics(rows)` over resamples of whole blocks.

    Each resample draws as many blocks as there are, with replacement, and passes the positions
    of all their rows (repeats included) to `statistics`. `blocks=np.arange(n)` is the iid
    bootstrap. Resamples where a statistic is undefined (NaN) are ignored for it. The statistics
    share each resample: a difference of two models is judged on identical rows, and shared
    work (a sort) is done once.
    """
    codes, _ = pd.factorize(np.asarray(blocks))
    n_blocks = int(codes.max()) + 1 if len(codes) else 0
    if n_blocks == 0:
        raise ValueError("no rows to resample")
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=n_blocks)
    offsets = np.r_[0, np.cumsum(counts)[:-1]]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        chosen = rng.integers(0, n_blocks, n_blocks)
        sizes = counts[chosen]
        # Positions of every row of every chosen block, without a Python loop over blocks.
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        rows = order[np.repeat(offsets[chosen], sizes) + within]
        values.append(np.asarray(statistics(rows), dtype="float64"))
    table = np.array(values)
    tail = (1 - level) / 2 * 100
    intervals = []
    for column in table.T:
        if np.isnan(column).all():
            intervals.append((float("nan"), float("nan")))
        else:
            low, high = np.nanpercentile(column, [tail, 100 - tail])
            intervals.append((float(low), float(high)))
    return intervals


def within_block_edge_interval(
    y: np.ndarray,
    mine: np.ndarray,
    theirs: np.ndarray,
    blocks: np.ndarray,
    metric: str,
    *,
    n_boot: int = 200,
) -> tuple[float, float]:
    """95 % interval of `mine` minus `theirs` in a within-block figure (`metric`: "roc_auc" or
    "pr_auc" of `WithinBlocks`). The figure is a mean over test blocks, so the bootstrap
    resamples whole blocks (those holding a flush), the same ones for both models."""
    a, b = per_block(y, mine, blocks), per_block(y, theirs, blocks)
    (interval,) = block_bootstrap_cis(
        lambda i: [getattr(a.resampled(i), metric) - getattr(b.resampled(i), metric)],
        np.arange(len(a.events)),
        n_boot=n_boot,
    )
    return interval


@dataclass(frozen=True)
class Metric:
    """One column of every metric table: its key, its heading, which way is better."""

    key: str
    label: str
    higher_is_better: bool
    description: str


METRICS: tuple[Metric, ...] = (
    Metric("pr_auc", "PR-AUC", True, "average precision over all test rows pooled"),
    Metric("lift", "lift", True, "pooled PR-AUC over the base rate (1 = chance)"),
    Metric("roc_auc", "ROC", True, "pooled ROC-AUC"),
    Metric("roc_auc_within_fold", "ROC in fold", True, "ROC-AUC within each test block, mean"),
    Metric("pr_auc_within_fold", "PR-AUC in fold", True, "PR-AUC within each test block, mean"),
    Metric("lift_within_fold", "lift in fold", True, "within-block PR-AUC over its rate"),
    Metric("brier", "Brier", False, "mean squared error of the probability"),
    Metric("brier_skill", "Brier skill", True, "1 - Brier / Brier of climatology"),
    Metric("log_loss", "log loss", False, "mean negative log-likelihood"),
    Metric("ece", "ECE", False, "expected calibration error over 10 bins"),
    Metric("precision_top5", "prec@5%", True, "precision of alerting on the top 5 %"),
    Metric("recall_top5", "rec@5%", True, "recall of alerting on the top 5 %"),
    Metric("event_recall", "event rec.", True, "flush episodes warned within H hours before"),
    Metric("median_lead_hours", "lead h", True, "median warning lead time of warned episodes"),
)
"""Every per-model metric, in table order: the CLI, the model card, MLflow and the gate read
this one list."""
WITHIN_FOLD_NOTE = (
    "within-fold metrics rank each test block's flushes against the same block's quiet bars "
    "(mean over blocks with a flush, weighted by their flushes)"
)


def score_metrics(
    y: np.ndarray,
    p: np.ndarray,
    *,
    reference: np.ndarray | float,
    series: np.ndarray | pd.Series,
    timestamps: np.ndarray | pd.Series | pd.DatetimeIndex,
    horizon: int,
    blocks: np.ndarray,
    fraction: float = TOP_FRACTION,
    seed: int = 0,
    episodes: Episodes | None = None,
) -> dict[str, float]:
    """Every metric of `METRICS` for one model, one horizon and one set of rows.

    `reference` is the climatology probability the Brier skill is measured against, `blocks`
    the test block of each row (within-fold ranking); `episodes`, when given, are these rows'
    (`Episodes.find(y, series, timestamps, horizon)`, shared by the models of a table).
    """
    y, p = _arrays(y, p)
    alerts = alert_mask(p, fraction, seed)  # once: its seeded tie-break is the cost
    precision, recall = _precision_recall(y, alerts)
    episodes = episodes or Episodes.find(y, series, timestamps, horizon)
    events = episodes.recall(alerts)
    within = within_blocks(y, p, blocks)
    average_precision = pr_auc(y, p)
    return {
        "pr_auc": average_precision,
        "lift": _over_base_rate(average_precision, y),
        "roc_auc": roc_auc(y, p),
        "roc_auc_within_fold": within.roc_auc,
        "pr_auc_within_fold": within.pr_auc,
        "lift_within_fold": within.lift,
        "brier": brier(y, p),
        "brier_skill": brier_skill(y, p, reference),
        "log_loss": log_loss(y, p),
        "ece": ece(y, p),
        "precision_top5": precision,
        "recall_top5": recall,
        "event_recall": events.recall,
        "median_lead_hours": events.median_lead_hours,
        "folds_used": float(within.blocks_used),
    }
