"""The estimated liquidation heatmap on a tiny hand-made path, every value worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.features import HeatmapConfig, build_features, liquidation_heatmap
from flushcast.features.grid import to_grid
from flushcast.features.heatmap import compute
from flushcast.marketdata.schema import conform

# 10x → liquidated 10 % away, 40x → 2.5 % away (no maintenance margin, to keep the arithmetic
# readable); positions are forgotten after 3 bars.
CONFIG = HeatmapConfig(
    leverage=(10.0, 40.0), weights=(0.6, 0.4), maintenance_margin=0.0, max_age_hours=3
)


def path() -> pd.DataFrame:
    rows = [  # close, high, low, OI
        (100.0, 100.1, 99.9, 1000.0),  # t0: start
        (100.0, 100.1, 99.9, 2000.0),  # t1: +1000 opened at 100: longs 600 @ 90, 400 @ 97.5;
        #                                    shorts 600 @ 110, 400 @ 102.5
        (99.0, 100.0, 97.0, 1000.0),  # t2: low 97 clears longs @ 97.5; OI halves the rest
        (99.0, 99.5, 98.5, 1000.0),  # t3: nothing happens
        (99.0, 99.5, 98.5, 1000.0),  # t4: the t1 positions are 3 bars old: forgotten
    ]
    close, high, low, oi = map(np.array, zip(*rows, strict=True))
    return conform(
        pd.DataFrame(
            {
                "timestamp": pd.date_range("2024-08-05", periods=len(rows), freq="1h", tz="UTC"),
                "symbol": "BTCUSDT",
                "venue": "binance",
                "open": close,
                "high": high,
                "low": low,
                "close": close,
                "oi_usd": oi,
            }
        )
    )


def test_hand_checked_features() -> None:
    f = compute(to_grid(path()), CONFIG)
    # t1: within 5 % below 100 sit the 400 of 40x longs (97.5) = 20 % of OI 2000; same above.
    assert f["heat_long_1pct"][1] == 0.0
    assert f["heat_long_2pct"][1] == 0.0
    assert f["heat_long_5pct"][1] == pytest.approx(20.0)
    assert f["heat_short_5pct"][1] == pytest.approx(20.0)
    assert f["heat_asymmetry_5pct"][1] == pytest.approx(0.0)
    # Densest long cluster: 600 @ 90, 10 % below (within the 0.25 % bin width).
    assert f["heat_long_cluster_dist_pct"][1] == pytest.approx(10.0, abs=0.2)
    assert f["heat_short_cluster_dist_pct"][1] == pytest.approx(10.0, abs=0.2)
    # t2: longs @ 97.5 cleared by the low; the rest halved: longs 300 @ 90, shorts 300 @ 110
    # and 200 @ 102.5. Within 5 % of 99: shorts 200 / OI 1000 = 20 %, no longs.
    assert f["heat_long_5pct"][2] == 0.0
    assert f["heat_short_5pct"][2] == pytest.approx(20.0)
    assert f["heat_short_2pct"][2] == 0.0
    assert f["heat_asymmetry_5pct"][2] == pytest.approx(1.0)
    assert f["heat_long_cluster_dist_pct"][2] == pytest.approx(100 * (1 - 90 / 99), abs=0.2)
    assert f["heat_short_cluster_dist_pct"][2] == pytest.approx(100 * (110 / 99 - 1), abs=0.2)
    # t4: everything opened at t1 has aged out; nothing is left to find.
    assert f["heat_short_5pct"][4] == 0.0
    assert np.isnan(f["heat_long_cluster_dist_pct"][4])
    assert np.isnan(f["heat_asymmetry_5pct"][4])


def test_grid_keeps_the_notional() -> None:
    hm = liquidation_heatmap(path(), CONFIG)
    assert hm.long_density.shape == (5, len(hm.price_levels))
    np.testing.assert_allclose(hm.long_density.sum(axis=1), [0, 1000, 300, 300, 0], atol=1e-9)
    np.testing.assert_allclose(hm.short_density.sum(axis=1), [0, 1000, 500, 500, 0], atol=1e-9)
    # The 600 of 10x longs sit in the level containing 90.
    level = hm.price_levels[np.argmax(hm.long_density[1])]
    assert level == pytest.approx(90.0, rel=0.0025)
    assert (hm.timestamps == path()["timestamp"].to_numpy()).all()


def test_gap_bar_changes_nothing_but_the_clock() -> None:
    frame = path().drop(index=3).reset_index(drop=True)
    hm = liquidation_heatmap(frame, CONFIG)
    assert len(hm.timestamps) == 5  # the gap is on the grid ...
    np.testing.assert_allclose(hm.long_density[3], hm.long_density[2])  # ... and holds state
    table = build_features(frame)
    assert len(table) == 4  # no row is invented for it


def test_missing_oi_gives_nan_not_a_crash() -> None:
    frame = path().assign(oi_usd=np.nan)
    f = compute(to_grid(frame), CONFIG)
    assert all(np.isnan(v).all() for v in f.values())


def test_bad_config_is_a_data_error() -> None:
    with pytest.raises(DataError, match="sum to 1"):
        compute(to_grid(path()), HeatmapConfig(leverage=(10.0,), weights=(0.5,)))
    with pytest.raises(DataError, match="one symbol"):
        liquidation_heatmap(pd.concat([path(), path().assign(symbol="ETHUSDT")]))
