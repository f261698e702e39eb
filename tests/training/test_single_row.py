"""One row through LightGBM's prepared single-row call (`models.single_row`): the numbers of
`Booster.predict`, bit for bit, without its per-call cost (issue 23)."""

from __future__ import annotations

import pickle
import threading

import lightgbm as lgb
import numpy as np
import pytest

from flushcast.models.config import FitConfig, make_candidate
from flushcast.models.learners import GradientBoosting
from flushcast.models.matrix import SYMBOL

COLUMNS = ["a", "b", "c", "d", SYMBOL]


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flush odds driven by `a` and `b`; missing values in `c`; two symbols (and an unknown)."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=(n, 4)), rng.integers(0, 2, n).astype(float)])
    X[rng.random(n) < 0.2, 2] = np.nan
    X[:: max(n // 10, 1), -1] = np.nan
    logit = -3.0 + 1.2 * X[:, 0] + 0.8 * X[:, 1] ** 2
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)


@pytest.fixture(scope="module", params=["lightgbm", "lightgbm_on_logistic"])
def model(request: pytest.FixtureRequest) -> GradientBoosting:
    X, y = _rows(4_000, seed=0)
    fit = FitConfig().model_copy(update={"min_negatives": 500})
    learner = make_candidate(request.param, COLUMNS, fit, ())
    assert isinstance(learner, GradientBoosting)
    return learner.fit(X, y)


def _batch(model: GradientBoosting, X: np.ndarray, contributions: bool) -> np.ndarray:
    """`Booster.predict` on the whole batch, then row by row the init model's terms as the
    learner adds them (the logistic's matrix product may round a batch differently)."""
    booster = model.booster
    assert booster is not None
    if contributions:
        out = booster.predict(X, pred_contrib=True, num_threads=1)
    else:
        out = booster.predict(X, raw_score=True, num_threads=1)
    if model.init is None:
        return out
    init = model.init.contributions if contributions else model.init.score
    return np.concatenate([out[i : i + 1] + init(X[i : i + 1]) for i in range(len(X))])


def test_one_row_is_the_batch_answer_bit_for_bit(model: GradientBoosting) -> None:
    X, _ = _rows(300, seed=1)
    scores, contributions = _batch(model, X, False), _batch(model, X, True)
    for i in range(len(X)):
        one = X[i : i + 1]
        assert model.score(one).shape == (1,)
        assert model.contributions(one).shape == (1, len(COLUMNS) + 1)
        assert model.score(one).tobytes() == scores[i : i + 1].tobytes()
        assert model.contributions(one).tobytes() == contributions[i : i + 1].tobytes()
    if model.init is None:  # and the whole batch answers alike
        assert model.score(X).tobytes() == scores.tobytes()


def test_one_row_skips_booster_predict(
    model: GradientBoosting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Booster.predict` costs ~40 µs a call around ~2 µs of work: one row never goes there."""
    X, _ = _rows(5, seed=2)
    expected = (model.score(X[:1]), model.contributions(X[:1]))

    def refused(self, data, *args, **kwargs):
        if len(data) == 1:
            raise AssertionError("one row went through Booster.predict")
        return original(self, data, *args, **kwargs)

    original = lgb.Booster.predict
    monkeypatch.setattr(lgb.Booster, "predict", refused)
    assert model.score(X[:1]).tobytes() == expected[0].tobytes()
    assert model.contributions(X[:1]).tobytes() == expected[1].tobytes()
    assert len(model.score(X)) == 5  # batches keep Booster.predict


def test_one_row_answers_are_their_own_arrays(model: GradientBoosting) -> None:
    """The prepared call reuses its buffers: an answer kept must not change with the next."""
    X, _ = _rows(2, seed=3)
    first, first_contributions = model.score(X[:1]), model.contributions(X[:1])
    kept = first.copy(), first_contributions.copy()
    model.score(X[1:]), model.contributions(X[1:])
    assert first.tobytes() == kept[0].tobytes()
    assert first_contributions.tobytes() == kept[1].tobytes()


def test_one_row_calls_from_threads_do_not_mix(model: GradientBoosting) -> None:
    """The service scores rows on its event loop and in a worker thread at the same time."""
    X, _ = _rows(64, seed=4)
    expected = _batch(model, X, True)
    wrong: list[int] = []

    def work(offset: int) -> None:
        for _ in range(20):
            for i in range(offset, len(X), 4):
                if model.contributions(X[i : i + 1]).tobytes() != expected[i : i + 1].tobytes():
                    wrong.append(i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_a_learner_with_prepared_calls_still_pickles_and_refits(model: GradientBoosting) -> None:
    """Prepared calls are C handles: a pickled learner (process pools, the cluster) drops them
    and prepares its own; a refit booster gets new ones."""
    X, y = _rows(4_000, seed=5)
    row = X[:1]
    before = model.score(row)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.score(row).tobytes() == before.tobytes()
    copy.rounds = 5
    copy.fit(X, y)
    assert copy.score(row).tobytes() == _batch(copy, row, False).tobytes()
    assert model.score(row).tobytes() == before.tobytes()
