"""Simulated history before a short real store, used the way a user would (slow tier).

Two months of Coinalyze's BTC, ETH and SOL (recorded real files from ../shared, stored at 1 h
and at 4 h) is a short store; `flushcast train --set augment.simulated_days=N` adds the
simulator's history before its first bar. The version it registers records what was added and
serves /predict for the store's own bars, agreeing with the notebook API.
"""

from __future__ import annotations

import json

import pytest

from tests.test_cross_bar_journey import _run, serve_and_predict

pytestmark = pytest.mark.slow
COINALYZE = "denizyts__Coinalyze-Backtester/src/csvFolder"


@pytest.mark.parametrize("bar", ["1h", "4h"])
def test_a_short_store_trained_with_simulated_history_serves(tmp_path, real_data, bar):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    for coin in ("BTC", "ETH", "SOL"):
        files = sorted((real_data / COINALYZE).glob(f"{coin}USDT_PERP.A_*.csv"))
        if not files:
            pytest.skip(f"no Coinalyze {coin} files in {real_data / COINALYZE}")
        ingest = ["ingest", "coinalyze", *map(str, files), "--tz", "+06:00", "--bar", bar]
        _run(tmp_path, env, *ingest, "--store", "short")
    # Two months hold a handful of flushes: the one horizon with enough to calibrate.
    recipe = ["--horizons", "4", "--n-boot", "0", "--retrain-every", "168", "--min-train", "336"]
    recipe += ["--set", "fit.lightgbm.rounds=30", "--set", "fit.candidates=[logistic,lightgbm]"]
    recipe += ["--set", "calibration.min_episodes=2"]
    history = ["--set", "augment.simulated_days=90"]
    trained = _run(tmp_path, env, "train", "--store", "short", *recipe, *history)
    assert "added simulated history (training only, never tested)" in trained.stdout
    assert "90 days of " + bar in trained.stdout

    answer = serve_and_predict(tmp_path, "short", uri, env)
    assert answer["info"]["bar_hours"] == {"1h": 1.0, "4h": 4.0}[bar]
    added = answer["info"]["training"]["augmented"]
    assert added["days"] == 90 and added["bar"] == bar
    series = answer["info"]["training"]["series"]
    assert series["BTCUSDT@binance"]["tested"] is True
    assert {k for k, v in series.items() if not v["tested"]} == {
        "BTCUSDT@sim",
        "ETHUSDT@sim",
        "SOLUSDT@sim",
    }
    assert added["end"] <= series["BTCUSDT@binance"]["first"]
    status, predicted = answer["predict"]
    assert status == 200, json.dumps(predicted)[:2000]
    for horizon in predicted["horizons"]:
        p = answer["notebook"][f"p_flush_{horizon['horizon_hours']}h"]
        assert horizon["p_flush"] == pytest.approx(p, rel=1e-9)
