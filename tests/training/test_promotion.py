"""The promotion gate and the registry's champion/rollback aliases, on registered dummy versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from flushcast.training.registry import (
    CHAMPION,
    GATE_MIN_EPISODES,
    MODEL_NAME,
    ROLLBACK,
    beats_baselines,
    gate,
    promote,
    rollback,
)
from flushcast.training.tracking import tracking_uri as resolve


def _summary(
    pr: float = 0.12,
    skill: float = 0.02,
    fingerprint: str = "abc",
    edge: float = 0.02,
    interval: tuple[float, float] = (0.005, 0.04),
    episodes: int = 50,
    within: float = 0.03,
    within_interval: tuple[float, float] = (0.01, 0.05),
) -> dict:
    horizon = {
        "pr_auc": pr,
        "brier_skill": skill,
        "n_events": episodes,
        "best_baseline": "compact_logistic",
        "edge_over_best_baseline": edge,
        "edge_interval": list(interval),
        "roc_auc_within_fold": 0.6 + within,
        "best_baseline_roc_within_fold": "liquidation_surprise",
        "edge_roc_within_fold": within,
        "edge_roc_within_fold_interval": list(within_interval),
    }
    return {"fingerprint": fingerprint, "horizons": {"4": horizon, "12": dict(horizon)}}


def test_a_candidate_must_beat_the_strongest_baseline():
    assert beats_baselines(_summary()).promote
    worse = beats_baselines(_summary(edge=-0.01))
    assert not worse.promote and "does not beat compact_logistic" in worse.reason
    noisy = beats_baselines(_summary(interval=(-0.01, 0.05)))
    assert not noisy.promote and "not significant" in noisy.reason
    # With few episodes the interval cannot be expected to clear zero; the edge must be positive.
    few = _summary(interval=(-0.01, 0.05), episodes=GATE_MIN_EPISODES - 1)
    assert beats_baselines(few).promote
    # Even with no champion to beat.
    assert not gate(_summary(edge=-0.01), None).promote
    assert gate(_summary(), None).promote


def test_a_candidate_that_wins_pooled_but_loses_within_blocks_is_refused():
    """Pooled ranking can be won on the level alone (busy weeks scored higher); within blocks
    only the ranking of each week's flushes against its quiet bars counts."""
    losing = _summary(within=-0.02, within_interval=(-0.05, 0.01))
    assert beats_baselines(_summary(within=-0.02)).promote is False
    decision = gate(losing, None)
    assert not decision.promote
    assert "ROC-AUC within blocks 0.5800 does not beat liquidation_surprise" in decision.reason
    # A positive within-block edge whose interval reaches zero is not enough with 30 episodes,
    noisy = gate(_summary(within=0.01, within_interval=(-0.01, 0.03)), None)
    assert not noisy.promote
    assert "within-block ROC-AUC edge over liquidation_surprise +0.0100" in noisy.reason
    assert "not significant" in noisy.reason
    # ... and enough below them, where no interval can be expected to clear zero.
    few = _summary(within=0.01, within_interval=(-0.01, 0.03), episodes=GATE_MIN_EPISODES - 1)
    assert gate(few, None).promote
    # A version evaluated before the record held the within-block comparison is not promoted
    # on the pooled edge alone.
    old = _summary()
    for h in old["horizons"].values():
        del h["edge_roc_within_fold"], h["best_baseline_roc_within_fold"]
    assert "no within-block comparison recorded" in gate(old, None).reason
    passed = gate(_summary(), None)
    assert passed.promote and "pooled and within blocks" in passed.reason


def test_the_gate_names_what_the_champion_is_made_of():
    made = {"logistic": 0.6, "liquidation_surprise": 0.4, "lightgbm": 0.0}
    summary = _summary()
    for h in summary["horizons"].values():
        h["champion_shares"] = made
    decision = beats_baselines(summary)
    assert decision.promote and "4 h: logistic 0.60 + liquidation_surprise 0.40" in decision.reason
    # A champion that only copies a baseline earns no edge over it and is refused, by name.
    copy = _summary(edge=0.0)
    for h in copy["horizons"].values():
        h["champion_shares"] = {"liquidation_surprise": 1.0}
    refused = gate(copy, None)
    assert not refused.promote and "liquidation_surprise 1.00" in refused.reason
    noisy = _summary(interval=(-0.01, 0.05))
    for h in noisy["horizons"].values():
        h["champion_shares"] = made
    assert "not significant" in (reason := beats_baselines(noisy).reason)
    assert "logistic 0.60" in reason
    # A two-part champion (`combination.level_inputs`) is named with its rule.
    for h in summary["horizons"].values():
        h["champion_choices"] = {"two_part": 12}
    assert "4 h: logistic 0.60 + liquidation_surprise 0.40 (two_part)" in gate(summary, None).reason


def test_and_the_champion_on_the_same_evaluation():
    champion = _summary(pr=0.10)
    assert gate(_summary(pr=0.12), champion).promote
    assert not gate({}, champion).promote
    refused = gate(_summary(pr=0.10, skill=0.05), champion)
    assert not refused.promote and "no better ranking" in refused.reason
    worse_probabilities = gate(_summary(pr=0.12, skill=0.00), champion)
    assert not worse_probabilities.promote and "worse probabilities" in worse_probabilities.reason
    other_data = gate(_summary(pr=0.5, fingerprint="xyz"), champion)
    assert not other_data.promote and "different data" in other_data.reason


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def backend(request, tracking_uri) -> str:
    """The registry's database: SQLite (the default), and PostgreSQL in the slow tier."""
    if request.param == "sqlite":
        return tracking_uri
    return resolve(request.getfixturevalue("postgres_uri"))


