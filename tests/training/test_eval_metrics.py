"""Metrics on cases small enough to check by hand, and the block bootstrap on clustered events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.training import metrics

Y = np.array([1, 0, 1, 0])
P = np.array([0.9, 0.8, 0.7, 0.1])


def _hours(bars) -> pd.DatetimeIndex:
    return pd.Timestamp("2024-08-01", tz="UTC") + pd.to_timedelta(np.asarray(bars), "h")


def test_ranking_metrics_by_hand():
    # Ranked: + - + -: precision 1 at recall 0.5, 2/3 at recall 1.
    assert metrics.pr_auc(Y, P) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert metrics.lift(Y, P) == pytest.approx((0.5 + 1 / 3) / 0.5)
    # Positive-negative pairs ordered correctly: (0.9>0.8), (0.9>0.1), (0.7>0.1), not (0.7<0.8).
    assert metrics.roc_auc(Y, P) == pytest.approx(3 / 4)
    assert np.isnan(metrics.roc_auc(np.zeros(4), P))
    assert np.isnan(metrics.pr_auc(np.zeros(4), P))


def test_probability_metrics_by_hand():
    y, p = np.array([1, 0]), np.array([0.8, 0.3])
    assert metrics.brier(y, p) == pytest.approx((0.2**2 + 0.3**2) / 2)
    assert metrics.brier_skill(y, p, 0.5) == pytest.approx(1 - 0.065 / 0.25)
    assert metrics.brier_skill(y, np.full(2, 0.5), 0.5) == pytest.approx(0.0)
    assert metrics.log_loss(y, p) == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2)
    assert np.isfinite(metrics.log_loss(np.array([1]), np.array([0.0])))


def test_ece_and_reliability_table_by_hand():
    y, p = np.array([0, 1, 1, 1]), np.array([0.1, 0.1, 0.9, 0.9])
    table = metrics.reliability_table(y, p)
    assert table["count"].tolist() == [2, 2]
    assert table["observed"].tolist() == [0.5, 1.0]
    # Half the rows are off by 0.4, half by 0.1.
    assert metrics.ece(y, p) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert metrics.ece(np.array([0, 0, 0, 1]), np.full(4, 0.25)) == pytest.approx(0.0)


def test_top_fraction_alerts():
    scores = np.arange(20, dtype=float)
    y = np.zeros(20)
    y[[19, 5]] = 1
    alerts = metrics.alert_mask(scores, 0.1)
    assert np.flatnonzero(alerts).tolist() == [18, 19]
    precision, recall = metrics.precision_recall_at_top(y, scores, 0.1)
    assert (precision, recall) == (0.5, 0.5)
    # A constant forecast alerts on exactly the budget, at seeded random rows.
    flat = metrics.alert_mask(np.ones(100), 0.05, seed=3)
    assert flat.sum() == 5
    assert np.array_equal(flat, metrics.alert_mask(np.ones(100), 0.05, seed=3))
    assert not np.array_equal(flat, metrics.alert_mask(np.ones(100), 0.05, seed=4))


def test_event_table_episodes_warnings_and_lead_time():
    # A: episodes at bars 4-5 and 8; the alert at bar 2 warns the first, 2 h ahead.
    # B: episode at 8-9 with alerts at 7 and 8: warned, lead 1 h from the earliest.
    # C: positives at 3 and 5 with bar 4 missing: two episodes; its alert at 0 is too early.
    a_y = [0, 0, 0, 0, 1, 1, 0, 0, 1, 0]
    a_alert = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    b_y = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    b_alert = [0, 0, 0, 0, 0, 0, 0, 1, 1, 0]
    c_bars = [0, 1, 2, 3, 5, 6]
    c_y = [0, 0, 0, 1, 1, 0]
    c_alert = [1, 0, 0, 0, 0, 0]
    y = np.array(a_y + b_y + c_y)
    alerts = np.array(a_alert + b_alert + c_alert, dtype=bool)
    series = ["A"] * 10 + ["B"] * 10 + ["C"] * 6
    stamps = _hours(list(range(10)) + list(range(10)) + c_bars)
    table = metrics.event_table(y, alerts, series, stamps, horizon=2)
    table = table.sort_values(["series", "start"]).reset_index(drop=True)
    assert table["series"].tolist() == ["A", "A", "B", "C", "C"]
    assert table["start"].dt.hour.tolist() == [4, 8, 8, 3, 5]
    assert table["bars"].tolist() == [2, 1, 2, 1, 1]
    # A@8: B's alert at 7 is another series; C@3: the alert at 0 is 3 h ahead, beyond H = 2.
    assert table["warned"].tolist() == [True, False, True, False, False]
    np.testing.assert_array_equal(table["lead_hours"], [2.0, np.nan, 1.0, np.nan, np.nan])
    summary = metrics.event_recall(y, alerts, series, stamps, horizon=2)
    assert (summary.n_events, summary.warned) == (5, 2)
    assert summary.recall == pytest.approx(0.4)
    assert summary.median_lead_hours == pytest.approx(1.5)


def test_direction_accuracy_ignores_mixed():
    truth = pd.Categorical(["long_flush", "short_squeeze", "mixed", "long_flush", None])
    p_long = np.array([0.8, 0.3, 0.9, 0.2, 0.9])
    assert metrics.direction_accuracy(truth, p_long) == pytest.approx(2 / 3)
    assert np.isnan(metrics.direction_accuracy(["mixed"], [0.5]))


def test_block_bootstrap_is_wider_than_iid_on_clustered_events():
    """Events in 24 h runs: resampling rows treats one cascade as 24 independent successes."""
    rng = np.random.default_rng(0)
    n = 24 * 200
    y = np.zeros(n)
    for start in rng.choice(np.arange(0, n - 24, 24), size=20, replace=False):
        y[start : start + 24] = 1.0
    stamps = _hours(np.arange(n))

    def share(rows: np.ndarray) -> float:
        return float(y[rows].mean())

    (block,) = metrics.block_bootstrap_cis(
        lambda i: [share(i)], metrics.time_blocks(stamps, 72), n_boot=300
    )
    (iid,) = metrics.block_bootstrap_cis(lambda i: [share(i)], np.arange(n), n_boot=300)
    assert block[0] < y.mean() < block[1] and iid[0] < y.mean() < iid[1]
    assert (block[1] - block[0]) > 2.5 * (iid[1] - iid[0])


def test_time_blocks_group_symbols_at_the_same_time():
    stamps = _hours([0, 1, 2, 3, 0, 1, 2, 3])
    np.testing.assert_array_equal(metrics.time_blocks(stamps, 2), [0, 0, 1, 1, 0, 0, 1, 1])


def test_score_metrics_has_every_metric_of_the_table():
    rng = np.random.default_rng(1)
    n = 400
    p = rng.random(n)
    y = (rng.random(n) < p * 0.3).astype(float)
    report = metrics.score_metrics(
        y,
        p,
        reference=y.mean(),
        series=np.repeat(["A", "B"], n // 2),
        timestamps=_hours(np.tile(np.arange(n // 2), 2)),
        horizon=4,
        blocks=np.tile(np.arange(n // 2) // 50, 2),
    )
    assert set(report) == {m.key for m in metrics.METRICS} | {"folds_used"}
    assert report["roc_auc"] > 0.6  # p carries real signal here
    assert report["folds_used"] == 4
    with pytest.raises(ValueError, match="finite"):
        metrics.score_metrics(
            np.array([1.0, np.nan]),
            np.array([0.5, 0.5]),
            reference=0.5,
            series=["A", "A"],
            timestamps=_hours([0, 1]),
            horizon=1,
            blocks=np.zeros(2),
        )


@pytest.mark.parametrize("seed", range(3))
def test_within_block_metrics_equal_sklearn_per_block_with_ties(seed):
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(seed)
    n = 4000
    blocks = rng.integers(0, 12, n)
    y = (rng.random(n) < 0.03 + 0.01 * blocks).astype(float)
    y[blocks == 11] = 0.0  # a block without a flush has no ranking to judge
    p = np.round(rng.random(n) + 0.4 * y, 1)  # many ties
    within = metrics.within_blocks(y, p, blocks)
    used = [b for b in range(12) if y[blocks == b].sum() > 0]
    weights = np.array([y[blocks == b].sum() for b in used])
    roc = [roc_auc_score(y[blocks == b], p[blocks == b]) for b in used]
    ap = [average_precision_score(y[blocks == b], p[blocks == b]) for b in used]
    lift = [a / y[blocks == b].mean() for a, b in zip(ap, used, strict=True)]
    assert within.blocks_used == len(used) == 11
    assert within.roc_auc == pytest.approx(np.average(roc, weights=weights), abs=1e-12)
    assert within.pr_auc == pytest.approx(np.average(ap, weights=weights), abs=1e-12)
    assert within.lift == pytest.approx(np.average(lift, weights=weights), abs=1e-9)


def test_a_forecast_that_only_tracks_each_weeks_rate_has_no_skill_within_weeks():
    """Defect 1 of issue 15: pooled ROC rewards a probability *level* that follows each week's
    event rate, without ranking a single flush above that week's quiet bars."""
    rng = np.random.default_rng(0)
    weeks = np.repeat(np.arange(40), 168)
    rates = rng.uniform(0.005, 0.15, 40)
    y = (rng.random(len(weeks)) < rates[weeks]).astype(float)
    level = rates[weeks]  # knows each week's rate, nothing about which bar
    assert metrics.roc_auc(y, level) > 0.65
    within = metrics.within_blocks(y, level, weeks)
    assert within.roc_auc == pytest.approx(0.5)
    assert within.lift == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_pr_auc_equals_sklearns_average_precision_with_ties(seed):
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    y = (rng.random(3000) < 0.05).astype(float)
    p = np.round(rng.random(3000) * 0.2 + 0.3 * y * rng.random(3000), 2)  # many ties
    assert metrics.pr_auc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)


