"""`flushcast simulate` writes the store and the cascade log; bad options fail cleanly."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.marketdata.store import MarketStore

runner = CliRunner()


def test_simulate_writes_store_and_cascade_log(tmp_path) -> None:
    args = ["simulate", "--symbols", "BTCUSDT,SOLUSDT", "--days", "10", "--seed", "3"]
    result = runner.invoke(app, [*args, "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    frame = MarketStore(tmp_path).read()
    assert sorted(frame["symbol"].astype(str).unique()) == ["BTCUSDT", "SOLUSDT"]
    assert len(frame) == 2 * 10 * 24
    log = pd.read_parquet(tmp_path / "cascades.parquet")
    assert f"{len(log)} cascades" in result.output
    truth = pd.read_parquet(tmp_path / "truth.parquet")
    assert len(truth) == len(frame) and "p_shock" in truth
    again = tmp_path / "again"
    assert runner.invoke(app, [*args, "--store", str(again)]).exit_code == 0
    pd.testing.assert_frame_equal(MarketStore(again).read(), frame)


def test_unknown_preset_is_a_usage_error(tmp_path) -> None:
    result = runner.invoke(app, ["simulate", "--store", str(tmp_path), "--preset", "wild"])
    assert result.exit_code == 2
    assert "calm" in result.output
    assert not (tmp_path / "cascades.parquet").exists()


def test_simulate_emits_daily_bars_with_the_hourly_truth(tmp_path) -> None:
    args = ["simulate", "--symbols", "BTCUSDT", "--days", "10", "--bar", "1d"]
    result = runner.invoke(app, [*args, "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    frame = MarketStore(tmp_path).read()
    assert len(frame) == 10 and (frame["timestamp"].dt.hour == 0).all()
    assert MarketStore(tmp_path).provenance("BTCUSDT", "sim")["bar"] == "1d"
    assert MarketStore(tmp_path).bar("BTCUSDT", "sim") == pd.Timedelta("1D")  # what training reads
    assert len(pd.read_parquet(tmp_path / "truth.parquet")) == 10 * 24


def test_unknown_bar_is_a_usage_error(tmp_path) -> None:
    result = runner.invoke(app, ["simulate", "--store", str(tmp_path), "--bar", "2h"])
    assert result.exit_code == 2
    assert "4h" in result.output
    assert not (tmp_path / "cascades.parquet").exists()
