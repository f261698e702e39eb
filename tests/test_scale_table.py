"""The scale benchmark's market copies and CPU accounting (benchmarks/scale_table.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.bench_training import default_recipe
from benchmarks.measure import LoadSampler, cpu_s, cpu_spent, worker_cpu_s
from benchmarks.scale_table import cpu_split, market, row
from flushcast.common.engine import Distributed, InProcess
from flushcast.features.registry import without_families
from flushcast.simulator import simulate
from flushcast.training.dataset import make_dataset
from flushcast.training.labels import LabelSpec


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return simulate("default", ["BTCUSDT", "ETHUSDT", "SOLUSDT"], days=3, seed=5).frame


def test_market_copies_are_distinct_series_of_the_same_bars(base: pd.DataFrame) -> None:
    frame = market(7, base)
    names = frame["symbol"].unique()
    assert len(names) == 7 and "BTCUSDT" in names
    per_series = frame.groupby("symbol").size()
    assert (per_series == len(base) // 3).all()  # whole series, none merged into another
    btc = base[base["symbol"].astype(str) == "BTCUSDT"].drop(columns="symbol")
    copy = frame[frame["symbol"] == "BTC1USDT"].drop(columns="symbol")
    pd.testing.assert_frame_equal(copy.reset_index(drop=True), btc.reset_index(drop=True))


def test_market_keeps_the_context_series_when_trimmed(base: pd.DataFrame) -> None:
    frame = market(2, base)
    assert set(frame["symbol"]) == {"BTCUSDT", "ETHUSDT"}


def test_the_table_measures_the_default_recipes_families(base: pd.DataFrame) -> None:
    dataset = make_dataset(base, LabelSpec(horizons=(12,)))
    every = list(dataset.features)
    config = default_recipe(dataset)
    assert config.features.exclude_families  # else this test proves nothing
    assert dataset.features == without_families(config.features.exclude_families, every)
    assert len(dataset.features) < len(every)


def busy(n: int) -> int:
    return sum(i * i for i in range(n))


def test_cpu_seconds_count_work_not_waiting() -> None:
    before = cpu_s()
    busy(2_000_000)
    assert cpu_s() - before > 0.01
    with LoadSampler(every_s=0.01) as load:
        pass
    assert len(load.samples) >= 2 and "mean" in load.summary()


def test_cpu_spent_is_per_worker_and_counts_a_joined_worker_whole() -> None:
    spent = cpu_spent({"a": 10.0, "b": 5.0}, {"a": 12.5, "b": 9.0, "c": 1.0})
    assert spent == {"a": 2.5, "b": 4.0, "c": 1.0}


def test_in_process_has_no_workers_to_count() -> None:
    assert worker_cpu_s(InProcess()) == {}


def test_cpu_split_reads_every_worker_of_a_cluster() -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        runner = Distributed(client, "test")
        answer, client_cpu, workers = cpu_split(
            runner, lambda: runner.run(busy, [(300_000,), (300_000,)])
        )
        assert answer == [busy(300_000)] * 2
        assert sorted(workers) == sorted(client.scheduler_info()["workers"])
        assert all(s > 0 for s in workers.values()) and client_cpu > 0


def test_the_table_row_sums_the_workers_cpu() -> None:
    figures = {
        "symbols": 30,
        "rows": 525_600,
        "horizons": "12",
        "where": "local (2 workers)",
        "folds": 97,
        "inputs": 68,
        "features": {"wall_s": 20.4},
        "walk_forward": {
            "wall_s": 900.2,
            "cpu_client_s": 40.0,
            "cpu_workers_s": {"tcp://a": 600.4, "tcp://b": 580.3},
        },
        "cpu_scheduler_s": None,
        "peak_mb": {"client": 1935.0, "workers": [1238.0, 1310.0]},
        "load": "2.0-5.0 (mean 3.1)",
    }
    line = row(figures)
    assert line.startswith("| 30 | 525,600 | 68 | 12 |")
    assert "| 40 / 600 + 580 = 1181 |" in line
    assert "workers 1,238, 1,310 MB" in line
    figures["cpu_scheduler_s"] = 12.0
    assert "= 1181; scheduler 12 |" in row(figures)
    figures["walk_forward"]["cpu_workers_s"] = {}
    assert "| 40 / none; scheduler 12 |" in row(figures)
