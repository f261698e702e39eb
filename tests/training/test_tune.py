"""Bounded tuning: it sees only the training span, and its file is what `train --config` takes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.common.engine import InProcess
from flushcast.training.config import load
from flushcast.training.labels import flush_column
from flushcast.training.tune import SPACE, Tuned, inner_score, training_span


def test_the_span_holds_only_rows_whose_labels_close_by_the_cutoff(small_dataset):
    cutoff = pd.Timestamp("2024-03-01", tz="UTC")
    span = training_span(small_dataset, cutoff)
    longest = pd.Timedelta(hours=max(small_dataset.label.horizons))
    assert (span.table["timestamp"] + longest <= cutoff).all()
    kept = small_dataset.table["timestamp"] + longest <= cutoff
    assert len(span.table) == kept.sum() > 0


def test_the_tuned_file_is_a_configuration_train_reads(small_config, tmp_path):
    chosen = small_config.with_overrides({"fit.lightgbm.num_leaves": 9, "fit.logistic_C": 0.5})
    tuned = Tuned(chosen, 0.61, 0.6, pd.Timestamp("2024-03-01", tz="UTC"), pd.DataFrame([{}]))
    path = tmp_path / "tuned.yaml"
    path.write_text(tuned.yaml())
    assert load(path) == chosen
    assert set(SPACE) <= set(chosen.flat())  # every searched key is a configuration key


@pytest.mark.slow
def test_rows_after_the_cutoff_cannot_move_the_inner_score(small_dataset, small_config):
    """Flip every label after the cutoff: the study's evidence must not change."""
    cutoff = pd.Timestamp("2024-03-25", tz="UTC")
    config = small_config.with_overrides({"fit.lightgbm.rounds": 30})
    before = inner_score(training_span(small_dataset, cutoff), config, InProcess())
    flipped = small_dataset.table.copy()
    late = flipped["timestamp"] >= cutoff - pd.Timedelta(hours=6)
    for h in small_dataset.label.horizons:
        flipped.loc[late, flush_column(h)] = 1 - flipped.loc[late, flush_column(h)]
    altered = type(small_dataset)(flipped, small_dataset.features, small_dataset.label)
    after = inner_score(training_span(altered, cutoff), config, InProcess())
    assert np.isfinite(before) and before == after


def test_the_inner_score_runs_both_passes_as_engine_tasks(small_dataset, small_config, monkeypatch):
    """Pass 2 runs on the cluster's workers like the walk-forward's, not in the client; the
    score is the one both passes give run one fold after the other in this process."""
    import threading

    from distributed import Client

    from flushcast.common.engine import Distributed
    from flushcast.training import tasks, walkforward
    from flushcast.training.metrics import within_blocks
    from flushcast.training.tasks import walk_forward_plans
    from flushcast.training.walkforward import CHAMPION, calibrate_and_choose, out_of_fold

    span = training_span(small_dataset, pd.Timestamp("2024-03-25", tz="UTC"))
    config = small_config.with_overrides(
        {"fit.lightgbm.rounds": 20, "fit.candidates": ["logistic", "lightgbm"]}
    )
    names = list(config.fit.candidates)
    serial = []
    for data, folds in walk_forward_plans(span, config).values():
        oof = out_of_fold(data, folds, config, names)
        frame = calibrate_and_choose(data, folds, oof, config).frame
        ranked = within_blocks(frame["y"], frame[f"p_{CHAMPION}"], frame["block"].to_numpy())
        serial.append(getattr(ranked, config.selection.metric))

    threads = []
    calibrate_fold = walkforward.calibrate_fold

    def recorded(*args):
        threads.append(threading.current_thread())
        return calibrate_fold(*args)

    monkeypatch.setattr(walkforward, "calibrate_fold", recorded)
    monkeypatch.setattr(tasks, "calibrate_fold", recorded)
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as c:
        there = inner_score(span, config, Distributed(c, "threads"))
    assert threads and threading.main_thread() not in threads
    assert there == float(np.nanmean(serial)) == inner_score(span, config, InProcess())


@pytest.mark.slow
def test_tune_writes_a_configuration_and_logs_the_study(sim_store, tmp_path, tracking_uri):
    out = tmp_path / "tuned.yaml"
    args = ["tune", "--store", str(sim_store), "--horizons", "4", "--trials", "2"]
    args += ["--cutoff", "2024-03-25", "--out", str(out), "--tracking-uri", tracking_uri]
    args += ["--set", "fit.lightgbm.rounds=30", "--experiment", "tune"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "inner walk-forward before 2024-03-25" in result.output
    tuned = load(out)
    run = MlflowClient(tracking_uri).search_runs(
        [MlflowClient(tracking_uri).get_experiment_by_name("tune").experiment_id]
    )[0]
    logged = {a.path for a in MlflowClient(tracking_uri).list_artifacts(run.info.run_id, "tuning")}
    assert {"tuning/study.db", "tuning/trials.csv", "tuning/tuned.yaml"} <= logged
    assert run.data.metrics["tune.inner_best"] >= run.data.metrics["tune.inner_default"]
    assert json.dumps(tuned.model_dump(mode="json"))  # a whole configuration
    train = ["train", "--store", str(sim_store), "--config", str(out), "--no-evaluate"]
    train += ["--tracking-uri", tracking_uri, "--experiment", "tune"]
    trained = CliRunner().invoke(app, train)
    assert trained.exit_code == 0, trained.output
