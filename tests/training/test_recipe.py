"""One recipe: `train` is the walk-forward's fold recipe applied to every labelled row.

So `flushcast train` on data that ends at a fold's cutoff must ship exactly that fold's model:
the same out-of-fold rows (the calibration window measured from the cutoff), the same shares,
calibration and direction model, hence the same probabilities on the fold's test rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from flushcast.common.engine import InProcess
from flushcast.models.bundle import Bundle
from flushcast.models.direction import MODEL, DirectionCall
from flushcast.training.horizon import horizon_data
from flushcast.training.train import fit_bundle
from flushcast.training.walkforward import CHAMPION, calibrate_and_choose, out_of_fold

H = 4


@pytest.fixture(scope="module", params=["default", "lightgbm_rank", "two_part"])
def config(small_config, request):
    """A light recipe (the rule, not the skill, is under test) with a calibration window short
    enough to start inside the data, so where it is measured from matters; once more with the
    ranking candidate in the stack (its training blocks are a refit's own rows, so the final
    refit groups them as the fold did), and once as the two-part champion (the stack with it
    for the order, the default inputs for the level)."""
    rank = {
        "fit.candidates": [*small_config.fit.candidates, "lightgbm_rank"],
        "combination.inputs": [*small_config.combination.inputs, "lightgbm_rank"],
    }
    two_part = {**rank, "combination.level_inputs": list(small_config.combination.inputs)}
    settings = {"default": {}, "lightgbm_rank": rank, "two_part": two_part}[request.param]
    return small_config.with_overrides(
        {
            **settings,
            "fit.lightgbm.rounds": 20,
            "fit.direction.rounds": 10,
            "evaluation.baselines": ["liquidation_surprise"],
            "calibration.window_hours": 24 * 30,
        }
    )


@pytest.mark.parametrize("direction", ["model", "stack", "plausible"])
def test_train_on_data_ending_at_a_folds_cutoff_ships_that_folds_model(
    small_dataset, config, direction, tmp_path
):
    config = config.with_overrides({"combination.direction": direction})
    data = horizon_data(small_dataset, H)
    folds = data.folds(config)
    names = [*config.fit.candidates, "liquidation_surprise"]
    walk = calibrate_and_choose(data, folds, out_of_fold(data, folds, config, names), config)
    table = walk.folds.set_index("fold")
    scored = table.index[table["status"] == "scored"]
    f = int(scored[-2])  # a late fold: its window starts well inside the data
    fold = folds[f]
    assert fold.train_end - pd.Timedelta(hours=24 * 30) > data.keys["timestamp"].min()

    # Every labelled row before the cutoff, with its label: the fold's training rows exactly.
    before = small_dataset.table["timestamp"] < fold.train_end
    label = small_dataset.label.model_copy(update={"horizons": (H,)})
    until = dataclasses.replace(small_dataset, table=small_dataset.table[before], label=label)
    bundle = fit_bundle(until, config, runner=InProcess())
    model = bundle.horizons[H]
    assert model.choice["out_of_fold_episodes"] == table.loc[f, "oof_episodes"]
    assert model.choice["calibration_window"][1] == fold.train_end.tz_convert(None).isoformat()
    assert (model.choice["chosen"], model.choice["reason"]) == tuple(
        table.loc[f, ["champion", "choice"]]
    )  # the same rule (`stack`, `two_part`) on the same evidence, in the same words
    for name, share in model.choice["shares"].items():
        assert share == pytest.approx(table.loc[f, f"share_{name}"], rel=1e-9, abs=1e-12)
    for name, plausible in model.choice["plausibility"].items():
        assert plausible == pytest.approx(table.loc[f, f"plausible_{name}"], rel=1e-9)
    assert model.base_rate == pytest.approx(data.y[fold.train].mean(), rel=1e-12)

    mine = walk.frame["fold"] == f
    X = data.X[fold.test]
    np.testing.assert_allclose(model.p_flush(X), walk.frame.loc[mine, f"p_{CHAMPION}"], rtol=1e-9)
    np.testing.assert_allclose(model.p_long(X), walk.frame.loc[mine, "p_long"], rtol=1e-9)
    # The direction call is made of the same weights, and ships (saved and loaded) as is.
    for name, weight in model.choice["direction"]["weights"].items():
        assert weight == pytest.approx(table.loc[f, f"direction_{name}"], rel=1e-9, abs=1e-12)
    if direction != "model":
        assert isinstance(model.direction, DirectionCall)
        assert next(iter(model.choice["direction"]["weights"])) == MODEL
        saved = Bundle.load(bundle.save(tmp_path / "bundle"))
        np.testing.assert_allclose(saved.horizons[H].p_long(X), model.p_long(X), rtol=1e-12)


def test_a_refits_tree_candidates_bin_their_rows_once_and_nothing_outlives_the_refit(
    small_dataset, config, monkeypatch
):
    import lightgbm as lgb

    from flushcast.training.recipe import Refit, fit_members

    built = []
    init = lgb.Dataset.__init__
    monkeypatch.setattr(lgb.Dataset, "__init__", lambda *a, **k: built.append(1) or init(*a, **k))
    data = horizon_data(small_dataset, H)
    fold = data.folds(config)[-1]
    names = ["logistic", "lightgbm", "lightgbm_on_logistic"]
    first = fit_members(names, data, Refit.of_fold(fold), config)
    assert len(built) == 1  # one binning for both tree candidates
    again = fit_members(names, data, Refit.of_fold(fold), config)
    assert len(built) == 2  # a refit keeps no bins from an earlier one (no worker-global cache)
    X = data.X[fold.test]
    for name in names:
        np.testing.assert_array_equal(first[name].score(X), again[name].score(X))


def test_rows_of_a_run_are_a_view_and_any_other_rows_a_copy():
    from flushcast.training.recipe import rows_of

    a = np.arange(20.0).reshape(10, 2)
    run = rows_of(a, np.arange(2, 7))
    assert np.shares_memory(run, a)
    np.testing.assert_array_equal(run, a[np.arange(2, 7)])
    for rows in (np.array([1, 2, 4]), np.array([3, 2, 1]), np.array([], dtype=int)):
        picked = rows_of(a, rows)
        assert not np.shares_memory(picked, a)
        np.testing.assert_array_equal(picked, a[rows])


def test_a_refit_on_an_expanding_window_fits_the_same_members_without_copying_its_rows(
    small_dataset, config, monkeypatch
):
    """A fold's training rows are the run from the first row: the members read the model
    matrix itself, and fit exactly what they fit on a copy of those rows."""
    from flushcast.models.learners import Logistic
    from flushcast.training import recipe
    from flushcast.training.recipe import Refit, fit_members

    data = horizon_data(small_dataset, H)
    fold = data.folds(config)[-1]
    assert np.array_equal(fold.train, np.arange(len(fold.train)))
    seen = []
    fit = Logistic.fit
    monkeypatch.setattr(Logistic, "fit", lambda self, X, *a: seen.append(X) or fit(self, X, *a))
    names = [*config.fit.candidates, "liquidation_surprise"]
    viewed = fit_members(names, data, Refit.of_fold(fold), config)
    assert np.shares_memory(seen[-1], data.X)
    monkeypatch.setattr(recipe, "rows_of", lambda a, rows: a[rows])  # the copy it replaces
    copied = fit_members(names, data, Refit.of_fold(fold), config)
    assert not np.shares_memory(seen[-1], data.X)
    X = data.X[fold.test]
    for name in names:
        np.testing.assert_array_equal(viewed[name].score(X), copied[name].score(X))
