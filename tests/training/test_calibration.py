"""The calibrator: probabilities that verify, and a ranking it can never reverse or erase."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flushcast.models.calibration import Calibrator
from flushcast.training.metrics import ece, roc_auc


def _sample(n: int, a: float, b: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, n)
    return p, (rng.random(n) < p).astype(float)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(2, 400),
    rate=st.floats(0.01, 0.6),
    direction=st.sampled_from([-3.0, -0.5, 0.0, 0.5, 3.0]),
    seed=st.integers(0, 10_000),
    level=st.sampled_from(["fitted", "prior"]),
)
def test_calibrated_scores_never_reverse_or_tie_the_raw_order(n, rate, direction, seed, level):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=n)
    y = rng.random(n) < 1 / (1 + np.exp(-(_logit(np.array(rate)) + direction * scores)))
    y = y.astype(float)
    y[0], y[-1] = 1.0, 0.0  # both classes, however few
    calibrator = Calibrator.fit(scores, y, prior=0.03, level=level)
    # Strictly increasing over the scores' range and three spreads beyond it (further out the
    # sigmoid runs out of float precision: there it may only flatten, never turn down).
    spread = float(scores.std()) or 1.0
    reach = np.linspace(scores.min() - 3 * spread, scores.max() + 3 * spread, 50)
    grid = np.sort(np.concatenate([scores, reach]))
    p = calibrator.predict(grid)
    assert np.all(np.diff(p)[np.diff(grid) > 0] > 0)
    assert np.all((p > 0) & (p < 1))
    far = calibrator.predict(np.linspace(-1e3, 1e3, 50))  # where floats run out: never down
    assert np.all(np.diff(far) >= 0)


@pytest.mark.parametrize("isotonic_min_class", [1, 10**9])
def test_the_level_is_the_prior_not_the_calibration_rows_rate(isotonic_min_class):
    """Busy calibration weeks (12 % flushes) before a fold whose training rate is 3 %: the
    fitted map forecasts the busy rate, the prior-level map the training rate, same ranking."""
    p, y = _sample(4_000, 1.2, 9.0, seed=5)
    scores = _logit(p)
    kwargs = dict(prior=0.03, episodes=400, folds=20, isotonic_min_class=isotonic_min_class)
    fitted = Calibrator.fit(scores, y, level="fitted", **kwargs)
    anchored = Calibrator.fit(scores, y, level="prior", **kwargs)
    assert fitted.predict(scores).mean() == pytest.approx(y.mean(), abs=0.02)
    assert anchored.predict(scores).mean() == pytest.approx(0.03, abs=1e-6)
    order = np.argsort(scores)
    assert np.all(np.diff(anchored.predict(scores[order])) >= 0)
    assert roc_auc(y, anchored.predict(scores)) == pytest.approx(roc_auc(y, scores))


def test_an_anti_ranking_fold_keeps_its_ranking_instead_of_flipping():
    """Defect 2 of issue 15: a free-sign Platt slope turned a raw ROC of 0.90 into 0.10."""
    rng = np.random.default_rng(0)
    # Out-of-fold scores that anti-rank (a regime change) ...
    oof = rng.normal(size=2000)
    y_oof = (rng.random(2000) < 1 / (1 + np.exp(-(-3 - 1.5 * oof)))).astype(float)
    # ... while the test week ranks well.
    test = rng.normal(size=500)
    y_test = (rng.random(500) < 1 / (1 + np.exp(-(-3 + 2.0 * test)))).astype(float)
    calibrator = Calibrator.fit(oof, y_oof)
    assert calibrator.a > 0
    p = calibrator.predict(test)
    assert roc_auc(y_test, p) == pytest.approx(roc_auc(y_test, test))
    assert roc_auc(y_test, test) > 0.8
    assert np.ptp(p) > 0  # near-flat (no held-out skill), but never a constant


def test_one_event_is_enough_to_stay_monotone_and_is_shrunk_to_the_prior():
    scores = np.linspace(-2, 2, 200)
    y = np.zeros(200)
    y[150] = 1.0
    calibrator = Calibrator.fit(scores, y, prior=0.02)
    p = calibrator.predict(scores)
    assert np.all(np.diff(p) > 0)
    assert calibrator.weight == pytest.approx(1 / 11)
    # Mostly the prior: one event says little.
    assert abs(p.mean() - 0.02) < abs(p.mean() - y.mean()) + 0.01
    with pytest.raises(ValueError, match="both flushes and quiet bars"):
        Calibrator.fit(scores, np.zeros(200))


def test_a_busy_week_alone_is_shrunk_to_the_prior_more_than_many_weeks():
    """Five episodes from one cascade week say what that week's rate was, not the next one's.

    The rows here flush at 30 %, the training base rate is 5 %: from one fold the forecast stays
    near the prior, from twenty folds of the same evidence it follows the rows.
    """
    rng = np.random.default_rng(3)
    scores = rng.normal(size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-(-1.0 + scores)))).astype(float)
    one = Calibrator.fit(scores, y, prior=0.05, episodes=5, folds=1)
    many = Calibrator.fit(scores, y, prior=0.05, episodes=5, folds=20)
    uncounted = Calibrator.fit(scores, y, prior=0.05, episodes=5)
    assert one.weight == pytest.approx(5 / 15 * 1 / 5)
    assert many.weight == pytest.approx(5 / 15 * 20 / 24)
    assert uncounted.weight == pytest.approx(5 / 15)
    p_one, p_many = one.predict(scores), many.predict(scores)
    assert abs(p_one.mean() - 0.05) < 0.03 < abs(p_many.mean() - 0.05)
    assert np.all(np.diff(p_one[np.argsort(scores)]) > 0)  # still strictly increasing


def test_platt_fixes_a_distortion_with_few_events():
    p, y = _sample(2_000, 1.0, 15.0, seed=1)
    assert y.sum() < 200  # too few for the isotonic part
    distorted = 0.5 * _logit(p) + 1.0  # underconfident and biased up
    calibrator = Calibrator.fit(distorted, y, shrinkage_episodes=0)
    assert calibrator.kind == "platt"
    p_new, y_new = _sample(60_000, 1.0, 15.0, seed=2)
    calibrated = calibrator.predict(0.5 * _logit(p_new) + 1.0)
    assert ece(y_new, calibrated) < 0.02
    near = (calibrated >= 0.15) & (calibrated < 0.25)
    assert near.sum() > 500
    assert y_new[near].mean() == pytest.approx(calibrated[near].mean(), abs=0.04)


def test_many_events_add_an_isotonic_fit_for_a_nonlinear_distortion():
    p, y = _sample(60_000, 1.2, 6.0, seed=0)
    scores = np.cbrt(_logit(p))  # monotone, not linear on any logit scale
    fit, test = slice(0, 30_000), slice(30_000, None)
    platt = Calibrator.fit(scores[fit], y[fit], isotonic_min_class=10**9)
    blend = Calibrator.fit(scores[fit], y[fit])
    assert blend.kind == "blend" and platt.kind == "platt"
    assert ece(y[test], blend.predict(scores[test])) < ece(y[test], platt.predict(scores[test]))
    assert ece(y[test], blend.predict(scores[test])) < 0.02
    assert np.all(np.diff(blend.predict(np.sort(scores[test]))) >= 0)


@pytest.mark.parametrize("isotonic_min_class", [1, 10**9])
def test_state_round_trips_through_json(isotonic_min_class):
    p, y = _sample(5_000, 1.0, 10.0, seed=4)
    fitted = Calibrator.fit(_logit(p), y, isotonic_min_class=isotonic_min_class, level="prior")
    assert fitted.shift != 0
    restored = Calibrator.from_dict(json.loads(json.dumps(fitted.to_dict())))
    grid = np.linspace(-5.0, 5.0, 101)
    assert restored == fitted
    np.testing.assert_array_equal(restored.predict(grid), fitted.predict(grid))
    np.testing.assert_array_equal(Calibrator.identity().predict(p[:5]), p[:5])


def test_the_isotonic_part_reads_its_thresholds_as_arrays_made_once(monkeypatch):
    """`np.interp` converts tuples at every call (17 µs for 150 thresholds, issue 23): a blend
    calibrator converts its thresholds once, and answers as with the tuples, also after
    `for_scores` (a new calibrator: its own arrays)."""
    import flushcast.models.calibration as calibration

    p, y = _sample(20_000, 1.2, 6.0, seed=5)
    blend = Calibrator.fit(_logit(p), y, level="prior")
    assert blend.kind == "blend"
    grid = np.linspace(-5.0, 5.0, 101)
    expected = (
        blend.weight
        * calibration._sigmoid(
            calibration._logit(
                (1 - calibration.ISOTONIC_SHARE) * calibration._sigmoid(blend.a * grid + blend.b)
                + calibration.ISOTONIC_SHARE * np.interp(grid, blend.iso_x, blend.iso_y)
            )
            + blend.shift
        )
        + (1 - blend.weight) * blend.prior
    )
    given: list[object] = []
    interp = np.interp

    def spy(x, xp, fp, *args, **kwargs):
        given.extend([xp, fp])
        return interp(x, xp, fp, *args, **kwargs)

    monkeypatch.setattr(calibration.np, "interp", spy)
    np.testing.assert_array_equal(blend.predict(grid), expected)
    np.testing.assert_array_equal(blend.predict(grid[:1]), expected[:1])
    assert all(isinstance(a, np.ndarray) for a in given)
    assert given[0] is given[2]  # made once
    moved = blend.for_scores(1.0, 2.0)
    np.testing.assert_array_equal(moved.predict(2.0 * grid + 1.0), expected)


@pytest.mark.parametrize("seed", range(6))
def test_the_isotonic_fit_is_scikit_learns_to_the_last_bit(seed):
    """`isotonic` replaces scikit-learn's fit for speed: the same thresholds, ties, scores
    closer than numpy's resolution and one-class stretches included."""
    from sklearn.isotonic import IsotonicRegression

    from flushcast.models.calibration import isotonic

    rng = np.random.default_rng(seed)
    for n in (2, 50, 3000, 20000):
        x = rng.standard_normal(n)
        x = (np.round(x, 1), x, x * 1e-14, np.r_[x[: n // 2], x[: n - n // 2]])[seed % 4]
        y = (rng.random(n) < 1 / (1 + np.exp(-2 * x / (np.std(x) or 1)))).astype(float)
        expected = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        iso_x, iso_y = isotonic(x, y)
        assert np.array_equal(iso_x, expected.X_thresholds_)
        assert np.array_equal(iso_y, expected.y_thresholds_)
