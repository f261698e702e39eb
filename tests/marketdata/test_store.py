"""The store keeps one dataset per (symbol, venue) and never half-writes."""

from __future__ import annotations

import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.store import MarketStore

from .synthetic import bars


def _snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_round_trip_keeps_values_dtypes_and_provenance(tmp_path):
    store = MarketStore(tmp_path)
    frame = pd.concat([bars(30), bars(30, symbol="ETHUSDT", seed=1)], ignore_index=True)
    store.write(frame, {("BTCUSDT", "binance"): {"columns": {"close": ["a.csv"]}}})
    assert [(d.symbol, d.venue) for d in store.datasets()] == [
        ("BTCUSDT", "binance"),
        ("ETHUSDT", "binance"),
    ]
    back = store.read(["BTCUSDT"])
    pd.testing.assert_frame_equal(back, bars(30), check_categorical=False, check_exact=True)
    assert str(back["timestamp"].dtype) == "datetime64[us, UTC]"
    assert store.provenance("BTCUSDT", "binance") == {"columns": {"close": ["a.csv"]}}


def test_invalid_frame_leaves_store_untouched(tmp_path):
    store = MarketStore(tmp_path)
    store.write(bars(10))
    before = _snapshot(tmp_path)
    good_eth = bars(10, symbol="ETHUSDT")
    bad_btc = bars(10, seed=3)
    bad_btc.loc[4, "close"] = -1.0
    with pytest.raises(DataError, match="close"):
        store.write(pd.concat([good_eth, bad_btc], ignore_index=True))
    assert _snapshot(tmp_path) == before


def test_failure_while_staging_leaves_no_partial_files(tmp_path, monkeypatch):
    store = MarketStore(tmp_path)
    store.write(bars(10))
    before = _snapshot(tmp_path)
    import pyarrow.parquet as pq

    real_write = pq.write_table
    calls = []

    def write_then_fail(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_then_fail)
    frame = pd.concat([bars(12, seed=5), bars(12, symbol="ETHUSDT")], ignore_index=True)
    with pytest.raises(DataError, match="cannot write the store: disk full; nothing was changed"):
        store.write(frame)
    assert len(calls) == 2
    assert _snapshot(tmp_path) == before
