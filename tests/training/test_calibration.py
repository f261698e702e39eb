"""Calibration on synthetic scores that are a monotone distortion of a known probability."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import Calibrator
from training.metrics import ece


def _sample(n: int, a: float, b: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, n)
    return p, (rng.random(n) < p).astype(float)


def _verifies_at_20_percent(calibrated: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    near = (calibrated >= 0.15) & (calibrated < 0.25)
    assert near.sum() > 500
    return float(calibrated[near].mean()), float(y[near].mean())


def test_isotonic_undoes_a_nonlinear_distortion_with_plenty_of_data():
    p, y = _sample(60_000, 1.2, 6.0, seed=0)
    scores = p**0.3  # monotone, far from calibrated, not linear on the logit scale
    fit, test = slice(0, 30_000), slice(30_000, None)
    assert ece(y[test], scores[test]) > 0.2
    calibrator = Calibrator().fit(scores[fit], y[fit])
    assert calibrator.chosen == "isotonic"
    calibrated = calibrator.predict(scores[test])
    assert ece(y[test], calibrated) < 0.015
    forecast, observed = _verifies_at_20_percent(calibrated, y[test])
    assert forecast == pytest.approx(0.2, abs=0.02)
    assert observed == pytest.approx(forecast, abs=0.03)


def _distort(logit: np.ndarray) -> np.ndarray:
    """Underconfident and biased up: a 5 % event scores about 38 %."""
    return 1 / (1 + np.exp(-(0.5 * logit + 1.0)))


def test_platt_is_chosen_with_few_events_and_fixes_the_distortion():
    p, y = _sample(2_000, 1.0, 15.0, seed=1)
    assert y.sum() < 200  # too few events for isotonic steps to be trusted
    logit = np.log(p) - np.log1p(-p)
    calibrator = Calibrator().fit(_distort(logit), y)
    assert calibrator.chosen == "platt"
    p_new, y_new = _sample(60_000, 1.0, 15.0, seed=2)
    scores_new = _distort(np.log(p_new) - np.log1p(-p_new))
    calibrated = calibrator.predict(scores_new)
    assert ece(y_new, scores_new) > 0.1
    assert ece(y_new, calibrated) < 0.02
    forecast, observed = _verifies_at_20_percent(calibrated, y_new)
    assert observed == pytest.approx(forecast, abs=0.04)


def test_scores_outside_unit_interval_and_single_class():
    p, y = _sample(3_000, 1.0, 10.0, seed=3)
    raw = 5.0 * (np.log(p) - np.log1p(-p)) + 40.0  # an arbitrary real-valued margin
    calibrated = Calibrator("platt").fit(raw, y).predict(raw)
    assert ece(y, calibrated) < 0.03
    constant = Calibrator().fit(np.linspace(0, 1, 50), np.zeros(50))
    assert constant.chosen == "constant"
    assert np.all(constant.predict(np.array([0.0, 0.9])) < 1e-3)
    with pytest.raises(RuntimeError):
        Calibrator().predict(np.array([0.5]))


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_state_round_trips_through_json(method):
    import json

    p, y = _sample(5_000, 1.0, 10.0, seed=4)
    fitted = Calibrator(method).fit(p**0.5, y)
    restored = Calibrator.from_dict(json.loads(json.dumps(fitted.to_dict())))
    grid = np.linspace(0.0, 1.0, 101)
    assert restored.chosen == method
    np.testing.assert_array_equal(restored.predict(grid), fitted.predict(grid))
