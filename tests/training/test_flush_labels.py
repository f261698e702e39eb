"""Flush labels: a hand-computed case, no future in the threshold, gaps, the explicit proxy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.marketdata.schema import conform
from flushcast.training.labels import (
    LabelSpec,
    direction_column,
    flush_column,
    make_labels,
    move_ratio_column,
    move_side_column,
)

# H = 2, threshold = 2 × median of the last 4 two-bar sums (at least 3), σ over 3 returns, k = 1.
TINY = LabelSpec(
    horizons=(2,),
    m=2.0,
    m_decay=0.0,
    scale="usd",
    k=1.0,
    median_window_hours=4,
    min_trailing_hours=3,
    vol_window_hours=3,
)


def _bars(symbol: str, close, high, low, liq_long, liq_short, hours=None) -> pd.DataFrame:
    n = len(close)
    hours = np.arange(n) if hours is None else np.asarray(hours)
    return pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2024-08-01", tz="UTC") + pd.to_timedelta(hours, "h"),
            "symbol": symbol,
            "venue": "binance",
            "open": close,
            "high": high,
            "low": low,
            "close": close,
            "liq_long_usd": liq_long,
            "liq_short_usd": liq_short,
        }
    )


def _tiny_frame() -> pd.DataFrame:
    """Three symbols on 12 bars: calm alternating 100/101 closes, 1 + 1 USD liquidated per bar.

    Every two-bar sum is 4, so the threshold is 2 × 4 = 8; every calm σ is that of returns
    (a, -a, a) with a = ln 1.01, i.e. 2a/√3, so the price needs k·σ·√2 = 0.01625.
    At bar 8 each symbol has a burst (sum 12 for the windows of t = 6 and 7):
    DOWN: longs liquidated (10) and a fall to low 97 -> long_flush at t = 6, 7.
    UP:   shorts liquidated (10) and a rise to high 103 -> short_squeeze at t = 6, 7.
    MIX:  longs liquidated (10) but the price rises to 103 -> mixed at t = 6, 7.
    """
    close = np.array([100.0, 101.0] * 6)
    burst, quiet = np.ones(12), np.ones(12)
    burst[8], quiet[8] = 10.0, 0.0

    down_close = close.copy()
    down_close[8] = 98.0
    down_high, down_low = down_close * 1.002, down_close * 0.998
    down_high[8], down_low[8] = 101.0, 97.0

    up_close = close.copy()
    up_close[8] = 102.0
    up_high, up_low = up_close * 1.002, up_close * 0.998
    up_high[8] = 103.0
    return pd.concat(
        [
            _bars("DOWN", down_close, down_high, down_low, burst, quiet),
            _bars("UP", up_close, up_high, up_low, quiet, burst),
            _bars("MIX", up_close, up_high, up_low, burst, quiet),
        ],
        ignore_index=True,
    )


def test_hand_computed_label_and_direction():
    labels = make_labels(conform(_tiny_frame()), TINY, details=True)
    nan = np.nan
    # t < 3: fewer than 3 trailing sums / 3 returns; t >= 10: the window runs past the data.
    expected = [nan, nan, nan, 0, 0, 0, 1, 1, 0, 0, nan, nan]
    for symbol, side in (("DOWN", "long_flush"), ("UP", "short_squeeze"), ("MIX", "mixed")):
        rows = labels[labels["symbol"] == symbol]
        np.testing.assert_array_equal(rows["flush_2h"].to_numpy(), expected)
        directions = rows["direction_2h"].astype(object).to_numpy()
        assert list(directions[6:8]) == [side, side]
        assert pd.isna(directions[[3, 4, 5, 8, 9]]).all()
        # At t = 9 the trailing sums are 4, 4, 12, 12: the burst itself now raises the bar.
        np.testing.assert_allclose(rows["threshold_2h"].to_numpy()[3:10], [8] * 6 + [16])
        np.testing.assert_allclose(rows["amount_2h"].to_numpy()[6], 12.0)
        a = np.log(1.01)
        np.testing.assert_allclose(rows["needed_2h"].to_numpy()[6], 2 * a / np.sqrt(3) * np.sqrt(2))
    down = labels[labels["symbol"] == "DOWN"]
    np.testing.assert_allclose(down["move_2h"].to_numpy()[6], -np.log(97 / 100))


def test_the_move_side_is_the_direction_rule_on_every_labelled_window():
    """A flush's move side is its direction; a quiet window gets the side its move and its
    liquidations agree on, and its move over the move a flush needs."""
    frame = _tiny_frame()
    quiet = frame[frame["symbol"] == "DOWN"].copy()
    quiet["symbol"] = "QUIET"
    quiet[["liq_long_usd", "liq_short_usd"]] = 1.0  # the same fall, no burst: no flush
    labels = make_labels(conform(pd.concat([frame, quiet], ignore_index=True)), TINY, details=True)
    for symbol in ("DOWN", "UP", "MIX", "QUIET"):
        rows = labels[labels["symbol"] == symbol]
        side = rows[move_side_column(2)].astype(object).to_numpy()
        flush = rows[flush_column(2)].to_numpy()
        direction = rows[direction_column(2)].astype(object).to_numpy()
        np.testing.assert_array_equal(side[flush == 1], direction[flush == 1])
        assert pd.isna(side[np.isnan(flush)]).all()  # no window, no side
        ratio = rows[move_ratio_column(2)].to_numpy()
        np.testing.assert_allclose(ratio, rows["move_2h"] / rows["needed_2h"])
    rows = labels[labels["symbol"] == "QUIET"]
    assert rows[flush_column(2)].iloc[6] == 0.0
    # Longs and shorts liquidated alike (1 + 1): the fall to 97 names the longs' side.
    assert rows[move_side_column(2)].iloc[6] == "long_flush"
    assert rows[move_ratio_column(2)].iloc[6] > 1


def test_spike_without_price_move_is_not_a_flush():
    frame = _tiny_frame()
    frame = frame[frame["symbol"] == "DOWN"].copy()
    frame.loc[8, ["close", "high", "low"]] = [101.0, 101.2, 100.8]  # liquidations, no move
    labels = make_labels(conform(frame), TINY)
    assert labels["flush_2h"].iloc[6] == 0.0 and labels["flush_2h"].iloc[7] == 0.0


def test_missing_bar_leaves_windows_unlabelled():
    frame = _tiny_frame()
    frame = frame[(frame["symbol"] == "DOWN") & (frame["timestamp"].dt.hour != 9)]
    labels = make_labels(conform(frame), TINY)
    by_hour = dict(zip(labels["timestamp"].dt.hour, labels["flush_2h"], strict=True))
    assert by_hour[6] == 1.0  # window 7, 8 is complete
    assert np.isnan(by_hour[7]) and np.isnan(by_hour[8])  # windows contain the missing bar 9
    assert np.isnan(by_hour[10]) and np.isnan(by_hour[11])


def _random_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    frame = _bars(
        "R",
        close,
        close * np.exp(np.abs(rng.normal(0, 0.006, n))),
        close * np.exp(-np.abs(rng.normal(0, 0.006, n))),
        rng.lognormal(10, 1.5, n),
        rng.lognormal(10, 1.5, n),
    )
    frame["oi_usd"] = 1e9 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return conform(frame)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_future_in_threshold_or_sigma(seed):
    """Rewriting everything after bar t changes no threshold or σ at t, nor a flush at t - H."""
    spec = LabelSpec(
        horizons=(4, 12), median_window_hours=240, min_trailing_hours=48, vol_window_hours=72
    )
    frame = _random_frame(600, seed)
    cut = 400
    changed = frame.copy()
    rng = np.random.default_rng(seed + 100)
    later = changed.index[cut + 1 :]
    for column in ("liq_long_usd", "liq_short_usd"):
        changed.loc[later, column] = rng.lognormal(14, 2, len(later))
    changed.loc[later, "oi_usd"] *= 0.3
    changed.loc[later, ["open", "high", "low", "close"]] *= 1.5
    before = make_labels(frame, spec, details=True)
    after = make_labels(changed, spec, details=True)
    for h in spec.horizons:
        past = slice(0, cut + 1)
        pd.testing.assert_series_equal(
            before[f"threshold_{h}h"][past], after[f"threshold_{h}h"][past]
        )
        pd.testing.assert_series_equal(before["sigma"][past], after["sigma"][past])
        settled = slice(0, cut - h + 1)  # windows that end at or before the cut
        for column in (flush_column(h), move_side_column(h), move_ratio_column(h)):
            pd.testing.assert_series_equal(before[column][settled], after[column][settled])
            # ...while the future does change labels whose windows reach past the cut.
            assert not before[column].iloc[cut:].equals(after[column].iloc[cut:])


def test_missing_liquidations_refuse_without_explicit_proxy():
    frame = _random_frame(300, 4)
    frame["liq_long_usd"] = np.nan
    frame["liq_short_usd"] = np.nan
    frame["oi_usd"] = 1e9 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.01, 300)))
    with pytest.raises(DataError, match=r"no liq_long_usd / liq_short_usd .*data for R.*oi_drop"):
        make_labels(frame, LabelSpec(horizons=(4,)))
    spec = LabelSpec(
        horizons=(4,),
        source="oi_drop",
        median_window_hours=120,
        min_trailing_hours=48,
        vol_window_hours=72,
    )
    labels = make_labels(frame, spec, details=True)
    flushes = labels["flush_4h"] == 1.0
    assert labels["flush_4h"].notna().sum() > 100
    # Every proxy flush shed at least m × the trailing median share of OI, and never 'mixed'.
    assert (labels.loc[flushes, "amount_4h"] >= labels.loc[flushes, "threshold_4h"]).all()
    assert set(labels.loc[flushes, "direction_4h"].astype(str)) <= {"long_flush", "short_squeeze"}
    assert spec.to_params()["label_source"] == "oi_drop"


def test_labels_keep_row_order_and_series_apart():
    frame = _tiny_frame()
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    labels = make_labels(conform(shuffled), TINY)
    reference = make_labels(conform(frame), TINY)
    merged = shuffled[["timestamp", "symbol"]].merge(
        reference[["timestamp", "symbol", "flush_2h"]].astype({"symbol": str}), how="left"
    )
    np.testing.assert_array_equal(labels["flush_2h"].to_numpy(), merged["flush_2h"].to_numpy())


COINALYZE = "denizyts__Coinalyze-Backtester/src/csvFolder"


@pytest.mark.realdata
def test_real_coinalyze_cascade_and_base_rate(real_data):
    from flushcast.marketdata.ingest import read_canonical

    folder = real_data / COINALYZE
    frame = pd.concat(
        [
            read_canonical(
                "coinalyze", sorted(folder.glob(f"{coin}USDT_PERP.A_*.csv")), tz="+06:00"
            )
            for coin in ("BTC", "ETH", "SOL")
        ],
        ignore_index=True,
    )
    labels = make_labels(frame, LabelSpec())
    # The 2024-08-05 cascade: every symbol has a long flush in the 12 h before the crash.
    window = labels[
        (labels["timestamp"] >= "2024-08-04 12:00")
        & (labels["timestamp"] <= "2024-08-05 06:00")
        & (labels["direction_12h"] == "long_flush")
    ]
    assert set(window["symbol"].astype(str)) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    rate = labels["flush_12h"].mean()
    assert 0.02 <= rate <= 0.08, f"base rate at H=12 is {rate:.3%}"
    # σ is taken over 30 days, so the first month of the two is unlabelled.
    assert labels["flush_12h"].notna().mean() > 0.45


def test_simulator_cascades_are_recovered_at_four_hours():
    """Most of the simulator's logged cascades fall inside a 4-hour flush window."""
    from flushcast.simulator.simulate import simulate

    result = simulate(days=120, seed=2, symbols=("BTCUSDT", "ETHUSDT"))
    h = 4
    labels = make_labels(result.frame, LabelSpec(horizons=(h,)))
    logged = result.cascades
    # A cascade starting in hour b is inside the window of every t in b-H … b-1.
    candidates = pd.DataFrame(
        {
            "cascade": np.repeat(np.arange(len(logged)), h),
            "symbol": np.repeat(logged["symbol"].astype(str).to_numpy(), h),
            "timestamp": pd.DatetimeIndex(logged["start"].dt.floor("h")).repeat(h)
            - pd.to_timedelta(np.tile(np.arange(1, h + 1), len(logged)), "h"),
        }
    )
    found = candidates.merge(
        labels[["symbol", "timestamp", flush_column(h)]].astype({"symbol": str}), how="inner"
    )
    per_cascade = found.groupby("cascade")[flush_column(h)].agg(["max", "count"])
    judged = per_cascade[per_cascade["count"] > 0]  # cascades whose windows could be labelled
    assert len(judged) >= 20
    assert (judged["max"] == 1.0).mean() >= 0.7


def test_label_definition_reads_back_from_its_parameters():
    spec = LabelSpec(horizons=(4, 24), m=3.5, median_window_hours=480, source="oi_drop")
    assert LabelSpec.from_params(spec.to_params()) == spec
    with pytest.raises(ValueError, match="cannot read the label definition"):
        LabelSpec.from_params({"label_m": 4.0})
