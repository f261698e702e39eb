"""Events -> bars: sums per side, explicit coverage, and the venue side conventions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.liquidations import events_to_bars, side_is_long

HOUR = pd.Timedelta("1h")


def _t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                [
                    "2024-01-01 00:10",
                    "2024-01-01 00:59:59.999",
                    "2024-01-01 01:00",
                    "2024-01-01 03:30",
                ],
                utc=True,
                format="ISO8601",
            ),
            "is_long": [True, False, True, True],
            "usd": [100.0, 40.0, 7.0, 5.0],
        }
    )


def test_sums_by_bar_open_and_side() -> None:
    bars = events_to_bars(_events(), HOUR)
    assert list(bars["timestamp"]) == [
        _t("2024-01-01 00:00"),
        _t("2024-01-01 01:00"),
        _t("2024-01-01 03:00"),
    ]
    assert bars["liq_long_usd"].tolist() == [100.0, 7.0, 5.0]
    assert bars["liq_short_usd"].tolist() == [40.0, 0.0, 0.0]
    assert str(bars["timestamp"].dtype) == "datetime64[us, UTC]"


def test_total_is_preserved_on_random_events() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    events = pd.DataFrame(
        {
            "timestamp": _t("2024-01-01") + pd.to_timedelta(rng.uniform(0, 86400 * 3, n), unit="s"),
            "is_long": rng.random(n) < 0.6,
            "usd": rng.exponential(1000.0, n),
        }
    )
    bars = events_to_bars(events, HOUR)
    assert bars["timestamp"].is_monotonic_increasing and bars["timestamp"].is_unique
    assert np.isclose(bars["liq_long_usd"].sum(), events.loc[events.is_long, "usd"].sum())
    assert np.isclose(bars["liq_short_usd"].sum(), events.loc[~events.is_long, "usd"].sum())


def test_without_coverage_quiet_bars_are_absent_with_coverage_zero() -> None:
    assert _t("2024-01-01 02:00") not in set(events_to_bars(_events(), HOUR)["timestamp"])
    covered = events_to_bars(
        _events(), HOUR, coverage=[(_t("2024-01-01 00:00"), _t("2024-01-01 05:00"))]
    )
    assert len(covered) == 5
    quiet = covered.set_index("timestamp").loc[[_t("2024-01-01 02:00"), _t("2024-01-01 04:00")]]
    assert (quiet == 0.0).all().all()


def test_event_outside_coverage_is_an_error() -> None:
    with pytest.raises(DataError, match=r"row 4, column 'timestamp'.*outside the stated coverage"):
        events_to_bars(_events(), HOUR, coverage=[(_t("2024-01-01"), _t("2024-01-01 02:00"))])


def test_negative_or_nan_notional_is_an_error() -> None:
    events = _events()
    events.loc[2, "usd"] = np.nan
    with pytest.raises(DataError, match=r"row 3, column 'usd'"):
        events_to_bars(events, HOUR)


def test_naive_times_are_refused() -> None:
    events = _events().assign(timestamp=lambda d: d["timestamp"].dt.tz_localize(None))
    with pytest.raises(DataError, match="timezone-aware"):
        events_to_bars(events, HOUR)


def test_side_tables_differ_by_venue() -> None:
    # The same word means the opposite on Bybit and Binance.
    assert side_is_long(pd.Series(["Buy", "Sell"]), "bybit").tolist() == [True, False]
    assert side_is_long(pd.Series(["BUY", "SELL"]), "binance").tolist() == [False, True]


def test_unknown_venue_or_label_is_refused() -> None:
    with pytest.raises(DataError, match="no liquidation side convention known for venue 'kraken'"):
        side_is_long(pd.Series(["Buy"]), "kraken")
    with pytest.raises(DataError, match=r"row 2, column 'side'.*'buy' is not one of"):
        side_is_long(pd.Series(["Buy", "buy"]), "bybit", file="f.csv")
