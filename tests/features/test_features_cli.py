"""`flushcast features build` and `flushcast features list` end to end on a temporary store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.features import names
from flushcast.marketdata.resample import to_bar
from flushcast.marketdata.schema import VALUE_COLUMNS, conform
from flushcast.marketdata.store import MarketStore
from tests.features.conftest import synthetic_frame

runner = CliRunner()


def test_build_writes_the_feature_table(tmp_path: Path) -> None:
    store = tmp_path / "store"
    MarketStore(store).write(synthetic_frame(("BTCUSDT", "ETHUSDT"), bars=100))
    out = tmp_path / "features.parquet"
    result = runner.invoke(app, ["features", "build", "--store", str(store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert len(table) == 200
    assert list(table.columns) == ["timestamp", "symbol", "venue", *names()]
    assert not list(tmp_path.glob(".features.parquet*"))


def test_build_reads_the_stores_bar_size(tmp_path: Path) -> None:
    store, day = tmp_path / "store", pd.Timedelta("1D")
    hourly = synthetic_frame(bars=24 * 40)
    daily = to_bar(hourly[["timestamp", *VALUE_COLUMNS]], bar=day)[0]
    MarketStore(store).write(conform(daily.assign(symbol="BTCUSDT", venue="binance")), bar=day)
    out = tmp_path / "features.parquet"
    result = runner.invoke(app, ["features", "build", "--store", str(store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    # Built on daily bars: the day's change is the last bar's, a 4 h window does not exist.
    oi = daily["oi_usd"].to_numpy()
    np.testing.assert_allclose(table["oi_change_24h"].iloc[1:], 100 * (oi[1:] / oi[:-1] - 1))
    assert table[["oi_change_4h", "hour_of_day"]].isna().all().all()


def test_build_on_an_empty_store_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["features", "build", "--store", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 2
    assert "no market data" in result.output
    assert not out.exists()


def test_list_prints_the_registry() -> None:
    result = runner.invoke(app, ["features", "list", "--family", "heatmap"])
    assert result.exit_code == 0, result.output
    assert "heat_long_5pct" in result.output
    assert "funding_z_30d" not in result.output
    hours = runner.invoke(app, ["features", "list", "--family", "context"])
    (line,) = [row for row in hours.output.splitlines() if "hour_of_day" in row]
    assert line.rstrip(" │").endswith("1d")  # where it is missing
