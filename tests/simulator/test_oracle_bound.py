"""The oracle bound (benchmarks/oracle_bound.py): labels of continued paths are the project's
labels, start sampling keeps estimates unbiased, and build-up can be swapped between states."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.oracle_bound import (
    LABEL_VALUES,
    BoundSpec,
    bound_table,
    continued_labels,
    oracle_probabilities,
    realised,
    sample_starts,
)
from flushcast.common.engine import InProcess
from flushcast.simulator import engine
from flushcast.simulator.book import LONG, SHORT, notional_within
from flushcast.simulator.config import ScenarioConfig
from flushcast.simulator.simulate import simulate
from flushcast.training.labels import LabelSpec, flush_column, make_labels


@pytest.fixture(scope="module")
def market():
    return simulate("default", ["BTCUSDT", "ETHUSDT"], days=70, seed=3).frame


@pytest.mark.parametrize(
    "label",
    [
        LabelSpec(),
        LabelSpec(horizons=(6, 48), m=3.0, k=1.5, median_window_hours=300, vol_window_hours=24),
    ],
)
def test_the_realised_future_gets_the_realised_label(market, label) -> None:
    """With the real future as the 'continuation', the label equals make_labels on the whole
    series: the history kept before a start is long enough for any LabelSpec."""
    spec = BoundSpec(config=ScenarioConfig(), symbols=("BTCUSDT", "ETHUSDT"), days=70, label=label)
    bars = market[market["symbol"] == "ETHUSDT"].reset_index(drop=True)
    whole = make_labels(bars, label)
    horizon = max(label.horizons)
    checked = 0
    for t in (200, 900, 1300, 70 * 24 - horizon - 1):
        history = bars.iloc[max(0, t - spec.history() + 1) : t + 1]
        future = bars.iloc[t + 1 : t + 1 + horizon][list(LABEL_VALUES)].to_numpy()
        got = continued_labels(history, future[None], ["real"], label)
        for h in label.horizons:
            want = whole[flush_column(h)].iloc[t]
            assert got.loc["real", flush_column(h)] == pytest.approx(want, nan_ok=True)
            checked += int(np.isfinite(want))
    assert checked >= 4


def test_starts_are_sampled_by_outcome_and_weighted_back() -> None:
    spec = BoundSpec(config=ScenarioConfig(), symbols=("BTCUSDT",), days=80, seed=2, starts=40)
    truth = realised(spec)
    weights = sample_starts(spec, truth)
    assert len(weights) == 40
    by_hour = truth.labels.dropna(subset=["y"]).groupby("hour")["y"]
    eligible = by_hour.count()[lambda n: n == len(spec.label.horizons)].index
    eligible = eligible[eligible < spec.hours - spec.horizon]
    # Weights are inverse sampling probabilities: they add up to the hours sampled from.
    assert weights.sum() == pytest.approx(len(eligible))
    event = by_hour.max().reindex(weights.index) == 1
    assert event.sum() == 20 and weights[event].min() < weights[~event].min()
    # Each horizon's flush hours get their share, however rare: the longest is most rare.
    flushes = truth.labels[truth.labels["y"] == 1].groupby("hour")["horizon"].max()
    longest = flushes.reindex(weights.index) == max(spec.label.horizons)
    assert longest.sum() in (6, 7)


def test_buildup_moves_between_states_and_the_rest_stays() -> None:
    saved = {}
    simulate(
        "default",
        ["BTCUSDT"],
        days=40,
        seed=4,
        pause_at=[300, 800],
        on_pause=lambda t, m: saved.__setitem__(t, m.copy()),
    )
    target, donor = saved[300], saved[800]
    mixed = target.with_buildup_from(donor)
    t_sv, d_sv, m_sv = (m.states["BTCUSDT"].sv for m in (target, donor, mixed))
    assert m_sv[engine.S_Y] == t_sv[engine.S_Y]  # price, vol regime, depth: the target's
    assert m_sv[engine.S_LOGVOL] == t_sv[engine.S_LOGVOL]
    assert m_sv[engine.S_CROWD] == d_sv[engine.S_CROWD]  # crowding, funding: the donor's
    assert m_sv[engine.S_FUNDING] == d_sv[engine.S_FUNDING]
    size = t_sv[engine.S_OI_TARGET] / d_sv[engine.S_OI_TARGET]
    for side in (LONG, SHORT):
        # The donor's book, at the same distances from the target's price, scaled to its size.
        for d in (0.01, 0.03, 0.1):
            near = [
                notional_within(st.hist, st.st, st.ptr, side, st.sv[engine.S_Y], d, True)
                for st in (donor.states["BTCUSDT"], mixed.states["BTCUSDT"])
            ]
            assert near[1] == pytest.approx(near[0] * size, rel=1e-9)
    assert target.states["BTCUSDT"].sv[engine.S_CROWD] == t_sv[engine.S_CROWD]  # untouched


@pytest.mark.slow
def test_a_small_bound_runs_end_to_end() -> None:
    spec = BoundSpec(
        config=ScenarioConfig(), symbols=("BTCUSDT",), days=45, seed=1, starts=8, paths=3
    )
    truth = realised(spec)
    weights = sample_starts(spec, truth)
    oracle = oracle_probabilities(spec, weights.index.to_numpy(), truth.frame, InProcess())
    assert set(oracle["mode"]) == {"oracle", "no_buildup"}
    assert len(oracle) == len(weights) * 2 * len(spec.label.horizons)
    assert oracle["p"].between(0, 1).all()
    table = bound_table(oracle, truth, weights)
    assert set(table["horizon"]) == set(spec.label.horizons)
    assert isinstance(table, pd.DataFrame)
