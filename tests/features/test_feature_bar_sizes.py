"""Features declare hours, not bars: a 1 h series and its 4 h aggregation agree where they can."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.registry import max_lookback
from marketdata.resample import to_bar
from marketdata.schema import VALUE_COLUMNS, conform
from simulator import simulate

FOUR = pd.Timedelta(hours=4)
SAME_SPAN = (
    "return_24h",
    "dist_high_24h",
    "dist_low_24h",
    "dist_high_7d",
    "dist_low_7d",
    "liq_24h_over_oi",
    "liq_imbalance_24h",
    "oi_change_24h",
    "oi_change_72h",
    "funding_bp",
    "funding_change_24h",
)
"""Features of a span's sums, extremes, last values or changes: the same at any bar that tiles
the span. (Rolling medians, standard deviations and percentiles sample the span differently.)"""


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return simulate("default", ["BTCUSDT", "ETHUSDT"], days=45, seed=5).frame


def _four_hourly(hourly: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for (symbol, venue), part in hourly.groupby(["symbol", "venue"], observed=True):
        bars, dropped = to_bar(part[["timestamp", *VALUE_COLUMNS]], bar=FOUR)
        assert dropped == 0
        parts.append(bars.assign(symbol=symbol, venue=venue))
    return conform(pd.concat(parts, ignore_index=True))


def test_span_features_agree_between_hourly_and_four_hourly_bars(hourly):
    one = build_features(hourly)
    four = build_features(_four_hourly(hourly), bar=FOUR)
    # A 4 h bar opening at T closes with the 1 h bar opening at T + 3 h.
    one = one.assign(timestamp=one["timestamp"] - pd.Timedelta(hours=3))
    keys = ["timestamp", "symbol", "venue"]
    merged = four.astype({"symbol": str, "venue": str}).merge(
        one.astype({"symbol": str, "venue": str}), on=keys, suffixes=("_4h", "_1h")
    )
    assert len(merged) == len(four)
    for name in SAME_SPAN:
        a, b = merged[f"{name}_4h"].to_numpy(), merged[f"{name}_1h"].to_numpy()
        both = np.isfinite(a) & np.isfinite(b)
        assert both.sum() > 150, name
        np.testing.assert_allclose(a[both], b[both], rtol=1e-9, atol=1e-9, err_msg=name)


def test_lookbacks_in_bars_follow_the_bar_size():
    hourly = max_lookback()
    assert max_lookback(FOUR) == pytest.approx(hourly / 4, abs=2)
    assert max_lookback(pd.Timedelta(days=1)) <= hourly / 24 + 2
    assert max_lookback(pd.Timedelta(minutes=1)) >= 60 * (hourly - 1)
