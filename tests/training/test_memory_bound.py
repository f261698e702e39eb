"""What bounds the client's memory on a large store: the feature build, the labelled rows and
the model matrix each copy the rows as few times as they can, and a horizon's rows travel to
the workers once, without their folds (README "On a cluster"); the copies change no value."""

from __future__ import annotations

import pickle
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flushcast.common.engine import Distributed, InProcess
from flushcast.features.build import build_features
from flushcast.models.matrix import from_values, model_matrix
from flushcast.simulator import simulate
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import KEYS, Dataset, join_labels, make_dataset
from flushcast.training.horizon import horizon_data
from flushcast.training.labels import LabelSpec, direction_column, flush_column, make_labels
from flushcast.training.splits import WalkForward
from flushcast.training.tasks import walk_forward

H = 12


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    return simulate("default", ["BTCUSDT", "ETHUSDT"], days=45, seed=4).frame


@pytest.fixture(scope="module")
def dataset(market: pd.DataFrame) -> Dataset:
    return make_dataset(market, LabelSpec(horizons=(H,)), runner=InProcess())


def peak_bytes(fn: Callable[[], Any]) -> tuple[Any, int]:
    """`fn()` and the most memory it held at once beyond what was held before."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        answer = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return answer, peak - before


def test_the_feature_build_holds_its_values_about_once() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "BNBUSDT"]
    many = simulate("default", symbols, days=30, seed=4).frame  # a part: a seventh of the table
    table, peak = peak_bytes(lambda: build_features(many, runner=InProcess()))
    size = len(table) * (table.shape[1] - 3) * 8  # the float columns
    # The values, one series' part and the cross-series features' columns; every part
    # gathered, then concatenated: two copies.
    assert peak < 1.7 * size
    alone = build_features(many[many["symbol"].astype(str) == "ETHUSDT"], runner=InProcess())
    mine = table[table["symbol"] == "ETHUSDT"].reset_index(drop=True)
    own = [c for c in alone.columns if alone[c].notna().any() and c not in ("symbol", "venue")]
    pd.testing.assert_frame_equal(mine[own], alone[own], check_dtype=False)


def test_labels_join_the_feature_table_without_copying_it(market: pd.DataFrame) -> None:
    features = build_features(market, runner=InProcess())
    columns = [flush_column(H), direction_column(H)]
    labels = make_labels(market, LabelSpec(horizons=(H,)))[KEYS + columns]
    labels = labels.sample(frac=1.0, random_state=0).iloc[: len(labels) - 50]  # any order, gaps
    as_text = {"symbol": "str", "venue": "str"}
    merged = features.astype(as_text).merge(labels.astype(as_text), on=KEYS, how="left")
    values = features.drop(columns=KEYS).to_numpy().nbytes
    table, peak = peak_bytes(lambda: join_labels(features, labels))
    assert peak < 0.3 * values  # the keys and the label columns; a merge copied every row
    for key in ("symbol", "venue"):
        merged[key] = merged[key].astype("category")
    pd.testing.assert_frame_equal(table, merged)
    assert table[flush_column(H)].isna().sum() >= 50


@pytest.mark.slow  # starts a cluster of processes
def test_a_shared_value_is_not_copied_on_the_way() -> None:
    from distributed import Client, LocalCluster

    X = np.random.default_rng(0).random(4_000_000)  # 32 MB
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        handle, peak = peak_bytes(lambda: Distributed(client, "test").share(X))
        assert peak < 0.1 * X.nbytes  # the scheduler (in this process) unpacked a copy
        np.testing.assert_array_equal(client.gather(handle), X)


def test_labelled_rows_are_copied_once_in_time_order(dataset: Dataset) -> None:
    rows, peak = peak_bytes(lambda: dataset.labelled(H))
    assert peak < 1.4 * rows.memory_usage(deep=True).sum()  # filtered, then sorted: two
    assert rows[flush_column(H)].notna().all()
    assert len(rows) == dataset.table[flush_column(H)].notna().sum()
    assert rows.index.equals(pd.RangeIndex(len(rows)))
    keys = pd.DataFrame({"t": rows["timestamp"], "s": rows["symbol"].astype(str)})
    assert keys.sort_values(["t", "s"]).index.equals(rows.index)  # time, then symbol


def test_the_model_matrix_is_filled_in_place_with_the_service_layout(dataset: Dataset) -> None:
    rows = dataset.labelled(H)
    known = dataset.symbols()
    X, peak = peak_bytes(lambda: model_matrix(rows, dataset.features, known))
    assert peak < 1.4 * X.nbytes  # every feature value, then the matrix: two
    served = from_values(
        rows[dataset.features].to_numpy(dtype="float64"),
        rows["symbol"].astype(str).to_numpy(),
        known,
    )
    np.testing.assert_array_equal(X, served)


def test_one_horizon_copies_its_feature_values_once(dataset: Dataset) -> None:
    data, peak = peak_bytes(lambda: horizon_data(dataset, H))
    assert peak < 1.6 * data.X.nbytes  # the matrix, the keys and one column at a time
    rows = dataset.labelled(H)  # what it used to copy whole first: the same rows, same values
    np.testing.assert_array_equal(data.X, model_matrix(rows, dataset.features, dataset.symbols()))
    pd.testing.assert_frame_equal(data.keys, rows[["timestamp", "symbol", "venue"]])
    np.testing.assert_array_equal(data.y, rows[flush_column(H)].to_numpy(dtype="float64"))


MANY_FOLDS = WalkForward(retrain_every_hours=8, min_train_hours=96)
"""Refits every 8 h after four days: some 40 folds of the market's 17 labelled days (two years
have 97 weekly ones)."""


class _Stop(Exception):
    pass


class Recording(InProcess):
    """Records the pickled size of everything shared; stops at the first task."""

    def __init__(self) -> None:
        self.shared: list[int] = []

    def share(self, value: Any) -> Any:
        self.shared.append(len(pickle.dumps(value, protocol=5)))
        return value

    def run(self, fn: Any, calls: Any, on_done: Any = None) -> list[Any]:
        raise _Stop


def test_a_horizons_rows_travel_without_their_folds(dataset: Dataset) -> None:
    config = TrainingConfig(label=dataset.label, walk_forward=MANY_FOLDS)
    data = horizon_data(dataset, H)
    assert len(data.folds(config)) >= 30  # else the folds would weigh little anyway
    alone = len(pickle.dumps(data, protocol=5))  # the folds made: not sent with the rows
    assert alone < 1.01 * len(pickle.dumps(horizon_data(dataset, H), protocol=5))
    runner = Recording()
    with pytest.raises(_Stop):
        walk_forward(dataset, config, runner)
    assert max(runner.shared) < 1.01 * alone  # each fold's positions sent: 1.25 times


def test_folds_made_where_the_rows_are_are_the_same_and_share_one_array(dataset: Dataset) -> None:
    config = TrainingConfig(label=dataset.label, walk_forward=MANY_FOLDS)
    data = horizon_data(dataset, H)
    there = pickle.loads(pickle.dumps(data, protocol=5)).folds(config)
    here = data.folds(config)
    assert len(there) == len(here) >= 30
    for mine, theirs in zip(here, there, strict=True):
        np.testing.assert_array_equal(mine.train, theirs.train)
        np.testing.assert_array_equal(mine.test, theirs.test)
        assert (mine.block, mine.train_end, mine.test_end) == (
            theirs.block,
            theirs.train_end,
            theirs.test_end,
        )
    assert all(np.shares_memory(fold.train, there[-1].train) for fold in there)
