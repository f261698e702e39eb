"""The service called in-process: bars and feature rows, explanations, batches, model info."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from flushcast.models.bundle import BundleMismatch
from flushcast.serving.endpoints import ServedPredictor as Predictor
from flushcast.serving.errors import InputError
from flushcast.serving.requests import ExplainRequest, PredictBatchRequest, PredictRequest
from tests.serving.payloads import bars, feature_row
from tests.serving.sandbox import SANDBOX_IDENTITY


@pytest.fixture(scope="module")
def predictor(service) -> Predictor:
    return service.predictor


@pytest.fixture(scope="module")
def lookback(predictor: Predictor) -> int:
    return predictor.bundle.max_lookback


def _row_of(table: pd.DataFrame, symbol: str, skip_last: int = 0) -> int:
    positions = np.flatnonzero(table["symbol"].astype(str).to_numpy() == symbol)
    return int(positions[len(positions) - 1 - skip_last])


def test_bars_give_the_training_features(
    predictor: Predictor, market: pd.DataFrame, table: pd.DataFrame, lookback: int
) -> None:
    """Serving builds features with the training code, from the lookback window only.

    Equal to rounding: rolling statistics over a window that starts elsewhere differ in the
    last digits (about 1e-8 relative), which can move a value across a tree split.
    """
    request = PredictRequest(
        symbol="ETHUSDT",
        venue="sim",
        bars=bars(market, "ETHUSDT", lookback, skip_last=3),
        context=[
            {"symbol": "BTCUSDT", "venue": "sim", "bars": bars(market, "BTCUSDT", lookback, 3)}
        ],
    )
    rows = predictor.rows(request)
    i = _row_of(table, "ETHUSDT", skip_last=3)
    assert rows.as_of == [table["timestamp"].iloc[i]]
    expected = table.iloc[i][predictor.bundle.features].to_numpy(dtype="float64")
    np.testing.assert_allclose(rows.values[0], expected, rtol=1e-6, atol=1e-9)
    assert np.isnan(rows.values[0]).sum() < len(expected) // 4


def test_feature_row_gives_the_bundle_prediction(
    service, predictor: Predictor, table: pd.DataFrame
) -> None:
    i = _row_of(table, "ETHUSDT", skip_last=3)
    request = PredictRequest(symbol="ETHUSDT", venue="sim", features=feature_row(table, i))
    served = service.to_sync.predict(request)
    expected = predictor.bundle.predict(table.iloc[[i]])
    assert served.model == predictor.identity
    for horizon in served.horizons:
        h = horizon.horizon_hours
        assert horizon.p_flush == pytest.approx(expected[f"p_flush_{h}h"].iloc[0], rel=1e-12)
        assert horizon.p_long_flush == pytest.approx(expected[f"p_long_flush_{h}h"].iloc[0])
        assert horizon.p_long_flush + horizon.p_short_squeeze == pytest.approx(1.0)
        assert horizon.relative_risk == pytest.approx(horizon.p_flush / horizon.base_rate)


def test_explanation_top_k_is_ordered_and_adds_up(service, table: pd.DataFrame) -> None:
    request = PredictRequest(symbol="BTCUSDT", features=feature_row(table, 100), top_k=7)
    response = service.to_sync.predict(request)
    full = service.to_sync.explain(
        ExplainRequest(symbol="BTCUSDT", features=feature_row(table, 100))
    )
    for horizon, explained in zip(response.horizons, full.horizons, strict=True):
        top = horizon.explanation.top
        assert len(top) == 7
        sizes = [abs(c.contribution) for c in top]
        assert sizes == sorted(sizes, reverse=True)
        everything = {c.feature: c.contribution for c in explained.contributions}
        assert max(map(abs, everything.values())) == pytest.approx(sizes[0])
        assert explained.base_value + sum(everything.values()) == pytest.approx(explained.log_odds)
        assert explained.p_flush == pytest.approx(horizon.p_flush)
        assert explained.p_uncalibrated == pytest.approx(1 / (1 + math.exp(-explained.log_odds)))
        assert all(c.description for c in top)
        symbol = next(c for c in explained.contributions if c.feature == "symbol")
        assert symbol.value == "BTCUSDT"


def test_missing_liquidation_data_is_warned_about(
    service, market: pd.DataFrame, lookback: int
) -> None:
    window = bars(market, "BTCUSDT", lookback)
    for bar in window:
        bar["liq_long_usd"] = bar["liq_short_usd"] = None
    response = service.to_sync.predict(PredictRequest(symbol="BTCUSDT", venue="sim", bars=window))
    text = " | ".join(response.warnings)
    assert "no liq_long_usd, liq_short_usd in the bars of BTCUSDT" in text
    assert "liq_24h_over_oi" in text
    complete = service.to_sync.predict(
        PredictRequest(symbol="BTCUSDT", venue="sim", bars=bars(market, "BTCUSDT", lookback))
    )
    assert "liq_24h_over_oi" not in " | ".join(complete.warnings)


def test_alt_coin_without_btc_context_is_warned_about(
    service, market: pd.DataFrame, lookback: int
) -> None:
    alone = service.to_sync.predict(
        PredictRequest(symbol="ETHUSDT", venue="sim", bars=bars(market, "ETHUSDT", lookback))
    )
    assert any("add BTC bars as `context`" in w for w in alone.warnings)
    assert any("btc_return_last_bar" in w for w in alone.warnings)


def test_unknown_symbol_is_served_with_a_warning(service, table: pd.DataFrame) -> None:
    response = service.to_sync.predict(
        PredictRequest(symbol="DOGEUSDT", features=feature_row(table, 5))
    )
    assert any("DOGEUSDT was not in the training data" in w for w in response.warnings)
    assert 0 < response.horizons[0].p_flush < 1


def test_batch_of_series_and_bars_equals_single_predictions(
    service, market: pd.DataFrame, lookback: int
) -> None:
    series = [
        {"symbol": s, "venue": "sim", "bars": bars(market, s, lookback + 2)}
        for s in ("BTCUSDT", "ETHUSDT")
    ]
    batch = service.to_sync.predict_batch(PredictBatchRequest(series=series, last_bars=3))
    assert [(p.symbol, p.as_of) for p in batch.predictions][:3] == [
        ("BTCUSDT", pd.Timestamp(b["timestamp"])) for b in series[0]["bars"][-3:]
    ]
    # The same window start as the batch's, so rolling features agree to the last digit.
    btc = {"symbol": "BTCUSDT", "venue": "sim", "bars": bars(market, "BTCUSDT", lookback + 1, 1)}
    single = service.to_sync.predict(
        PredictRequest(
            symbol="ETHUSDT",
            venue="sim",
            bars=bars(market, "ETHUSDT", lookback + 1, skip_last=1),
            context=[btc],
        )
    )
    match = batch.predictions[4]
    assert (match.symbol, match.as_of) == ("ETHUSDT", single.as_of)
    assert [h.p_flush for h in match.horizons] == [h.p_flush for h in single.horizons]
    assert all(h.explanation is None for p in batch.predictions for h in p.horizons)


def test_batch_table_equals_feature_row_predictions(service, table: pd.DataFrame) -> None:
    picked = [3, 400, 2000]
    columns = list(feature_row(table, 0))
    rows = [
        {"symbol": str(table["symbol"].iloc[i]), "values": list(feature_row(table, i).values())}
        for i in picked
    ]
    batch = service.to_sync.predict_batch(
        PredictBatchRequest(
            table={
                "columns": columns[::-1],
                "rows": [{**r, "values": r["values"][::-1]} for r in rows],
            },
            explain=True,
            top_k=2,
        )
    )
    for i, prediction in zip(picked, batch.predictions, strict=True):
        single = service.to_sync.predict(
            PredictRequest(
                symbol=str(table["symbol"].iloc[i]), features=feature_row(table, i), top_k=2
            )
        )
        assert [h.model_dump() for h in prediction.horizons] == [
            h.model_dump() for h in single.horizons
        ]


def test_model_info_describes_the_bundle(service, predictor: Predictor) -> None:
    info = service.model_info()
    bundle = predictor.bundle
    assert [f.name for f in info.features] == bundle.features
    assert {f.name: f.lookback for f in info.features} == bundle.lookbacks
    assert [h.horizon_hours for h in info.horizons] == sorted(bundle.horizons)
    assert info.bars_needed == bundle.max_lookback
    assert info.label == bundle.label and info.training == bundle.training
    assert info.model.model_dump() == {**SANDBOX_IDENTITY, "promoted": True}
    assert info.bar_hours == bundle.bar_hours


def test_explain_refuses_an_unknown_horizon(service, table: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="no 7 h model"):
        service.predictor.explain(
            ExplainRequest(symbol="BTCUSDT", features=feature_row(table, 0), horizon=7)
        )


def test_startup_refuses_a_bundle_the_feature_code_disagrees_with(predictor: Predictor) -> None:
    bundle = predictor.bundle
    changed = dataclasses.replace(bundle, lookbacks={**bundle.lookbacks, bundle.features[0]: 999})
    with pytest.raises(BundleMismatch, match="lookbacks changed"):
        Predictor(changed, predictor.identity)
    gone = dataclasses.replace(bundle, features=[*bundle.features, "retired_feature"])
    with pytest.raises(BundleMismatch, match="retired_feature"):
        Predictor(gone, predictor.identity)


def test_omitted_features_are_missing_and_listed(service, table: pd.DataFrame) -> None:
    row = feature_row(table, 3000)
    some = {k: row[k] for k in ("funding_bp", "oi_z_30d", "return_24h")}
    nulls = {k: (v if k in some else None) for k, v in row.items()}
    omitted = service.to_sync.predict(PredictRequest(symbol="BTCUSDT", features=some))
    explicit = service.to_sync.predict(PredictRequest(symbol="BTCUSDT", features=nulls))
    assert omitted.model_dump() == explicit.model_dump()
    missing = next(w for w in omitted.warnings if "features missing" in w)
    assert "liq_z_30d" in missing and "oi_z_30d" not in missing
    assert any("reads them as 0" in w for w in omitted.warnings)
    table_form = service.to_sync.predict_batch(
        PredictBatchRequest(
            table={
                "columns": list(some),
                "rows": [{"symbol": "BTCUSDT", "values": list(some.values())}],
            },
            explain=True,
        )
    )
    assert table_form.predictions[0].model_dump() == {
        k: v for k, v in omitted.model_dump().items() if k != "model"
    }


def test_bars_carrying_their_venue_name_it_when_the_request_does_not(
    client, market: pd.DataFrame, lookback: int
) -> None:
    """Canonical frame records carry `venue`: a request that names none takes theirs (it was
    refused as contradicting an invented 'unspecified'); one that names another is refused."""
    window = [{**bar, "venue": "aggregate"} for bar in bars(market, "BTCUSDT", lookback)]
    answer = client.post("/predict", json={"symbol": "BTCUSDT", "bars": window, "explain": False})
    assert answer.status_code == 200, answer.text
    assert answer.json()["venue"] == "aggregate"
    named = {"symbol": "BTCUSDT", "venue": "binance", "bars": window, "explain": False}
    refused = client.post("/predict", json=named)
    assert refused.status_code == 400 and "bars[0].venue" in refused.text
    plain = bars(market, "BTCUSDT", lookback)
    assert PredictRequest(symbol="BTCUSDT", bars=plain).venue == "unspecified"


def test_breadth_over_fewer_symbols_and_a_calendar_that_ended_are_warned_about(
    predictor: Predictor, market: pd.DataFrame, lookback: int, monkeypatch
) -> None:
    from flushcast.features import events
    from flushcast.serving import inputs
    from flushcast.serving.requests import Bar

    sent = [Bar(**b) for b in bars(market, "ETHUSDT", lookback)]
    series = [inputs.SeriesInput((), "ETHUSDT", "sim", sent)]
    wanted = ["breadth_oi_change_24h", "event_within_24h", "return_24h"]
    every = ("BTCUSDT", "ETHUSDT")
    (notes,) = inputs.from_series(series, wanted, lookback, market=every).notes
    assert any("add BTCUSDT as `context`" in note for note in notes)
    assert not any("events calendar" in note for note in notes)  # the sandbox's bars are covered
    last = pd.Timestamp(sent[-1].timestamp)
    monkeypatch.setattr(events, "covered_until", lambda: last)
    (notes,) = inputs.from_series(series, wanted, lookback, market=("ETHUSDT",)).notes
    assert [n for n in notes if "events calendar ends at" in n] and not any(
        "context" in n for n in notes
    )
    (notes,) = inputs.from_series(series, ["return_24h"], lookback, market=every).notes
    assert not notes or not any("calendar" in n or "breadth" in n for n in notes)
    # Each symbol against the others: read over the series sent too, so warned the same way.
    (notes,) = inputs.from_series(series, ["rel_return_24h"], lookback, market=every).notes
    assert any("add BTCUSDT as `context`" in note for note in notes)
    # BTC's and ETH's copied state (`btc_liq_surprise_24h`) is read from the series sent too.
    (notes,) = inputs.from_series(series, ["btc_liq_surprise_24h"], lookback, market=every).notes
    assert any("add BTCUSDT as `context`" in note for note in notes)


def test_bars_give_the_demeaned_training_features(
    market: pd.DataFrame, table: pd.DataFrame, lookback: int
) -> None:
    """A model that learnt the demean family (each feature against its own 30-day mean) is
    served the values it learnt from: the request's lookback window holds the 30 days."""
    from flushcast.features.demean import SOURCES, name_of
    from flushcast.serving import inputs
    from flushcast.serving.requests import Bar

    wanted = [name_of(source) for source in SOURCES]
    sent = [Bar(**b) for b in bars(market, "ETHUSDT", lookback, skip_last=3)]
    rows = inputs.from_series([inputs.SeriesInput((), "ETHUSDT", "sim", sent)], wanted, lookback)
    expected = table.iloc[_row_of(table, "ETHUSDT", skip_last=3)][wanted].to_numpy("float64")
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(rows.values[0], expected, rtol=1e-6, atol=1e-9)
