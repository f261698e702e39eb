"""The promotion gate and the registry's champion/rollback aliases."""

from __future__ import annotations

import json

import pytest

from models.lgbm import FitSpec
from training.evaluate import EvalSpec
from training.registry import (
    CHAMPION,
    MODEL_NAME,
    ROLLBACK,
    client,
    gate,
    load_bundle,
    promote,
    rollback,
)
from training.tracking import run_train


def _summary(pr: float, skill: float, fingerprint: str = "abc") -> dict:
    horizons = {
        "4": {"pr_auc": pr, "brier_skill": skill},
        "12": {"pr_auc": pr, "brier_skill": skill},
    }
    return {"fingerprint": fingerprint, "horizons": horizons}


def test_gate_rules():
    champion = _summary(0.10, 0.02)
    assert gate(_summary(0.12, 0.02), champion).promote
    assert gate(_summary(0.12, 0.02), None).promote
    assert not gate({}, champion).promote
    refused = gate(_summary(0.10, 0.05), champion)
    assert not refused.promote and "no better ranking" in refused.reason
    worse_probabilities = gate(_summary(0.12, 0.00), champion)
    assert not worse_probabilities.promote and "worse probabilities" in worse_probabilities.reason
    other_data = gate(_summary(0.5, 0.5, fingerprint="xyz"), champion)
    assert not other_data.promote and "different data" in other_data.reason


@pytest.fixture(scope="module")
def two_versions(small_dataset, tracking_uri) -> tuple[str, str]:
    spec = EvalSpec(horizons=(4,), n_boot=0)
    first, doc = run_train(small_dataset, spec, FitSpec(), uri=tracking_uri, experiment="gate")
    second, _ = run_train(small_dataset, spec, FitSpec(), uri=tracking_uri, experiment="gate")
    assert doc is not None
    return first.version, second.version


def test_promote_refuses_a_candidate_that_does_not_beat_the_champion(two_versions, tracking_uri):
    first, second = two_versions
    c = client(tracking_uri)
    assert promote(first, tracking_uri=tracking_uri).promote
    assert str(c.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == first
    # Same recipe, same data: identical metrics, so no better. The champion stays.
    decision = promote(second, tracking_uri=tracking_uri)
    assert not decision.promote and "no better ranking" in decision.reason
    assert str(c.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == first

    # A candidate whose recorded walk-forward metrics beat the champion's is promoted.
    tags = json.loads(c.get_model_version(MODEL_NAME, second).tags["evaluation"])
    tags["horizons"]["4"]["pr_auc"] += 0.01
    c.set_model_version_tag(MODEL_NAME, second, "evaluation", json.dumps(tags))
    assert promote(second, tracking_uri=tracking_uri).promote
    assert str(c.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == second
    assert str(c.get_model_version_by_alias(MODEL_NAME, ROLLBACK).version) == first

    assert rollback(tracking_uri=tracking_uri) == (first, second)
    assert str(c.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == first
    # Forcing past the gate works and is recorded on the version.
    c.set_model_version_tag(MODEL_NAME, second, "evaluation", json.dumps({}))
    assert not promote(second, tracking_uri=tracking_uri).promote
    assert promote(second, force=True, tracking_uri=tracking_uri).promote
    assert c.get_model_version(MODEL_NAME, second).tags["promotion_forced"] == "true"


def test_champion_bundle_loads_with_its_identity(two_versions, tracking_uri, small_dataset):
    bundle, identity = load_bundle(CHAMPION, tracking_uri=tracking_uri)
    assert identity.version in two_versions and identity.run_id
    assert bundle.evaluation["fingerprint"] == small_dataset.fingerprint()
    predicted = bundle.predict(small_dataset.table.tail(10))
    assert list(predicted.columns) == ["p_flush_4h", "p_long_flush_4h", "p_short_squeeze_4h"]
