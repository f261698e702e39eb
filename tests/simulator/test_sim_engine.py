"""The simulator's output: canonical, deterministic, resumable, and at 1 h, 4 h or daily bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from flushcast.marketdata.resample import to_bar
from flushcast.marketdata.schema import AGGREGATION, COLUMNS
from flushcast.marketdata.store import MarketStore
from flushcast.marketdata.validate import validate
from flushcast.simulator.config import ScenarioConfig
from flushcast.simulator.drivers import draw
from flushcast.simulator.simulate import (
    BARS,
    BURN_IN_DAYS,
    CASCADE_COLUMNS,
    CASCADE_LOG,
    TRUTH_LOG,
    VENUE,
    simulate,
)

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture(scope="module")
def result():
    return simulate("default", SYMBOLS, days=90, seed=11)


def test_frame_is_canonical_complete_and_hourly(result) -> None:
    frame = result.frame
    report = validate(frame)
    assert list(frame.columns) == list(COLUMNS)
    assert report.gaps == [] and report.rows == 3 * 90 * 24
    assert set(frame["venue"].astype(str)) == {VENUE}
    assert frame.drop(columns=["symbol", "venue"]).notna().all().all()
    first = frame.groupby("symbol", observed=True)["timestamp"].min()
    assert (first == pd.Timestamp("2024-01-01", tz="UTC")).all()


def test_same_seed_same_market_other_seed_other_market(result) -> None:
    again = simulate("default", SYMBOLS, days=90, seed=11)
    pd.testing.assert_frame_equal(result.frame, again.frame)
    pd.testing.assert_frame_equal(result.cascades, again.cascades)
    pd.testing.assert_frame_equal(result.truth, again.truth)
    other = simulate("default", SYMBOLS, days=90, seed=12)
    assert not np.allclose(other.frame["close"], result.frame["close"])


def test_funding_settles_every_8h_within_the_clamp(result) -> None:
    for _, g in result.frame.groupby("symbol", observed=True):
        changed = g["funding_rate"].diff().fillna(0).to_numpy() != 0
        # Settlements at 00, 08, 16 UTC: the new rate is in force at the close of bars 23, 07, 15.
        assert (g["timestamp"].dt.hour.to_numpy()[changed] % 8 == 7).all()
        assert changed.sum() > 100
    tight = ScenarioConfig(funding_clamp=0.0002, premium_per_imbalance=0.05)
    clamped = simulate(tight, ["BTCUSDT"], days=20, seed=11).frame["funding_rate"]
    assert clamped.abs().max() <= 0.0002 + 1e-12
    assert (clamped.abs() > 0.00019).any()


def test_alts_follow_the_leader(result) -> None:
    closes = result.frame.pivot(index="timestamp", columns="symbol", values="close")
    returns = np.log(closes).diff().dropna()
    corr = returns.corr()
    assert corr.loc["BTCUSDT", "ETHUSDT"] > 0.5
    assert corr.loc["BTCUSDT", "SOLUSDT"] > 0.5
    assert returns["SOLUSDT"].std() > returns["BTCUSDT"].std()


def test_cascade_log_agrees_with_the_bars(result) -> None:
    casc = result.cascades
    assert list(casc.columns) == list(CASCADE_COLUMNS)
    assert len(casc) > 20
    assert set(casc["direction"]) == {"long_flush", "short_squeeze"}
    assert (casc["end"] > casc["start"]).all() and (casc["rounds"] >= 2).all()
    flush = casc["direction"] == "long_flush"
    assert (casc.loc[flush, "price_move"] < 0).all()
    assert (casc.loc[~flush, "price_move"] > 0).all()
    assert (casc.loc[flush, "liq_long_usd"] >= casc.loc[flush, "liq_short_usd"]).all()
    assert casc["leverage_tiers"].str.len().gt(0).all()
    frame = result.frame.set_index(["symbol", "timestamp"])
    for row in casc.itertuples():
        bars = frame.loc[row.symbol]
        window = bars[(bars.index >= row.start.floor("1h")) & (bars.index < row.end)]
        liq = window["liq_long_usd"] + window["liq_short_usd"]
        # Every USD the log says was liquidated appears in the hourly bars of its window.
        assert liq.sum() >= row.notional_usd * (1 - 1e-9)
        # ...and the cascade's hours stand out from the symbol's typical hour.
        typical = (bars["liq_long_usd"] + bars["liq_short_usd"]).median()
        assert liq.max() > 5 * typical


def test_overleveraged_flushes_more_than_calm() -> None:
    calm = simulate("calm", ["BTCUSDT"], days=120, seed=5)
    over = simulate("overleveraged", ["BTCUSDT"], days=120, seed=5)

    def liq_share(r):
        f = r.frame
        return ((f["liq_long_usd"] + f["liq_short_usd"]) / f["oi_usd"]).sum()

    assert liq_share(over) > 2 * liq_share(calm)
    assert len(over.cascades) > len(calm.cascades)


def test_write_stores_frame_and_cascade_log(result, tmp_path) -> None:
    log = result.write(tmp_path)
    assert log == tmp_path / CASCADE_LOG
    store = MarketStore(tmp_path)
    assert sorted(d.symbol for d in store.datasets()) == SYMBOLS
    pd.testing.assert_frame_equal(store.read(), result.frame.reset_index(drop=True))
    pd.testing.assert_frame_equal(pd.read_parquet(log), result.cascades)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / TRUTH_LOG), result.truth)
    assert store.provenance("BTCUSDT", VENUE)["seed"] == 11
    assert store.provenance("BTCUSDT", VENUE)["bar"] == "1h"
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"leverage_levels": (2, 5), "leverage_weights": (1.0,)}, "differ in length"),
        ({"leverage_levels": (2, 200), "leverage_weights": (1, 1)}, "leverage levels"),
        ({"leverage_weights": (0,) * 10}, "all be zero"),
        ({"funding_clamp": 0.5}, "funding_clamp"),
        ({"book_depth": -1}, "book_depth"),
        ({"no_such_knob": 1}, "no_such_knob"),
    ],
)
def test_config_rejects_bad_scenarios(kwargs, message) -> None:
    with pytest.raises(ValidationError, match=message):
        ScenarioConfig(**kwargs)


def test_presets_and_arguments_are_checked() -> None:
    assert ScenarioConfig.preset("calm").book_depth > ScenarioConfig().book_depth
    with pytest.raises(ValueError, match="unknown preset"):
        ScenarioConfig.preset("wild")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="midnight"):
        simulate(days=1, start="2024-01-01 05:00")
    with pytest.raises(ValueError, match="days"):
        simulate(days=0)
    with pytest.raises(ValueError, match="bar must be one of"):
        simulate(days=1, bar="2h")
    with pytest.raises(ValueError, match="pause hours"):
        simulate(days=1, pause_at=[24])


def test_a_paused_run_is_the_same_market(result) -> None:
    """Stopping at hour boundaries and going on changes nothing: the saved state is complete."""
    seen = []
    paused = simulate(
        "default",
        SYMBOLS,
        days=90,
        seed=11,
        pause_at=[0, 500, 501, 1777],
        on_pause=lambda t, market: seen.append((t, market.hour)),
    )
    burn = BURN_IN_DAYS * 24
    assert seen == [(0, burn + 1), (500, burn + 501), (501, burn + 502), (1777, burn + 1778)]
    pd.testing.assert_frame_equal(paused.frame, result.frame)
    pd.testing.assert_frame_equal(paused.cascades, result.cascades)
    pd.testing.assert_frame_equal(paused.truth, result.truth)


def test_a_copy_continues_like_the_original_and_fresh_draws_differ(result) -> None:
    t, hours = 800, 24
    saved = []
    simulate(
        "default",
        SYMBOLS,
        days=90,
        seed=11,
        pause_at=[t],
        on_pause=lambda _, m: saved.append(m.copy()),
    )
    burn = BURN_IN_DAYS * 24
    same = (
        saved[0]
        .copy()
        .advance(
            {
                s: draw(11, s, burn + 90 * 24).window(burn + t + 1, burn + t + 1 + hours)
                for s in SYMBOLS
            }
        )
    )
    fresh = saved[0].copy().advance({s: draw(11, s, hours, 1, t, 0) for s in SYMBOLS})
    for symbol in SYMBOLS:
        bars = result.frame[result.frame["symbol"] == symbol].iloc[t + 1 : t + 1 + hours]
        np.testing.assert_allclose(np.exp(same[symbol].hourly[:, 3]), bars["close"].to_numpy())
        closes = np.exp(fresh[symbol].hourly[:, 3])
        assert not np.allclose(closes, bars["close"].to_numpy())
        # Both futures start from the same close.
        start = result.frame[result.frame["symbol"] == symbol]["close"].iloc[t]
        assert np.exp(fresh[symbol].hourly[0, 0]) == pytest.approx(start)


@pytest.mark.parametrize("bar", ["4h", "1d"])
def test_coarser_bars_aggregate_the_hourly_ones(result, bar) -> None:
    coarse = simulate("default", SYMBOLS, days=90, seed=11, bar=bar)
    per_day = {"4h": 6, "1d": 1}[bar]
    assert validate(coarse.frame, bar=BARS[bar]).rows == 3 * 90 * per_day
    hourly = result.frame[result.frame["symbol"] == "ETHUSDT"]
    values = [c for c in COLUMNS if c in AGGREGATION]
    expected, dropped = to_bar(hourly[["timestamp", *values]], bar=BARS[bar])
    assert dropped == 0
    got = coarse.frame[coarse.frame["symbol"] == "ETHUSDT"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[["timestamp", *values]], expected, check_dtype=False)
    # The cascade log and the hourly truth do not depend on the bar.
    pd.testing.assert_frame_equal(coarse.cascades, result.cascades)
    pd.testing.assert_frame_equal(coarse.truth, result.truth)
