"""The hourly ground truth: consistent with the bars and the cascade log, and what the
estimated liquidation heatmap (features/heatmap.py) is judged against."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.features import heatmap
from flushcast.features.grid import to_grid
from flushcast.simulator.simulate import TRUTH_COLUMNS, simulate

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(scope="module")
def result():
    return simulate("default", SYMBOLS, days=90, seed=11)


def test_one_truth_row_per_bar_with_nested_probabilities_and_bands(result) -> None:
    truth = result.truth
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    assert truth.notna().all().all()
    keys = result.frame[["timestamp", "symbol"]].astype({"symbol": str}).reset_index(drop=True)
    pd.testing.assert_frame_equal(truth[["timestamp", "symbol"]], keys)
    p = truth[["p_shock", "p_shock_1pct", "p_shock_2pct", "p_shock_5pct"]].to_numpy()
    assert (p >= 0).all() and (p <= 0.3).all()
    assert (np.diff(p, axis=1) <= 0).all(), "a larger shock is never likelier than a smaller one"
    assert truth["p_shock"].max() > 10 * truth["p_shock"].quantile(0.1), "the hazard varies"
    for side in ("long", "short"):
        bands = truth[[f"liq_{side}_{x}pct_usd" for x in (1, 2, 5)]].to_numpy()
        assert (bands >= 0).all() and (np.diff(bands, axis=1) >= 0).all()
        assert (bands[:, -1] <= truth["leveraged_oi_usd"]).all()
    oi = result.frame["oi_usd"].to_numpy()
    assert (truth["leveraged_oi_usd"].to_numpy() < oi).all()
    assert truth["long_share"].between(0, 1).all() and (truth["depth_1pct_usd"] > 0).all()


def test_cascades_come_out_of_the_true_bands_after_high_hazard(result) -> None:
    truth = result.truth.set_index(["symbol", "timestamp"])
    hour = pd.Timedelta("1h")
    covered, soon = [], pd.Series(False, index=truth.index)
    for c in result.cascades.itertuples():
        before = c.start.floor("1h") - hour
        if (c.symbol, before) not in truth.index:
            continue
        side, liquidated = (
            ("long", c.liq_long_usd) if c.direction == "long_flush" else ("short", c.liq_short_usd)
        )
        # What a cascade liquidates sat within reach of the price at the close before it.
        covered.append(truth.loc[(c.symbol, before), f"liq_{side}_5pct_usd"] >= 0.5 * liquidated)
        stamps = pd.date_range(before - 5 * hour, before, freq="1h")
        soon.loc[[(c.symbol, s) for s in stamps if (c.symbol, s) in truth.index]] = True
    assert len(covered) > 20 and np.mean(covered) > 0.9
    # The trigger hazard is higher in the hours before cascades than elsewhere.
    assert truth.loc[soon, "p_shock"].mean() > 1.5 * truth.loc[~soon, "p_shock"].mean()


def test_heatmap_estimate_tracks_the_true_notional_near_price(result) -> None:
    """The heatmap's assumed leverage mix is not the simulator's, so levels differ; the ranking
    over time of how much sits within 2 % of the price must follow the truth."""
    for symbol in SYMBOLS:
        bars = result.frame[result.frame["symbol"] == symbol].sort_values("timestamp")
        estimate = heatmap.compute(to_grid(bars))
        truth = result.truth[result.truth["symbol"] == symbol]
        warm = slice(24 * 30, None)  # the estimate needs a month of OI history
        for side in ("long", "short"):
            true = truth[f"liq_{side}_2pct_usd"].to_numpy() / bars["oi_usd"].to_numpy()
            rho = pd.Series(estimate[f"heat_{side}_2pct"][warm]).corr(
                pd.Series(true[warm]), method="spearman"
            )
            assert rho > 0.6, (symbol, side, rho)
