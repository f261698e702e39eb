"""Purged, embargoed walk-forward: no training row's label window reaches a test bar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.splits import SplitSpec, walk_forward

ORIGIN = pd.Timestamp("2024-01-01", tz="UTC")


def _pooled(bars_per_symbol: list[np.ndarray]) -> pd.Series:
    """Timestamps of several symbols stacked symbol after symbol, as a canonical frame is."""
    hours = np.concatenate(bars_per_symbol)
    return pd.Series(ORIGIN + pd.to_timedelta(hours, "h"))


def _check_fold_discipline(stamps: pd.Series, spec: SplitSpec) -> int:
    bars = ((stamps - ORIGIN) // pd.Timedelta("1h")).to_numpy()
    embargo = spec.horizon if spec.embargo is None else spec.embargo
    folds = walk_forward(stamps, spec)
    previous_test_end = None
    for fold in folds:
        start = (fold.test_start - ORIGIN) // pd.Timedelta("1h")
        end = (fold.test_end - ORIGIN) // pd.Timedelta("1h")
        test_bars = bars[fold.test]
        assert ((test_bars >= start) & (test_bars < end)).all()
        # Every row in the block is tested, none twice.
        assert len(fold.test) == ((bars >= start) & (bars < end)).sum()
        for part in (fold.fit, fold.validation):
            # The label window t+1 … t+H, plus the embargo, ends before the first test bar.
            assert (bars[part] + spec.horizon + embargo < start).all()
        if len(fold.validation):
            first_val = bars[fold.validation].min()
            assert (bars[fold.fit] + spec.horizon + embargo < first_val).all()
            assert np.all(np.diff(bars[fold.validation]) >= 0)  # time-ordered tail
        assert not set(fold.train) & set(fold.test)
        if previous_test_end is not None:
            assert fold.test_start >= previous_test_end
        previous_test_end = fold.test_end
    return len(folds)


@settings(max_examples=60, deadline=None)
@given(
    horizon=st.sampled_from([1, 4, 12, 24]),
    retrain_every=st.integers(12, 200),
    min_train=st.integers(50, 400),
    extra_embargo=st.integers(0, 30),
    validation_fraction=st.sampled_from([0.0, 0.1, 0.25]),
    n_symbols=st.integers(1, 3),
    n_bars=st.integers(100, 900),
    seed=st.integers(0, 1000),
)
def test_no_training_label_window_overlaps_a_test_bar(
    horizon, retrain_every, min_train, extra_embargo, validation_fraction, n_symbols, n_bars, seed
):
    rng = np.random.default_rng(seed)
    # Symbols start at different times and have holes, as pooled real data does.
    series = []
    for _ in range(n_symbols):
        start = int(rng.integers(0, 100))
        hours = np.arange(start, start + n_bars)
        series.append(hours[rng.random(n_bars) > 0.05])
    spec = SplitSpec(
        horizon=horizon,
        retrain_every=retrain_every,
        min_train=min_train,
        embargo=horizon + extra_embargo,
        validation_fraction=validation_fraction,
    )
    _check_fold_discipline(_pooled(series), spec)


def test_expanding_weekly_folds_on_pooled_symbols():
    hours = np.arange(24 * 60)
    stamps = _pooled([hours, hours, hours[100:]])
    spec = SplitSpec(horizon=12, retrain_every=168, min_train=720)
    folds = walk_forward(stamps, spec)
    assert _check_fold_discipline(stamps, spec) == len(folds) == 5  # (1440 - 720) / 168 → 5 blocks
    # Expanding: each fold learns from at least what the previous one did.
    sizes = [len(f.train) for f in folds]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    # Default gap is H purge + H embargo: the last training bar is 25 bars before the test block.
    first = folds[0]
    last_train = stamps.iloc[first.train].max()
    assert first.test_start - last_train == pd.Timedelta(hours=25)
    # All three symbols are tested at each bar of the block.
    assert len(first.test) == 3 * 168
    assert folds[-1].test_end == stamps.max() + pd.Timedelta(hours=1)


def test_embargo_shorter_than_horizon_is_refused():
    with pytest.raises(ValueError, match="embargo"):
        SplitSpec(horizon=12, embargo=4)


def test_too_little_data_gives_no_folds():
    stamps = _pooled([np.arange(100)])
    assert walk_forward(stamps, SplitSpec(horizon=4, min_train=720)) == []
