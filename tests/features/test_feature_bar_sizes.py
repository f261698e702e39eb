"""Features declare hours, not bars: a 1 h series and its 4 h aggregation agree where they can,
and a window the bars cannot hold is missing rather than another window under its name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.features.build import build_features
from flushcast.features.registry import max_lookback, missing_at
from flushcast.marketdata.resample import to_bar
from flushcast.marketdata.schema import VALUE_COLUMNS, conform
from flushcast.simulator import simulate
from tests.features.conftest import check_bar_size

FOUR = pd.Timedelta(hours=4)
DAY = pd.Timedelta(days=1)
SHORTER_THAN_A_DAY = (
    "oi_change_4h",
    "return_4h",
    "liq_4h_over_oi",
    "oi_quadrant_4h",
    "liq_surprise_4h",
    "liq_surprise_12h",
    "event_within_4h",
    "event_within_12h",
    "bb_width_pctile_30d",  # its Bollinger band spans 20 hours
)
"""Windows under a day: at daily bars each would hold the one-day value under its name."""
SAME_AT_EVERY = {DAY: ("hour_of_day", "hours_to_funding")}
"""Clock features that cannot change from one bar to the next at that bar size."""
LAST_BAR_TWINS = {
    FOUR: {
        "oi_change_last_bar": "oi_change_4h",
        "return_last_bar": "return_4h",
        "liq_last_bar_over_oi": "liq_4h_over_oi",
    },
    DAY: {
        "oi_change_last_bar": "oi_change_24h",
        "return_last_bar": "return_24h",
        "liq_last_bar_over_oi": "liq_24h_over_oi",
        "liq_imbalance_last_bar": "liq_imbalance_24h",
        "btc_return_last_bar": "btc_return_24h",
    },
}
"""Where a named window is one bar, the `_last_bar` feature would repeat it: it is the one left
out (the named one means the same span at every bar size)."""
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


def _at(hourly: pd.DataFrame, bar: pd.Timedelta) -> pd.DataFrame:
    if bar == pd.Timedelta(hours=1):
        return hourly
    parts = []
    for (symbol, venue), part in hourly.groupby(["symbol", "venue"], observed=True):
        bars, _ = to_bar(part[["timestamp", *VALUE_COLUMNS]], bar=bar)
        parts.append(bars.assign(symbol=symbol, venue=venue))
    return conform(pd.concat(parts, ignore_index=True))


def test_nothing_is_left_out_at_the_default_bar():
    assert missing_at(pd.Timedelta(hours=1)) == ()


@pytest.mark.parametrize("bar", [pd.Timedelta(hours=1), FOUR, DAY], ids=["1h", "4h", "1d"])
def test_windows_the_bars_cannot_hold_are_missing(hourly, bar):
    expected = {*LAST_BAR_TWINS.get(bar, {}), *SAME_AT_EVERY.get(bar, ())}
    if bar == DAY:
        expected |= set(SHORTER_THAN_A_DAY)
    assert expected <= set(missing_at(bar))
    frame = _at(hourly, bar)
    table = build_features(frame, bar=bar)
    check_bar_size(table, bar)
    # The named window holds the one-bar change, and the longer windows stay longer.
    for named in LAST_BAR_TWINS.get(bar, {}).values():
        assert table[named].notna().mean() > 0.8, named
    btc = table[table["symbol"] == "BTCUSDT"]
    oi = frame.loc[frame["symbol"] == "BTCUSDT", "oi_usd"].to_numpy()
    one_bar = 100 * (oi[1:] / oi[:-1] - 1)
    per_day = round(DAY / bar)
    day_change = 100 * (oi[per_day:] / oi[:-per_day] - 1)
    np.testing.assert_allclose(btc["oi_change_24h"].to_numpy()[per_day:], day_change)
    if bar != DAY:  # below a day the 24 h change is not the last bar's
        shorter = "oi_change_4h" if bar == FOUR else "oi_change_last_bar"
        np.testing.assert_allclose(btc[shorter].to_numpy()[1:], one_bar)
        assert not np.allclose(day_change, one_bar[per_day - 1 :])
