"""Simulated history before a short store: it trains, and changes nothing of what is tested.

The short store here is a vendor's in all but name: a simulated market of another seed whose
venue is renamed, so the simulator's history is a different market placed before it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.common.engine import InProcess
from flushcast.marketdata.store import MarketStore
from flushcast.simulator import simulate
from flushcast.training.augment import applies, simulated_history
from flushcast.training.config import AugmentConfig, TrainingConfig
from flushcast.training.dataset import load_dataset
from flushcast.training.evaluate import evaluate
from flushcast.training.horizon import horizon_data
from flushcast.training.labels import LabelSpec

FOUR = pd.Timedelta(hours=4)
LABEL = LabelSpec(horizons=(4, 12))
SHORT = AugmentConfig(simulated_days=30)
"""A month of history keeps the tests fast; the default adds a year."""


@pytest.fixture(scope="module")
def vendor(tmp_path_factory):
    """BTCUSDT on a vendor venue: 75 days of 4 h bars from 2025-03-01 14:00."""
    root = tmp_path_factory.mktemp("vendor")
    frame = simulate("default", ["BTCUSDT"], days=76, seed=21, start="2025-03-01", bar="4h").frame
    frame = frame[frame["timestamp"] >= pd.Timestamp("2025-03-01 14:00", tz="UTC")]
    frame = frame.assign(venue="binance")
    MarketStore(root).write(frame, bar=FOUR)
    return root


@pytest.fixture(scope="module")
def both(vendor):
    """The store alone and with simulated history, evaluated on one recipe."""
    config = TrainingConfig(label=LABEL).with_overrides(
        {
            "evaluation.n_boot": 0,
            "fit.candidates": ["logistic", "lightgbm"],
            "fit.lightgbm.rounds": 20,
            "walk_forward.retrain_every_hours": 240,
        }
    )
    alone = load_dataset(vendor, label=LABEL, augment=None)
    more = load_dataset(vendor, label=LABEL, augment=SHORT)
    runner = InProcess()
    return {
        "alone": (alone, evaluate(alone, config, runner=runner)),
        "more": (more, evaluate(more, config, runner=runner)),
        "config": config,
    }


def _rows(frame: pd.DataFrame, at: np.ndarray | None = None) -> pd.DataFrame:
    """Rows with symbol and venue as text (their categories include the simulated symbols)."""
    rows = frame if at is None else frame.iloc[at]
    return rows.astype({"symbol": str, "venue": str}).reset_index(drop=True)


def test_the_history_ends_before_the_store_and_only_trains(both):
    alone, _ = both["alone"]
    more, _ = both["more"]
    table = more.table
    simulated = table["venue"].astype(str) == "sim"
    first = alone.table["timestamp"].min()
    assert simulated.any() and alone.augmented is None
    assert table.loc[simulated, "timestamp"].max() < first
    assert table.loc[simulated, "timestamp"].min() == first.floor("D") - pd.Timedelta(days=30)
    assert not more.tested(table[simulated]).any() and more.tested(table[~simulated]).all()
    assert {k for k, info in more.series.items() if info["tested"] is False} == {
        f"{s}@sim" for s in SHORT.symbols
    }
    assert more.augmented["days"] == 30 and more.augmented["seed"] == SHORT.seed
    assert more.meta(both["config"])["augmented"] == more.augmented


def test_folds_and_test_rows_are_the_store_alones(both):
    config = both["config"]
    alone, by_alone = both["alone"]
    more, by_more = both["more"]
    for h in LABEL.horizons:
        a, m = horizon_data(alone, h), horizon_data(more, h)
        fa, fm = a.folds(config), m.folds(config)
        assert len(fa) == len(fm) > 0
        for x, y in zip(fa, fm, strict=True):
            assert (x.test_start, x.test_end, x.block) == (y.test_start, y.test_end, y.block)
            pd.testing.assert_frame_equal(_rows(a.keys, x.test), _rows(m.keys, y.test))
            # Every earlier row trains, the simulated ones too.
            assert len(y.train) > len(x.train)
        keys = ["timestamp", "symbol", "venue", "fold", "block", "y"]
        scored = [_rows(e.predictions[h][keys]) for e in (by_alone, by_more)]
        pd.testing.assert_frame_equal(*scored)
        assert (scored[1]["venue"] == "binance").all()


def test_no_simulated_row_is_calibration_evidence(both):
    more, evaluation = both["more"]
    for h in LABEL.horizons:
        data = horizon_data(more, h)
        oof = evaluation.horizons[h].oof
        # Evidence (`training.recipe.Evidence.at`) is the rows with out-of-fold scores.
        for scores in oof.raw.values():
            assert not np.isfinite(scores[~data.tested]).any()
        assert (oof.fold_of[~data.tested] == -1).all()


def test_the_history_does_not_depend_on_the_stores_later_bars(vendor):
    frame = MarketStore(vendor).read()
    early = frame[frame["timestamp"] < frame["timestamp"].min() + pd.Timedelta(days=20)]
    whole = simulated_history([frame], FOUR, SHORT)
    part = simulated_history([early], FOUR, SHORT)
    pd.testing.assert_frame_equal(whole.frame, part.frame)


def test_it_is_added_only_to_short_vendor_stores(vendor):
    frame = MarketStore(vendor).read()
    assert applies([frame], FOUR, SHORT) == pytest.approx(75.0, abs=0.5)
    assert applies([frame], FOUR, AugmentConfig()) is None  # off by default
    assert applies([frame], FOUR, SHORT.model_copy(update={"simulated_days": 0})) is None
    assert applies([frame], FOUR, SHORT.model_copy(update={"when_shorter_than_days": 75})) is None
    simulated = frame.assign(venue="sim")
    assert applies([simulated], FOUR, SHORT) is None  # a simulated store needs no more
    assert applies([frame], FOUR, SHORT, others=[simulated]) is None  # brought by --train-store
    assert applies([frame], pd.Timedelta(hours=8), SHORT) is None  # no such simulator bar