def test_a_resamples_pr_auc_from_rows_ranked_once_is_exactly_its_own():
    """The bootstrap's shortcut (sort once, count the draws) must give the very same float as
    sorting each resample, ties and repeated rows included."""
    rng = np.random.default_rng(7)
    y = (rng.random(2000) < 0.05).astype(float)
    p = np.round(rng.random(2000) * 0.2 + 0.3 * y * rng.random(2000), 2)  # many ties
    ranked = metrics.Ranked(y, p)
    for _ in range(20):
        rows = rng.integers(0, len(y), len(y))
        assert ranked.pr_auc(rows) == metrics.pr_auc(y[rows], p[rows])
    assert np.isnan(ranked.pr_auc(np.flatnonzero(y == 0)))


def test_top_alerts_are_the_last_rows_ordered_by_score_then_seeded_tiebreak():
    """The alert budget without a full sort: the same rows as sorting by (score, tiebreak)."""
    rng = np.random.default_rng(11)
    for trial in range(30):
        n = int(rng.integers(1, 5000))
        scores = rng.random(n)
        scores = np.round(scores, (0, 1, 2, 8)[trial % 4])  # from all tied to none
        tiebreak = np.random.default_rng(trial).random(n)
        k = int(np.ceil(0.05 * n))
        expected = np.zeros(n, dtype=bool)
        expected[np.lexsort((tiebreak, scores))[n - k :]] = True
        assert np.array_equal(metrics.alert_mask(scores, 0.05, seed=trial), expected)


def test_a_tables_shared_episodes_give_each_model_its_own_metrics():
    """`Episodes` found once for a metric table's models: the same figures as finding them per
    model."""
    rng = np.random.default_rng(2)
    stamps = pd.DatetimeIndex(np.tile(_hours(np.arange(500)), 2))
    series = np.repeat(["BTCUSDT@binance", "ETHUSDT@binance"], 500)
    y = (rng.random(1000) < 0.08).astype(float)
    blocks = np.asarray((stamps - stamps.min()) // pd.Timedelta(hours=72))
    episodes = metrics.Episodes.find(y, series, stamps, 4)
    for p in (rng.random(1000), np.round(rng.random(1000), 1) + 0.2 * y):
        kwargs = dict(reference=0.08, series=series, timestamps=stamps, horizon=4, blocks=blocks)
        alone = metrics.score_metrics(y, p, **kwargs)
        shared = metrics.score_metrics(y, p, episodes=episodes, **kwargs)
        assert alone == shared or str(alone) == str(shared)  # NaN != NaN