@pytest.fixture
def registry(backend, request, tmp_path) -> tuple[str, str, MlflowClient]:
    """A registered model of its own with three versions, registered directly (no training)."""
    tracking_uri = backend
    name = f"{MODEL_NAME}-{request.node.name}"
    c = MlflowClient(tracking_uri)
    c.create_registered_model(name)
    for pr in (0.10, 0.10, 0.13):
        version = c.create_model_version(name, source=str(tmp_path / "model"))
        c.set_model_version_tag(name, version.version, "evaluation", json.dumps(_summary(pr=pr)))
    return tracking_uri, name, c


def _alias(c: MlflowClient, name: str, alias: str) -> str:
    return str(c.get_model_version_by_alias(name, alias).version)


def test_promote_moves_aliases_and_rollback_swaps_them(registry):
    uri, name, c = registry
    assert promote("1", name=name, tracking_uri=uri).promote
    assert _alias(c, name, CHAMPION) == "1"
    # Same metrics: no better. The champion stays.
    decision = promote("2", name=name, tracking_uri=uri)
    assert not decision.promote and "no better ranking" in decision.reason
    assert _alias(c, name, CHAMPION) == "1"
    assert promote("3", name=name, tracking_uri=uri).promote
    assert (_alias(c, name, CHAMPION), _alias(c, name, ROLLBACK)) == ("3", "1")
    assert rollback(name=name, tracking_uri=uri) == ("1", "3")
    assert (_alias(c, name, CHAMPION), _alias(c, name, ROLLBACK)) == ("1", "3")
    already = promote("1", name=name, tracking_uri=uri)
    assert not already.promote and "already the champion" in already.reason


def test_forcing_past_the_gate_is_recorded(registry):
    uri, name, c = registry
    assert promote("1", name=name, tracking_uri=uri).promote
    c.set_model_version_tag(name, "2", "evaluation", json.dumps(_summary(edge=-0.02)))
    refused = promote("2", name=name, tracking_uri=uri)
    assert not refused.promote and "does not beat" in refused.reason
    forced = promote("2", force=True, name=name, tracking_uri=uri)
    assert forced.promote and "forced" in forced.reason
    assert c.get_model_version(name, "2").tags["promotion_forced"] == "true"


def _promote_in_a_process(uri: str, name: str, version: str, go: Path) -> subprocess.Popen:
    """A process that gets ready (imports, registry connection), says so, waits for `go`, then
    promotes: two of them start their promotions within milliseconds of each other."""
    code = (
        "import sys, time, pathlib; from flushcast.training.registry import client, promote; "
        "client(sys.argv[3]).get_registered_model(sys.argv[2]); print('ready', flush=True); "
        "go = pathlib.Path(sys.argv[4])\n"
        "while not go.exists(): time.sleep(0.001)\n"
        "d = promote(sys.argv[1], name=sys.argv[2], tracking_uri=sys.argv[3]); "
        "print(d.promote, d.reason)"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, version, name, uri, str(go)],
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_promotions_at_once_are_taken_one_after_the_other(registry, tmp_path):
    """Two promotions racing on one registry: each sees the champion the other left, so the
    better version ends as champion and `rollback` names a real previous champion."""
    uri, name, c = registry
    c.set_model_version_tag(name, "2", "evaluation", json.dumps(_summary(pr=0.12)))
    assert promote("1", name=name, tracking_uri=uri).promote
    for _ in range(3):
        racing = [_promote_in_a_process(uri, name, v, tmp_path / "go") for v in ("2", "3")]
        assert [p.stdout.readline().strip() for p in racing] == ["ready", "ready"]
        (tmp_path / "go").touch()
        said = [p.communicate(timeout=120)[0].strip() for p in racing]
        assert all(p.returncode == 0 for p in racing), said
        assert _alias(c, name, CHAMPION) == "3", said
        # 2 then 3: 3 beats 2 and 2 is kept for rollback; 3 then 2: 2 is refused, 1 is kept.
        expected_rollback = "2" if said[0].startswith("True") else "1"
        assert _alias(c, name, ROLLBACK) == expected_rollback, said
        # Again from the same start.
        (tmp_path / "go").unlink()
        c.set_registered_model_alias(name, CHAMPION, "1")
        c.delete_registered_model_alias(name, ROLLBACK)


def test_a_version_still_being_registered_is_not_promoted(registry):
    uri, name, c = registry
    pending = c.create_model_version(name, source="file:///nowhere", await_creation_for=0)
    # A database store registers at once; put the version back mid-registration, as an
    # asynchronous registry (or a training killed between the two steps) leaves it.
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion

    with c._get_registry_client().store.ManagedSessionMaker() as session:
        session.query(SqlModelVersion).filter_by(name=name, version=int(pending.version)).update(
            {"status": "PENDING_REGISTRATION"}
        )
    decision = promote(str(pending.version), force=True, name=name, tracking_uri=uri)
    assert not decision.promote and "not fully registered" in decision.reason
