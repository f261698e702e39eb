"""What bounds the client's memory on a large store: the feature build, the labelled rows and
the model matrix each copy the rows as few times as they can (README "On a cluster"); the
copies change no value."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flushcast.common.engine import InProcess
from flushcast.features.build import build_features
from flushcast.models.matrix import from_values, model_matrix
from flushcast.simulator import simulate
from flushcast.training.dataset import Dataset, make_dataset
from flushcast.training.horizon import horizon_data
from flushcast.training.labels import LabelSpec, flush_column

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


def test_the_feature_build_holds_under_three_copies_of_its_table(market: pd.DataFrame) -> None:
    table, peak = peak_bytes(lambda: build_features(market, runner=InProcess()))
    size = len(table) * (table.shape[1] - 3) * 8  # the float columns
    assert peak < 3 * size  # parts, their concatenation and a copy of it: four


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


def test_one_horizon_holds_under_three_copies_of_its_rows(dataset: Dataset) -> None:
    data, peak = peak_bytes(lambda: horizon_data(dataset, H))
    assert peak < 2.6 * data.X.nbytes  # the rows, every feature value, the matrix: three
