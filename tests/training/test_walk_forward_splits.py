"""Purged, embargoed walk-forward in hours: no training row's label window reaches a test bar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from flushcast.common.errors import DataError
from flushcast.training.splits import WalkForward

ORIGIN = pd.Timestamp("2024-01-01", tz="UTC")


def _pooled(bars_per_symbol: list[np.ndarray], bar_hours: int = 1) -> pd.Series:
    """Timestamps of several symbols stacked symbol after symbol, as a canonical frame is."""
    bars = np.concatenate(bars_per_symbol)
    return pd.Series(ORIGIN + pd.to_timedelta(bars * bar_hours, "h"))


def _check_fold_discipline(
    stamps: pd.Series, spec: WalkForward, horizon: int, bar: pd.Timedelta
) -> int:
    hours = ((stamps - ORIGIN) / pd.Timedelta("1h")).to_numpy()
    embargo = max(horizon if spec.embargo_hours is None else spec.embargo_hours, horizon)
    folds = spec.folds(stamps, horizon, bar)
    bar_h = bar / pd.Timedelta("1h")
    previous_test_end = None
    for fold in folds:
        start = (fold.test_start - ORIGIN) / pd.Timedelta("1h")
        end = (fold.test_end - ORIGIN) / pd.Timedelta("1h")
        tested = hours[fold.test]
        assert ((tested >= start) & (tested < end)).all()
        # Every row in the fold's span is tested, none twice.
        assert len(fold.test) == ((hours >= start) & (hours < end)).sum()
        # The label window (the H hours after the bar closes), plus the embargo, ends before
        # the first test bar.
        assert (hours[fold.train] + bar_h + horizon + embargo <= start).all()
        assert not set(fold.train) & set(fold.test)
        if previous_test_end is not None:
            assert fold.test_start >= previous_test_end
        previous_test_end = fold.test_end
    return len(folds)


@settings(max_examples=60, deadline=None)
@given(
    horizon_bars=st.sampled_from([1, 3, 6]),
    bar_hours=st.sampled_from([1, 4, 24]),
    retrain_bars=st.integers(6, 60),
    min_train_bars=st.integers(20, 120),
    extra_embargo_bars=st.integers(0, 8),
    n_symbols=st.integers(1, 3),
    n_bars=st.integers(60, 400),
    seed=st.integers(0, 1000),
)
def test_no_training_label_window_overlaps_a_test_bar(
    horizon_bars,
    bar_hours,
    retrain_bars,
    min_train_bars,
    extra_embargo_bars,
    n_symbols,
    n_bars,
    seed,
):
    rng = np.random.default_rng(seed)
    # Symbols start at different times and have holes, as pooled real data does.
    series = []
    for _ in range(n_symbols):
        start = int(rng.integers(0, 30))
        bars = np.arange(start, start + n_bars)
        series.append(bars[rng.random(n_bars) > 0.05])
    horizon = horizon_bars * bar_hours
    spec = WalkForward(
        retrain_every_hours=retrain_bars * bar_hours,
        min_train_hours=min_train_bars * bar_hours,
        embargo_hours=horizon + extra_embargo_bars * bar_hours,
    )
    _check_fold_discipline(_pooled(series, bar_hours), spec, horizon, pd.Timedelta(hours=bar_hours))


def test_expanding_weekly_folds_on_pooled_symbols():
    hours = np.arange(24 * 60)
    stamps = _pooled([hours, hours, hours[100:]])
    spec = WalkForward()
    folds = spec.folds(stamps, 12)
    bar = pd.Timedelta("1h")
    assert _check_fold_discipline(stamps, spec, 12, bar) == len(folds) == 5  # (1440-720)/168
    # Expanding: each fold learns from at least what the previous one did.
    sizes = [len(f.train) for f in folds]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    # Default gap is H purge + H embargo: the last training bar is 25 bars before the test block.
    first = folds[0]
    assert first.test_start - stamps.iloc[first.train].max() == pd.Timedelta(hours=25)
    assert first.train_end == first.test_start - pd.Timedelta(hours=24)
    # All three symbols are tested at each bar of the block; one block per fold by default.
    assert len(first.test) == 3 * 168
    assert [f.block for f in folds] == list(range(5))
    assert folds[-1].test_end == stamps.max() + pd.Timedelta(hours=1)


def test_test_blocks_span_several_refits():
    stamps = _pooled([np.arange(24 * 60)])
    folds = WalkForward(test_block_hours=336).folds(stamps, 4)
    assert [f.block for f in folds] == [0, 0, 1, 1, 2]
    with pytest.raises(ValidationError, match="multiple"):
        WalkForward(test_block_hours=200)


def test_four_hour_bars_count_hours_not_bars():
    bars = np.arange(6 * 60)  # 60 days of 4-hour bars
    stamps = _pooled([bars], bar_hours=4)
    four = pd.Timedelta(hours=4)
    folds = WalkForward().folds(stamps, 12, four)
    assert len(folds) == 5  # the same five weeks as at 1-hour bars
    assert folds[0].test_start - folds[0].train_end == pd.Timedelta(hours=24)
    assert len(folds[0].test) == 42  # a week of 4-hour bars
    with pytest.raises(DataError, match="not a whole number of 4 h bars"):
        WalkForward().folds(stamps, 6, four)
    with pytest.raises(DataError, match="retrain every of 30 h"):
        WalkForward(retrain_every_hours=30).folds(stamps, 4, four)


def test_too_little_data_gives_no_folds():
    stamps = _pooled([np.arange(100)])
    assert WalkForward().folds(stamps, 4) == []
