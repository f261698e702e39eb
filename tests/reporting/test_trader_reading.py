"""The report as a trader reads it: a side named only when the model is fairly sure, no band
badge on a forecast made mostly without its inputs, figures that agree with the band."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.forecast.answer import HorizonForecast as HorizonPrediction
from flushcast.forecast.predictor import Predictor
from flushcast.models.bundle import Bundle
from flushcast.reporting.build import _direction, report_context


def _prediction(horizon: int, p_long: float) -> HorizonPrediction:
    return HorizonPrediction(
        horizon_hours=horizon,
        p_flush=0.1,
        risk_band="high",
        relative_risk=2.0,
        base_rate=0.05,
        p_long_flush=p_long,
        p_short_squeeze=1 - p_long,
    )


@pytest.mark.parametrize("p_long", [0.51, 0.54, 0.46])
def test_a_near_coin_flip_is_not_stated_as_a_call(bundle: Bundle, p_long: float) -> None:
    horizon = next(h for h, m in bundle.horizons.items() if m.direction is not None)
    text = _direction(bundle, _prediction(horizon, p_long))
    assert text.startswith("no clear side") and "price" not in text


def test_a_confident_side_is_named(bundle: Bundle) -> None:
    horizon = next(h for h, m in bundle.horizons.items() if m.direction is not None)
    assert _direction(bundle, _prediction(horizon, 0.72)).startswith("longs flushed, price down")
    assert _direction(bundle, _prediction(horizon, 0.2)).startswith("shorts squeezed, price up")


def test_no_band_badge_when_most_inputs_are_missing(
    predictor: Predictor, market: pd.DataFrame
) -> None:
    bare = market.assign(
        **{c: np.nan for c in ("oi_usd", "funding_rate", "liq_long_usd", "liq_short_usd")},
        **{c: np.nan for c in ("volume_usd", "taker_buy_volume_usd", "long_short_ratio")},
    )
    context = report_context(predictor, bare, "BTCUSDT")
    assert all(h["band"] is None for h in context["headline"])
    assert "inputs are missing, so no risk band is shown" in context["notes"][0]
    full = report_context(predictor, market, "BTCUSDT")
    assert all(h["band"] in ("low", "elevated", "high", "extreme") for h in full["headline"])
    for h in full["headline"]:
        assert h["relative_risk"] == f"{float(h['relative_risk']):.2f}"  # never "1.0" at 1.045
    assert full["bands"] == "low below 1.5×, elevated from 1.5×, high from 3×, extreme from 6×"
