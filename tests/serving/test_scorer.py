"""The forecast layer's scores (the serving fast path) against the bundle and against SHAP's
own TreeSHAP implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap

from flushcast.forecast.predictor import Predictor as Scorer
from flushcast.models import integrity
from flushcast.models.bundle import Bundle, BundleMismatch
from flushcast.models.learners import GradientBoosting


@pytest.fixture(scope="module")
def rows(table: pd.DataFrame) -> pd.DataFrame:
    """Recent rows of both symbols, some with an unseen symbol, one with every feature NaN."""
    rows = table.tail(300).reset_index(drop=True)
    rows["symbol"] = rows["symbol"].astype(str)
    rows.loc[:19, "symbol"] = "SOLUSDT"
    rows.loc[20, rows.columns[3:]] = np.nan
    return rows


@pytest.fixture(scope="module")
def scorer(service) -> Scorer:
    return service.predictor.model


def test_scores_equal_the_bundle(scorer: Scorer, rows: pd.DataFrame) -> None:
    bundle = scorer.bundle
    X = scorer.matrix(rows[bundle.features].to_numpy(), rows["symbol"].tolist())
    expected = bundle.predict(rows)
    for h in bundle.horizons:
        scores = scorer.scores(X, h)
        np.testing.assert_array_equal(scores.p_flush, expected[f"p_flush_{h}h"].to_numpy())
        np.testing.assert_array_equal(scores.p_long, expected[f"p_long_flush_{h}h"].to_numpy())
        np.testing.assert_array_equal(
            scorer.contributions(X, h), bundle.contributions(rows, h).to_numpy()
        )


def test_contributions_are_exact_treeshap(scorer: Scorer, rows: pd.DataFrame) -> None:
    """The trees' part of every explanation against SHAP's own C++ TreeSHAP on the parsed trees.

    SHAP's tree parser sends NaN down the default branch everywhere, while LightGBM reads NaN
    as 0 for a feature it never saw missing; rows with such NaNs are compared on additivity only.
    A linear init model's part is coefficient × standardised value, checked by additivity.
    """
    bundle = scorer.bundle
    X = scorer.matrix(rows[bundle.features].to_numpy(), rows["symbol"].tolist())
    zero = [bundle.columns.index(f) for f in scorer.read_as_zero]
    comparable = ~np.isnan(X[:, zero]).any(axis=1) if zero else np.ones(len(X), bool)
    for h, model in bundle.horizons.items():
        contributions = scorer.contributions(X, h)
        np.testing.assert_allclose(
            contributions.sum(axis=1), scorer.scores(X, h).log_odds, atol=1e-9
        )
        learner = model.learner
        if not isinstance(learner, GradientBoosting):
            continue
        trees = contributions
        if learner.init is not None:
            trees = contributions - learner.init.contributions(X)
        explainer = shap.TreeExplainer(learner.booster)
        # Otherwise SHAP hands LightGBM boosters back to pred_contrib: force its own algorithm.
        explainer.model.model_type = "internal"
        reference = explainer.shap_values(X[comparable])
        np.testing.assert_allclose(trees[comparable, :-1], reference, atol=1e-9)
        np.testing.assert_allclose(trees[:, -1], np.ravel(explainer.expected_value)[0], atol=1e-9)
        assert np.abs(reference).max() > 0.01  # the check compares real attributions


def test_nan_is_read_as_zero_only_where_training_never_had_one(
    scorer: Scorer, rows: pd.DataFrame
) -> None:
    bundle = scorer.bundle
    X = scorer.matrix(rows[bundle.features].to_numpy()[:50], rows["symbol"].tolist()[:50])
    assert set(scorer.read_as_zero) <= set(bundle.features)
    for name in bundle.features:
        j = bundle.columns.index(name)
        missing, zero = X.copy(), X.copy()
        missing[:, j], zero[:, j] = np.nan, 0.0
        same = all(
            np.array_equal(scorer.scores(missing, h).log_odds, scorer.scores(zero, h).log_odds)
            for h in bundle.horizons
        )
        if name in scorer.read_as_zero:
            assert same, name


def test_unknown_symbol_is_routed_as_missing(scorer: Scorer, rows: pd.DataFrame) -> None:
    features = rows[scorer.bundle.features].to_numpy()[:1]
    X_new = scorer.matrix(features, ["SOLUSDT"])
    X_missing = scorer.matrix(features, ["BTCUSDT"])
    X_missing[:, -1] = np.nan
    assert not scorer.knows("SOLUSDT") and scorer.knows("BTCUSDT")
    h = min(scorer.bundle.horizons)
    assert scorer.scores(X_new, h).log_odds == scorer.scores(X_missing, h).log_odds


def test_a_bundle_whose_boosters_disagree_with_its_features_is_refused(
    scorer: Scorer, tmp_path
) -> None:
    import json

    folder = scorer.bundle.save(tmp_path / "bundle")
    manifest = json.loads((folder / "bundle.json").read_text())
    manifest["features"] = manifest["features"][::-1]
    (folder / "bundle.json").write_text(json.dumps(manifest))
    integrity.record(folder)  # a consistent record: the columns themselves must be checked
    with pytest.raises(BundleMismatch, match="input columns"):
        Bundle.load(folder)
