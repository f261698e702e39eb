"""`flushcast evaluate | train | promote | rollback` as a user runs them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.marketdata.store import MarketStore
from flushcast.simulator import simulate

pytestmark = pytest.mark.slow

runner = CliRunner()


def test_evaluate_writes_the_json_and_predictions_contract(sim_store, tmp_path, tracking_uri):
    out, preds = tmp_path / "eval.json", tmp_path / "preds.parquet"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--store",
            str(sim_store),
            "--horizons",
            "4",
            "--json",
            str(out),
            "--predictions",
            str(preds),
            "--n-boot",
            "0",
            "--set",
            "fit.lightgbm.rounds=30",
            "--tracking-uri",
            tracking_uri,
            "--experiment",
            "cli",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    entry = document["4"]
    assert {"base_rate", "n_test", "n_events", "n_folds", "models", "per_symbol"} <= set(entry)
    models = {"lightgbm", "logistic", "lightgbm_on_logistic", "champion"}
    models |= {"heuristic", "climatology", "placebo", "volatility", "liquidation_surprise"}
    models |= {"compact_logistic"}
    assert set(entry["models"]) == models
    assert entry["best_baseline"] in models and "edge_over_best_baseline" in entry
    assert "roc_auc_within_fold" in entry["models"]["champion"]
    assert document["meta"]["config"]["fit.lightgbm.rounds"] == 30
    frame = pd.read_parquet(preds)
    assert {"timestamp", "symbol", "venue", "horizon", "fold", "y", "p_champion"} <= set(frame)
    assert {f"p_{m}" for m in models} <= set(frame)
    assert len(frame) == entry["n_test"]
    # The table names the strongest baseline and the edge, pooled and within folds.
    assert "strongest baseline" in result.output and "within folds" in result.output
    # What the champion is made of, and direction beside its trivial rules with intervals.
    shares = entry["champion_shares"]
    assert set(shares) == {"logistic", "lightgbm", "lightgbm_on_logistic", "liquidation_surprise"}
    assert "champion made of (mean share over folds): logistic" in result.output
    direction = entry["direction"]
    assert set(direction["accuracy"]) == {
        "call",
        "model",
        "majority",
        "funding_sign",
        "return_24h_sign",
    }
    assert "trivial rules: majority" in result.output
    assert "(model 1.00); model " in result.output  # the call, what it is made of, the model
    assert direction["method"] == "model" and direction["made_of"]["model"] == 1.0
    assert {"dir_majority", "dir_funding_sign", "dir_return_24h_sign"} <= set(frame)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("cli")
    (run, *_) = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])
    logged = run.data.metrics
    assert logged["champion_share_logistic_4h"] == pytest.approx(shares["logistic"])
    assert "direction_accuracy_majority_4h" in logged


def test_configuration_errors_name_the_key(sim_store, tmp_path):
    base = ["evaluate", "--store", str(sim_store), "--json", str(tmp_path / "x.json")]
    result = runner.invoke(app, [*base, "--set", "fit.lightgbm.leaves=7"])
    assert result.exit_code == 2 and "fit.lightgbm.leaves" in result.output
    result = runner.invoke(app, [*base, "--set", "fit.lightgbm.num_leaves=many"])
    assert result.exit_code == 2 and "fit.lightgbm.num_leaves" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("walk_forward:\n  retrain_every_hours: -3\n")
    result = runner.invoke(app, [*base, "--config", str(bad)])
    assert result.exit_code == 2 and "walk_forward.retrain_every_hours" in result.output
    assert "Traceback" not in result.output
    schema = runner.invoke(app, ["train", "--store", str(sim_store), "--schema"])
    assert schema.exit_code == 0 and "retrain_every_hours" in schema.output


def test_store_without_liquidations_is_refused_with_the_proxy_named(tmp_path, tracking_uri):
    frame = simulate("default", ["BTCUSDT"], days=60, seed=5).frame
    frame["liq_long_usd"] = float("nan")
    frame["liq_short_usd"] = float("nan")
    MarketStore(tmp_path / "store").write(frame, {})
    result = runner.invoke(
        app, ["train", "--store", str(tmp_path / "store"), "--tracking-uri", tracking_uri]
    )
    assert result.exit_code == 2
    assert "no liq_long_usd / liq_short_usd data for BTCUSDT" in result.output
    assert "oi_drop" in result.output and "Traceback" not in result.output


def test_too_little_data_and_unknown_symbols_are_clear_errors(sim_store, tmp_path, tracking_uri):
    short = tmp_path / "short"
    MarketStore(short).write(simulate("default", ["BTCUSDT"], days=20, seed=5).frame, {})
    result = runner.invoke(app, ["train", "--store", str(short), "--tracking-uri", tracking_uri])
    assert result.exit_code == 2
    assert "too little data for H=4" in result.output
    result = runner.invoke(
        app,
        [
            "train",
            "--store",
            str(sim_store),
            "--symbols",
            "DOGEUSDT",
            "--tracking-uri",
            tracking_uri,
        ],
    )
    assert result.exit_code == 2 and "DOGEUSDT" in result.output
    result = runner.invoke(
        app, ["evaluate", "--store", str(tmp_path / "empty"), "--json", str(tmp_path / "x.json")]
    )
    assert result.exit_code == 2 and "no market data" in result.output


def test_promote_unknown_version_and_rollback_without_history(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = runner.invoke(app, ["promote", "99", "--tracking-uri", uri])
    assert result.exit_code == 2 and "no version or alias '99'" in result.output
    result = runner.invoke(app, ["rollback", "--tracking-uri", uri])
    assert result.exit_code == 2 and "rollback" in result.output


@pytest.mark.realdata
def test_evaluate_on_real_coinalyze_data(real_data, tmp_path, tracking_uri):
    folder = real_data / "denizyts__Coinalyze-Backtester/src/csvFolder"
    store = tmp_path / "store"
    for coin in ("BTC", "ETH", "SOL"):
        files = [str(p) for p in sorted(folder.glob(f"{coin}USDT_PERP.A_*.csv"))]
        result = runner.invoke(
            app, ["ingest", "coinalyze", *files, "--store", str(store), "--tz", "+06:00"]
        )
        assert result.exit_code == 0, result.output
    out = tmp_path / "real.json"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--store",
            str(store),
            "--json",
            str(out),
            "--horizons",
            "4,12",
            "--n-boot",
            "0",
            # Two months, the first of which the label's 30-day σ needs as history.
            "--min-train",
            "336",
            "--tracking-uri",
            tracking_uri,
            "--experiment",
            "real",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    for h in ("4", "12"):
        assert document[h]["n_folds"] >= 2
        assert 0.005 < document[h]["base_rate"] < 0.15
        assert set(document[h]["per_symbol"]) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
