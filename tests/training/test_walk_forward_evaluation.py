"""The walk-forward evaluation: out of sample, never tuned on a test block, every baseline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flushcast.training.config import TrainingConfig
from flushcast.training.evaluate import model_names
from flushcast.training.horizon import horizon_data
from flushcast.training.metrics import METRICS
from flushcast.training.record import EvaluationRecord
from flushcast.training.walkforward import calibrate_and_choose, calibrate_fold, out_of_fold


@pytest.fixture(scope="module")
def config(small_config) -> TrainingConfig:
    return small_config


@pytest.fixture(scope="module")
def evaluation(small_evaluation):
    return small_evaluation


def test_every_prediction_is_out_of_sample_and_purged(evaluation, small_dataset):
    for h, result in evaluation.horizons.items():
        preds, folds = result.frame, result.folds.set_index("fold")
        stamps = pd.DatetimeIndex(preds["timestamp"])
        start = pd.DatetimeIndex(folds.loc[preds["fold"], "test_start"])
        end = pd.DatetimeIndex(folds.loc[preds["fold"], "test_end"])
        assert ((stamps >= start) & (stamps < end)).all()
        assert not preds.duplicated(["timestamp", "symbol", "venue"]).any()
        # A fold trains only on rows whose label window ends an embargo before its test block.
        gap = pd.Timedelta(hours=2 * h)
        assert (folds["test_start"] - folds["train_end"] == gap).all()
        rows = small_dataset.labelled(h)
        for number, fold in folds.iterrows():
            assert fold["n_train"] == (rows["timestamp"] < fold["train_end"]).sum(), number


def test_a_fold_is_never_tuned_calibrated_or_chosen_on_its_own_test_block(small_dataset, config):
    """Relabel fold f's test block and everything after it: fold f's predictions, its
    calibration and its choice of champion must not move, since none of them may look there."""
    h = 4
    config = config.with_overrides(
        {
            # lightgbm_rank: its training blocks are read from the fold's training rows only
            "fit.candidates": ["logistic", "lightgbm", "lightgbm_rank"],
            "combination.inputs": ["logistic", "lightgbm", "lightgbm_rank"],
            "fit.lightgbm.rounds": 40,
            "evaluation.baselines": ["climatology", "placebo", "heuristic"],
        }
    )
    data = horizon_data(small_dataset, h)
    folds = data.folds(config)
    oof = out_of_fold(data, folds, config)
    before = calibrate_and_choose(data, folds, oof, config)
    scored = before.folds[before.folds["status"] == "scored"]
    f = int(scored["fold"].iloc[len(scored) // 2])
    cut = folds[f].test_start
    changed = data.y.copy()
    later = data.t >= np.datetime64(cut.tz_convert(None), "us")
    changed[later] = 1.0 - changed[later]
    data_changed = horizon_data(small_dataset, h)
    data_changed.y = changed
    oof_changed = out_of_fold(data_changed, folds, config)
    after = calibrate_and_choose(data_changed, folds, oof_changed, config)
    columns = [c for c in before.frame if c.startswith("p_")]
    mine = before.frame["fold"] == f
    pd.testing.assert_frame_equal(
        before.frame.loc[mine, columns].reset_index(drop=True),
        after.frame.loc[after.frame["fold"] == f, columns].reset_index(drop=True),
    )
    row = lambda table: table.set_index("fold").loc[f]  # noqa: E731
    assert row(before.folds)["champion"] == row(after.folds)["champion"]
    shares = [c for c in before.folds if c.startswith("share_")]
    assert shares and (row(before.folds)[shares] == row(after.folds)[shares]).all()


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"combination.toward": "plausible"},
        {"combination.weigh_by_plausibility": True},
        {"combination.method": "best"},
        {"combination.level_inputs": ["logistic", "liquidation_surprise"]},
    ],
)
def test_a_folds_champion_reads_no_label_of_its_test_block_under_every_rule(
    evaluation, small_dataset, config, settings
):
    """Pass 2 on the same out-of-fold scores, with every label from fold f's test block on
    flipped: fold f's shares, plausibilities and probabilities do not move, whichever rule
    combines (only labels known before the fold's cutoff are read)."""
    config = config.with_overrides(settings)
    data = horizon_data(small_dataset, 4)
    oof = evaluation.horizons[4].oof
    folds = data.folds(config)
    scored = evaluation.horizons[4].folds.query("status == 'scored'")["fold"]
    fold = folds[int(scored.iloc[len(scored) // 2])]
    before = calibrate_fold(data, fold, oof, config)
    flipped = horizon_data(small_dataset, 4)
    later = flipped.t >= np.datetime64(fold.test_start.tz_convert(None), "us")
    flipped.y = np.where(later, 1.0 - flipped.y, flipped.y)
    after = calibrate_fold(flipped, fold, oof, config)
    kept = [
        k
        for k in before.record
        if k.startswith(("share_", "inner_", "plausible_")) or k == "choice"
    ]
    assert kept and {k: before.record[k] for k in kept} == {k: after.record[k] for k in kept}
    for name, p in before.probability.items():
        np.testing.assert_array_equal(p, after.probability[name])


def test_folds_without_evidence_are_left_out_for_every_model_with_the_reason(evaluation):
    for h, result in evaluation.horizons.items():
        folds = result.folds
        left_out = folds[folds["status"] != "scored"]
        assert len(left_out) >= 1  # the first weeks have no out-of-fold flush to calibrate on
        assert left_out["status"].str.contains("out-of-fold flush|no flush").all()
        assert not set(left_out["fold"]) & set(result.frame["fold"])
        record = evaluation.record.horizons[h]
        assert record.n_folds == len(folds) - len(left_out)
        assert [e.fold for e in record.folds_excluded] == left_out["fold"].tolist()
        # Every model is scored on exactly the same rows.
        p = result.frame.filter(like="p_")
        assert p.notna().all().all()


def test_the_champion_is_its_parts_combined_with_shares_from_earlier_folds(evaluation, config):
    """Each fold's champion is Σ share · standardised score of its inputs (shares >= 0, summing
    to 1, from the fold table), calibrated without reversing that combined ranking."""
    for h, result in evaluation.horizons.items():
        scored = result.folds[result.folds["status"] == "scored"].set_index("fold")
        share_columns = [c for c in scored if c.startswith("share_")]
        assert {c.removeprefix("share_") for c in share_columns} == set(config.combination.inputs)
        shares = scored[share_columns]
        assert (shares >= 0).all().all()
        np.testing.assert_allclose(shares.sum(axis=1), 1.0)
        assert (scored["champion"] == "stack").all()
        record = evaluation.record.horizons[h]
        assert sum(record.champion_shares.values()) == pytest.approx(1.0)
        oof = result.oof
        for fold, part in result.frame.groupby("fold"):
            rows = oof.fold_of == fold
            z = sum(
                scored.loc[fold, f"share_{n}"] * oof.raw[n][rows] for n in config.combination.inputs
            )
            p = part["p_champion"].to_numpy()
            order = np.argsort(z, kind="stable")
            assert (np.diff(p[order]) >= -1e-15).all()  # never a reversed pair
            assert np.corrcoef(np.argsort(order), np.argsort(np.argsort(p)))[0, 1] > 0.99


def test_the_record_names_the_strongest_baseline_and_the_edge(evaluation, config):
    names = model_names(config)
    document = evaluation.record.to_document()
    json.dumps(document, allow_nan=False)  # strict JSON: NaN would break other tools
    assert EvaluationRecord.from_document(document).to_document() == document
    for h, entry in evaluation.record.horizons.items():
        raw = document[str(h)]
        assert set(raw["models"]) == set(names)
        for model in names:
            assert {m.key for m in METRICS} <= set(raw["models"][model])
        preds = evaluation.predictions[h]
        assert entry.n_test == len(preds)
        assert entry.base_rate == pytest.approx(preds["y"].mean())
        baselines = config.evaluation.baselines
        assert entry.best_baseline in baselines
        best = max(baselines, key=lambda b: entry.metric(b, "pr_auc") or -1)
        assert entry.best_baseline == best
        assert entry.edge_over_best_baseline == pytest.approx(
            entry.metric("champion", "pr_auc") - entry.metric(best, "pr_auc")
        )
        low, high = entry.intervals["edge_over_best_baseline"]
        assert low <= high
        # Within blocks the gate compares ROC-AUC with the baseline strongest there.
        within = max(baselines, key=lambda b: entry.metric(b, "roc_auc_within_fold") or -1)
        assert entry.best_baseline_roc_within_fold == within
        edge = entry.edge_over_best_baseline_roc_within_fold
        assert edge == pytest.approx(
            entry.metric("champion", "roc_auc_within_fold")
            - entry.metric(within, "roc_auc_within_fold")
        )
        low, high = entry.intervals["edge_over_best_baseline_roc_within_fold"]
        assert low <= high
        summary = evaluation.record.summary()["horizons"][str(h)]
        assert summary["edge_roc_within_fold"] == pytest.approx(edge)
        assert summary["edge_roc_within_fold_interval"] == [low, high]
        assert entry.metric("placebo", "roc_auc_within_fold") == pytest.approx(0.5, abs=0.12)
        assert entry.metric("climatology", "roc_auc_within_fold") == pytest.approx(0.5)
        assert entry.metric("climatology", "brier_skill") == pytest.approx(0.0)
        assert sum(s.n_test for s in entry.per_symbol.values()) == entry.n_test
    assert evaluation.record.meta["label"]["label_m"] == 4.0


def test_calibrated_probabilities_verify_on_little_data(evaluation):
    # 100 days of two symbols is too little for ranking to beat chance reliably (the demo and
    # the benchmark measure that on years); probabilities and direction must still hold.
    entry = evaluation.record.horizons[4]
    preds = evaluation.predictions[4]
    assert entry.metric("champion", "ece") < 0.05
    assert abs(preds["p_champion"].mean() - preds["y"].mean()) < 0.03
    assert entry.metric("champion", "direction_accuracy") > 0.6


def test_long_predictions_have_the_cli_contract(evaluation, config):
    long = evaluation.long_predictions()
    required = {"timestamp", "symbol", "venue", "horizon", "fold", "y", "p_champion"}
    assert required <= set(long.columns)
    assert {f"p_{m}" for m in model_names(config)} <= set(long.columns)
    assert sorted(long["horizon"].unique()) == sorted(evaluation.horizons)


def test_the_training_rate_forecasts_a_folds_rate_better_than_the_recent_out_of_fold_rows(
    evaluation, small_dataset, config
):
    """Why calibration takes its level from the prior (`calibration.level`): the flush rate of
    the out-of-fold rows before a fold (what a fitted map reproduces) misses the fold's own rate
    by more than the training base rate does; busy spans do not persist."""
    for h, result in evaluation.horizons.items():
        data = horizon_data(small_dataset, h)
        window = config.calibration.window_hours * np.timedelta64(1, "h")
        errors = []
        for fold in data.folds(config):
            cut = np.datetime64(fold.train_end.tz_convert(None), "us")
            rows = (result.oof.fold_of >= 0) & (data.t < cut) & (data.t >= cut - window)
            if data.y[rows].sum():
                test_rate = data.y[fold.test].mean()
                errors.append(
                    (
                        (test_rate - data.y[fold.train].mean()) ** 2,
                        (test_rate - data.y[rows].mean()) ** 2,
                    )
                )
        prior_error, recent_error = np.mean(errors, axis=0)
        assert len(errors) >= 4 and prior_error < recent_error


def test_direction_is_reported_beside_trivial_rules_learned_on_the_training_span(
    evaluation, small_dataset, config
):
    for h, result in evaluation.horizons.items():
        data = horizon_data(small_dataset, h)
        sided, is_long = data.sided()
        frame = result.frame
        for fold in data.folds(config):
            part = frame[frame["fold"] == fold.number]
            if len(part):
                rows = fold.train[sided[fold.train]]
                # The long share of the training span's one-sided flushes (one pseudo-count a side).
                share = (is_long[rows].sum() + 1) / (len(rows) + 2)
                np.testing.assert_allclose(part["dir_majority"], share)
                # A sign rule: one probability per sign, the majority's where the sign is unknown.
                signs = part["dir_funding_sign"].round(12).unique()
                called = [v for v in signs if not np.isclose(v, share)]
                assert len(called) <= 2 and (len(called) < 2 or np.isclose(sum(called), 1.0))
        direction = evaluation.record.horizons[h].direction
        assert set(direction.accuracy) == {
            "call",
            "model",
            "majority",
            "funding_sign",
            "return_24h_sign",
        }
        assert direction.accuracy["call"] == pytest.approx(
            evaluation.record.horizons[h].metric("champion", "direction_accuracy")
        )
        # The default call is the trees alone: what it is made of says so.
        assert direction.method == "model" and direction.made_of["model"] == 1.0
        assert direction.accuracy["call"] == direction.accuracy["model"]
        assert direction.best_rule in direction.accuracy
        for name, (low, high) in direction.intervals.items():
            assert low <= high, name
        assert 0 < direction.n_episodes <= direction.n_sided
