"""Monitoring maths: the population stability index, which prediction of a bar is scored, and
the join with labels only once they have matured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.live.monitor import chosen_predictions, drift_level, join_labels, psi
from flushcast.training.labels import LabelSpec, flush_column, make_labels


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=20_000)
    assert psi(reference, rng.normal(size=5_000)) < 0.01
    assert 0.1 < psi(reference, rng.normal(0.5, 1.0, 5_000)) < 0.25  # half a sd: moderate
    assert psi(reference, rng.normal(1.5, 1.0, 5_000)) > 1.0
    assert drift_level(psi(reference, rng.normal(1.5, 1.0, 5_000))) == "shifted"


def test_psi_ignores_missing_values_and_is_unknown_without_values() -> None:
    rng = np.random.default_rng(1)
    reference = np.concatenate([rng.normal(size=5_000), np.full(5_000, np.nan)])  # a warm-up
    assert psi(reference, rng.normal(size=2_000)) < 0.02
    assert np.isnan(psi(reference, np.full(10, np.nan)))
    assert drift_level(float("nan")) == "unknown"


def log(rows: list[tuple]) -> pd.DataFrame:
    columns = ["logged_at", "source", "symbol", "venue", "as_of", "model_version"]
    columns += ["horizon_hours", "p_flush"]
    frame = pd.DataFrame(rows, columns=columns)
    for c in ("logged_at", "as_of"):
        frame[c] = pd.to_datetime(frame[c], utc=True).astype("datetime64[us, UTC]")
    return frame


def test_the_cached_prediction_of_a_bar_is_scored_else_the_first_request() -> None:
    bar, later = "2024-03-05T10:00Z", "2024-03-05T11:00Z"
    rows = log(
        [
            ("2024-03-05T11:05Z", "request", "BTCUSDT", "sim", bar, "1", 4, 0.30),
            ("2024-03-05T11:00Z", "risk", "BTCUSDT", "sim", bar, "1", 4, 0.20),
            ("2024-03-05T12:00Z", "request", "BTCUSDT", "sim", later, "1", 4, 0.40),
            ("2024-03-05T12:30Z", "request", "BTCUSDT", "sim", later, "1", 4, 0.50),
            ("2024-03-05T12:30Z", "risk", "BTCUSDT", "sim", later, "2", 4, 0.60),
        ]
    )
    chosen = chosen_predictions(rows, "1").sort_values("as_of")
    assert chosen["p_flush"].tolist() == [0.20, 0.40]


def test_labels_are_joined_only_where_they_have_matured() -> None:
    from flushcast.simulator import simulate

    market = simulate("default", ["BTCUSDT"], days=40, seed=2).frame
    spec = LabelSpec(
        horizons=(4,), median_window_hours=240, min_trailing_hours=48, vol_window_hours=72
    )
    stamps = market["timestamp"].iloc[[-30, -10, -3]]
    predictions = log(
        [("2024-02-09T00:00Z", "risk", "BTCUSDT", "sim", t, "1", 4, 0.1) for t in stamps]
    )
    joined = join_labels(predictions, market, spec).set_index("as_of")
    truth = make_labels(market, spec).set_index("timestamp")[flush_column(4)]
    assert joined.loc[stamps.iloc[0], "flush"] == truth.loc[stamps.iloc[0]]
    assert joined.loc[stamps.iloc[1], "flush"] == pytest.approx(truth.loc[stamps.iloc[1]])
    assert np.isnan(joined.loc[stamps.iloc[2], "flush"])  # 3 of the 4 hours after it are known


def test_labels_are_made_at_the_models_bar_size() -> None:
    """At 4 h bars the 12 h label spans 3 bars; read as hourly it would span 12 (a wrong,
    later window: the live figures of a 4 h model were judged against it)."""
    from flushcast.simulator import simulate

    market = simulate("default", ["BTCUSDT"], days=60, seed=2, bar="4h").frame
    spec = LabelSpec(
        horizons=(12,), median_window_hours=240, min_trailing_hours=48, vol_window_hours=72
    )
    bar = pd.Timedelta("4h")
    stamps = market["timestamp"].iloc[-200:-4]
    predictions = log(
        [("2024-03-01T00:00Z", "risk", "BTCUSDT", "sim", t, "1", 12, 0.1) for t in stamps]
    )
    joined = join_labels(predictions, market, spec, bar).set_index("as_of")["flush"]
    truth = make_labels(market, spec, bar=bar).set_index("timestamp")[flush_column(12)]
    assert joined.notna().all() and truth.loc[stamps].sum() > 0
    np.testing.assert_array_equal(joined.loc[stamps].to_numpy(), truth.loc[stamps].to_numpy())
    hourly = make_labels(market, spec).set_index("timestamp")[flush_column(12)]
    assert not hourly.loc[stamps].fillna(-1).equals(truth.loc[stamps].fillna(-1))
