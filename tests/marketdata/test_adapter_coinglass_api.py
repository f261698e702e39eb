"""CoinGlass API v4 snapshots: series from the endpoint, text numbers, the forming last bar, and
the revision rule (the newer snapshot wins on the overlap, whatever the order; counts reported;
provenance keeps both), on the shared 4 h snapshots and on responses as served."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.adapters import coinglass_api
from flushcast.marketdata.ingest import ingest, read_canonical
from flushcast.marketdata.store import MarketStore

SNAPSHOTS = "FelipeODonnell__liquidity-report/data"
OLD, NEW = "20250512", "20250630"


def _btc(real_data: Path, snapshot: str) -> list[Path]:
    base = real_data / SNAPSHOTS / snapshot / "futures"
    files = [
        base / "market/api_price_ohlc_history.parquet",
        base / "liquidation/api_futures_liquidation_aggregated_coin_history_BTC.parquet",
        base / "funding_rate/api_futures_fundingRate_oi_weight_ohlc_history_BTC.parquet",
    ]
    total = base / "open_interest/api_futures_openInterest_ohlc_aggregated_history_BTC.parquet"
    return files + ([total] if total.is_file() else [])


def test_saved_snapshot_reads_text_numbers_and_drops_the_forming_bar(real_data):
    [price] = coinglass_api.read(_btc(real_data, OLD)[0], symbol="BTCUSDT")
    raw = pd.read_parquet(_btc(real_data, OLD)[0])
    assert raw["close"].dtype == object or str(raw["close"].dtype) == "str"  # text in the file
    assert len(price.data) == len(raw) - 1  # the last bar was still forming
    assert price.bar == pd.Timedelta("4h")
    assert price.as_of == pd.Timestamp(int(raw["time"].iat[-1]), unit="ms", tz="UTC")
    np.testing.assert_allclose(price.data["close"], raw["close"].astype(float).iloc[:-1])
    [kept] = coinglass_api.read(_btc(real_data, OLD)[0], symbol="BTCUSDT", keep_last=True)
    assert len(kept.data) == len(raw)
    [funding] = coinglass_api.read(_btc(real_data, OLD)[2])
    assert funding.symbol == "BTC" and funding.series == "coinglass-api/funding"
    # percent per 8 h -> fraction
    assert funding.data["funding_rate"].abs().max() < 0.003


def test_newer_snapshot_supersedes_the_older_in_either_order(real_data, tmp_path):
    forward, backward = MarketStore(tmp_path / "f"), MarketStore(tmp_path / "b")
    ingest("coinglass-api", _btc(real_data, OLD), forward, symbol="BTCUSDT")
    report = ingest("coinglass-api", _btc(real_data, NEW), forward, symbol="BTCUSDT")
    ingest("coinglass-api", _btc(real_data, NEW), backward, symbol="BTCUSDT")
    quiet = ingest("coinglass-api", _btc(real_data, OLD), backward, symbol="BTCUSDT")
    pd.testing.assert_frame_equal(forward.read(), backward.read())

    # The newer values are the ones kept on the overlap.
    frame = forward.read().set_index("timestamp")
    newest = pd.read_parquet(_btc(real_data, NEW)[1])
    newest["timestamp"] = pd.to_datetime(newest["time"], unit="ms", utc=True)
    newest = newest.set_index("timestamp").iloc[:-1]
    np.testing.assert_allclose(
        frame.loc[newest.index, "liq_long_usd"], newest["aggregated_long_liquidation_usd"]
    )
    # Older-only bars (before 2025-01-01) come from the older snapshot.
    assert frame.index[0] < pd.Timestamp("2024-12-01", tz="UTC")

    [ds] = report.datasets
    liq = next(r for r in ds.revisions if "liquidation" in r.source)
    assert liq.bars_compared > 700 and 0 < liq.bars_changed <= liq.bars_compared
    assert liq.max_relative_change > 0.01 and liq.column in ("liq_long_usd", "liq_short_usd")
    assert any("20250512" not in s and "2025-05-12" in s for s in liq.superseded)
    # Ingested older second: nothing it has replaces a newer value.
    assert all(r.bars_changed == 0 for r in quiet.datasets[0].revisions)

    provenance = forward.provenance("BTCUSDT", "aggregate")
    as_of = {s["as_of"] for s in provenance["snapshots"] if "liquidation" in s["source"]}
    assert as_of == {"2025-05-12T16:00:00+00:00", "2025-06-30T12:00:00+00:00"}
    assert len(provenance["columns"]["liq_long_usd"]) == 2
    assert provenance["revisions"] and provenance["revisions"][0]["bars_changed"] > 0


def test_reingesting_a_snapshot_changes_no_byte(real_data, tmp_path):
    store = MarketStore(tmp_path)
    ingest("coinglass-api", _btc(real_data, OLD) + _btc(real_data, NEW), store, symbol="BTCUSDT")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    ingest("coinglass-api", _btc(real_data, NEW), store, symbol="BTCUSDT")
    ingest("coinglass-api", _btc(real_data, OLD), store, symbol="BTCUSDT")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def _served(path: Path, rows: list[dict], code="0") -> Path:
    path.write_text(json.dumps({"code": code, "msg": "success", "data": rows}))
    return path


def _bars(start: str, n: int, scale: float = 1.0) -> list[dict]:
    times = pd.date_range(start, periods=n, freq="4h", tz="UTC").as_unit("ms").asi8
    return [
        {
            "time": int(t),
            "open": f"{100 + i:.1f}",
            "high": f"{101 + i:.1f}",
            "low": f"{99 + i:.1f}",
            "close": f"{100.5 + i:.1f}",
            "aggregated_long_liquidation_usd": 1000.0 * scale * (i + 1),
            "aggregated_short_liquidation_usd": 500.0 * scale,
        }
        for i, t in enumerate(times)
    ]


def test_served_json_with_replace_and_as_of(tmp_path):
    store = MarketStore(tmp_path / "store")
    price = _served(tmp_path / "api_price_ohlc_history_BTC.json", _bars("2025-01-01", 12))
    liq = _served(tmp_path / "liquidation_aggregated_history_BTC.json", _bars("2025-01-01", 12))
    ingest("coinglass-api", [price, liq], store, symbol="BTCUSDT")
    frame = store.read()
    assert len(frame) == 11 and frame["liq_long_usd"].iat[0] == 1000.0

    # An explicit as-of older than the stored snapshot: it does not supersede it.
    revised = _served(tmp_path / "liquidation_aggregated_rev_BTC.json", _bars("2025-01-01", 12, 2))
    ingest("coinglass-api", [revised], store, symbol="BTCUSDT", as_of="2024-12-31")
    assert store.read()["liq_long_usd"].iat[0] == 1000.0
    # A corrected file with --replace does, and is reported the same way.
    report = ingest("coinglass-api", [revised], store, symbol="BTCUSDT", replace=True)
    [rev] = [r for r in report.datasets[0].revisions if r.bars_changed]
    assert (rev.bars_changed, rev.bars_compared) == (11, 11)
    assert rev.max_relative_change == pytest.approx(1.0)  # doubled
    assert store.read()["liq_long_usd"].iat[0] == 2000.0


def test_different_sources_that_disagree_stay_an_error(tmp_path):
    store = MarketStore(tmp_path / "store")
    a = _served(tmp_path / "api_price_ohlc_history_BTC.json", _bars("2025-01-01", 6))
    ingest("coinglass-api", [a], store, symbol="BTCUSDT")
    frame = store.read()
    frame["close"] *= 1.02
    frame["high"] *= 1.02
    canonical = tmp_path / "mine.csv"
    frame.drop(columns=["open", "low"]).to_csv(canonical, index=False)
    with pytest.raises(DataError, match="sources disagree") as err:
        ingest("canonical", [canonical], store)
    assert err.value.file == str(canonical) and err.value.row == 2


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("api_futures_openInterest_ohlc_aggregated_stablecoin_BTC.parquet", None, "coin units"),
        ("something_BTC.json", {"code": "0", "data": []}, "pass --series"),
        (
            "api_price_ohlc_history_BTC.json",
            {"code": "40001", "msg": "bad key", "data": []},
            "40001",
        ),
        (
            "api_price_ohlc_history_BTC.json",
            {"code": "0", "data": [{"time": 1, "open": 1}]},
            "'high'",
        ),
        ("api_price_ohlc_history_ETH.json", {"code": "0", "data": []}, "not for --symbol"),
    ],
)
def test_bad_responses_are_clear_errors(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_text(json.dumps(content) if content is not None else "")
    with pytest.raises(DataError, match=problem) as err:
        coinglass_api.read(path, symbol="BTCUSDT")
    assert err.value.file == str(path)


def test_bad_number_names_the_record_and_field(tmp_path):
    rows = _bars("2025-01-01", 5)
    rows[2]["close"] = "12,5"
    path = _served(tmp_path / "api_price_ohlc_history_BTC.json", rows)
    with pytest.raises(DataError, match="'12,5'") as err:
        read_canonical("coinglass-api", [path], symbol="BTCUSDT")
    assert (err.value.row, err.value.column) == (3, "close")
