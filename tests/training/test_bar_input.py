"""The bar size as a model input: built in one place (`models.matrix`), by the bundle for every
row it scores, so a model trained across bar sizes serves, reports and predicts like any other.

The end-to-end path (`flushcast train --train-store`, then /predict, a report and the notebook
API on that version) is `tests/test_cross_bar_journey.py` (slow).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from flushcast.features.registry import FEATURES, max_lookback, names_at
from flushcast.models.bundle import Bundle, BundleMismatch, HorizonModel
from flushcast.models.calibration import Calibrator
from flushcast.models.learners import GradientBoosting
from flushcast.models.matrix import BAR_HOURS, BAR_HOURS_DESCRIPTION, SYMBOL, columns, model_matrix
from flushcast.training.labels import flush_column

FOUR = 4.0


@pytest.fixture(scope="module")
def mixed(small_dataset):
    """The small market's 12 h rows as a table of two bar sizes (a `bar_hours` column, as
    `training.dataset.mixed` makes), with flushes far likelier at one of them, and a booster
    that learned that."""
    rows = small_dataset.labelled(12)
    # A mixed dataset learns the features built at the tested (4 h) bar (`names_at`).
    built = set(names_at(pd.Timedelta(hours=FOUR)))
    features = [name for name in small_dataset.features if name in built]
    rng = np.random.default_rng(0)
    bars = np.where(rng.random(len(rows)) < 0.5, 1.0, FOUR)
    table = rows.assign(**{BAR_HOURS: bars})
    y = table[flush_column(12)].to_numpy(dtype="float64")
    y = np.where(bars == FOUR, np.maximum(y, rng.random(len(y)) < 0.3), y)  # busier at 4 h
    trained = [*features, BAR_HOURS]
    known = small_dataset.symbols()
    X = model_matrix(table, trained, known)
    params = {"objective": "binary", "num_leaves": 4, "learning_rate": 0.2, "verbose": -1}
    learner = GradientBoosting(columns(trained), params, 20).fit(X, y)
    calibrator = Calibrator.fit(learner.score(X), y)
    bundle = Bundle(
        horizons={12: HorizonModel(12, learner, calibrator, None, float(y.mean()))},
        features=trained,  # as `train` passes a mixed dataset's features
        lookbacks={name: FEATURES[name].lookback for name in features} | {BAR_HOURS: 0},
        max_lookback=max_lookback(pd.Timedelta(hours=FOUR)),
        symbols=known,
        label={},
        fit={},
        bar_hours=FOUR,
    )
    return bundle, table, X


def test_the_bundle_keeps_the_bar_size_as_its_own_input_not_a_feature(mixed):
    bundle, _, _ = mixed
    assert bundle.bar_input and BAR_HOURS not in bundle.features
    assert set(bundle.features) <= set(FEATURES) and BAR_HOURS not in bundle.lookbacks
    # The same column order the learners were trained on: features, bar size, symbol.
    assert bundle.columns == [*bundle.features, BAR_HOURS, SYMBOL]
    assert bundle.horizons[12].learner.columns == bundle.columns
    bundle.check_features(FEATURES, max_lookback(bundle.bar))  # servable


def test_a_feature_table_of_the_served_bar_is_scored_at_that_bar(mixed):
    bundle, table, X = mixed
    features = table.drop(columns=[BAR_HOURS])  # what build_features makes: no bar column
    at_four = table[BAR_HOURS].to_numpy() == FOUR
    np.testing.assert_array_equal(bundle.matrix(features)[at_four], X[at_four])
    values = features[bundle.features].to_numpy(dtype="float64")
    symbols = features["symbol"].astype(str).tolist()
    np.testing.assert_array_equal(bundle.matrix_from(values, symbols), bundle.matrix(features))
    # A training table's own bar column is read where it has one.
    np.testing.assert_array_equal(bundle.matrix(table), X)
    # The input matters: the same rows read as hourly bars score differently.
    model = bundle.horizons[12]
    hourly = bundle.matrix(features.assign(**{BAR_HOURS: 1.0}))
    assert not np.allclose(model.log_odds(hourly), model.log_odds(bundle.matrix(features)))


def test_the_bar_input_survives_save_and_load(mixed, tmp_path):
    bundle, table, _ = mixed
    features = table.drop(columns=[BAR_HOURS])
    loaded = Bundle.load(bundle.save(tmp_path / "bundle"))
    manifest = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert manifest["bar_input"] is True and BAR_HOURS not in manifest["features"]
    assert loaded.bar_input and loaded.columns == bundle.columns
    pd.testing.assert_frame_equal(loaded.predict(features), bundle.predict(features))
    contributions = loaded.contributions(features, 12)
    assert list(contributions.columns) == [*bundle.columns, "base_value"]
    np.testing.assert_allclose(
        contributions.sum(axis=1), loaded.horizons[12].log_odds(loaded.matrix(features))
    )


def test_a_bundle_saved_with_the_bar_size_among_its_features_still_loads(mixed, tmp_path):
    """The previous layout (bar_hours listed as a feature, no `bar_input`) reads the same."""
    bundle, table, _ = mixed
    folder = bundle.save(tmp_path / "old")
    manifest = json.loads((folder / "bundle.json").read_text())
    manifest["features"] = [*manifest["features"], BAR_HOURS]
    manifest["lookbacks"][BAR_HOURS] = 0
    del manifest["bar_input"]
    (folder / "bundle.json").write_text(json.dumps(manifest))
    from flushcast.models import integrity

    integrity.record(folder)
    loaded = Bundle.load(folder)
    assert loaded.bar_input and loaded.features == bundle.features
    features = table.drop(columns=[BAR_HOURS])
    pd.testing.assert_frame_equal(loaded.predict(features), bundle.predict(features))
    # Anywhere but last it would not be the column the learners read: refused, not misread.
    with pytest.raises(BundleMismatch, match="must be the last feature"):
        dataclasses.replace(bundle, features=[BAR_HOURS, *bundle.features], bar_input=False)
    manifest["features"] = [BAR_HOURS, *manifest["features"][:-1]]
    (folder / "bundle.json").write_text(json.dumps(manifest))
    integrity.record(folder)
    with pytest.raises(BundleMismatch):
        Bundle.load(folder)


def test_the_service_explains_the_bar_size_input(mixed):
    from flushcast.forecast.identity import ModelIdentity
    from flushcast.serving.endpoints import ServedPredictor as Predictor
    from flushcast.serving.requests import ExplainRequest

    bundle, table, _ = mixed
    predictor = Predictor(bundle, ModelIdentity(model_name="m", model_version="1", run_id="r"))
    row = table[table["symbol"].astype(str) == "BTCUSDT"].iloc[-1]
    features = {n: None if pd.isna(row[n]) else float(row[n]) for n in FEATURES}
    answer = predictor.explain(
        ExplainRequest.model_validate(
            {"symbol": "BTCUSDT", "venue": "sim", "features": features, "horizon": 12}
        )
    )
    (horizon,) = answer.horizons
    by_name = {c.feature: c for c in horizon.contributions}
    assert by_name[BAR_HOURS].value == FOUR
    assert by_name[BAR_HOURS].description == BAR_HOURS_DESCRIPTION
    assert by_name[SYMBOL].value == "BTCUSDT"
    assert by_name[SYMBOL].description.startswith("The traded symbol; the model is pooled over")
    assert by_name["funding_z_30d"].description == FEATURES["funding_z_30d"].description
    total = sum(c.contribution for c in horizon.contributions) + horizon.base_value
    assert total == pytest.approx(horizon.log_odds)
