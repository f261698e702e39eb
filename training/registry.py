"""The MLflow model registry: where bundles are registered, promoted and rolled back.

A model version is promoted by moving the `champion` alias, never by stages. The previous
champion keeps the `rollback` alias, so `flushcast rollback` is one alias move. Promotion is
gated on the walk-forward evaluation recorded with each version: the candidate must beat the
strongest simple baseline, pooled and within test blocks, and the champion on the same
evaluation (same data, label and splits: equal `evaluation` fingerprints), or the promotion
must be forced, and a forced promotion says so in the version's tags.
"""

from __future__ import annotations

import fcntl
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from flushcast.forecast.identity import ModelIdentity
from flushcast.models.bundle import Bundle
from flushcast.models.pyfunc import bundle_folder
from flushcast.training.record import champion_made_of

MODEL_NAME = "flushcast"
CHAMPION = "champion"
ROLLBACK = "rollback"
GATE_TOLERANCE = 0.005
"""Brier skill a candidate may lose against the champion while winning on PR-AUC."""
GATE_MIN_EPISODES = 30
"""Flush episodes at a horizon from which the edge over the best baseline must be significant."""
PROMOTION_LOCK = 0x666C7573
"""The PostgreSQL advisory lock promotions and rollbacks take ("flus")."""
SCHEMA_LOCK = PROMOTION_LOCK + 1
"""The one a new database's tables are created under."""


class RegistryError(RuntimeError):
    """A registry request that cannot be carried out (no such version, gate refused, ...)."""


def client(tracking_uri: str | None = None) -> MlflowClient:
    """A registry client on `tracking_uri` (default: MLflow's own default, `sqlite:///mlflow.db`)."""
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient()


def _version(c: MlflowClient, name: str, ref: str) -> Any:
    """A model version by number or alias."""
    try:
        if ref.isdigit():
            return c.get_model_version(name, ref)
        return c.get_model_version_by_alias(name, ref)
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version or alias {ref!r}") from exc


def download_bundle(
    ref: str, dst: Path, name: str = MODEL_NAME, tracking_uri: str | None = None
) -> tuple[ModelIdentity, Path]:
    """Download a version (number or alias) into `dst`; its identity and bundle folder."""
    c = client(tracking_uri)
    version = _version(c, name, ref)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}/{version.version}", dst_path=str(dst)
    )
    return ModelIdentity(
        model_name=name, model_version=str(version.version), run_id=version.run_id
    ), bundle_folder(local)


def load_bundle(
    ref: str = CHAMPION, name: str = MODEL_NAME, tracking_uri: str | None = None
) -> tuple[Bundle, ModelIdentity]:
    """A registered version's bundle, loaded into memory (the download is removed)."""
    with tempfile.TemporaryDirectory(prefix="flushcast-model-") as tmp:
        identity, folder = download_bundle(ref, Path(tmp), name, tracking_uri)
        return Bundle.load(folder), identity


def evaluation_summary(c: MlflowClient, name: str, version: str) -> dict[str, Any]:
    """The walk-forward summary recorded on a version (empty if it was never evaluated)."""
    tags = c.get_model_version(name, version).tags
    return json.loads(tags["evaluation"]) if "evaluation" in tags else {}


def _score(summary: dict[str, Any]) -> tuple[float, float]:
    """Mean champion PR-AUC and mean Brier skill over the evaluated horizons."""
    horizons = summary["horizons"]
    pr = [h["pr_auc"] or 0.0 for h in horizons.values()]
    skill = [h["brier_skill"] or 0.0 for h in horizons.values()]
    return sum(pr) / len(pr), sum(skill) / len(skill)


@dataclass(frozen=True)
class Decision:
    """The outcome of the promotion gate and why."""

    promote: bool
    reason: str


def beats_baselines(candidate: dict[str, Any]) -> Decision:
    """Does the candidate beat the strongest simple baseline at every horizon, pooled and
    within test blocks?

    Pooled: its PR-AUC must exceed the best baseline's. Within blocks: its ROC-AUC within test
    blocks (each week's flushes ranked against the same week's quiet bars) must exceed that of
    the baseline strongest there, so a champion that only learned which weeks are busy, or
    wins pooled on the level alone, is refused. Where the test span holds at least
    GATE_MIN_EPISODES flush episodes, each edge's 95 % block-bootstrap interval must lie above
    zero (pooled: 72-hour stretches resampled; within blocks: test blocks): a model that cannot
    show it beats a simple recipe is not worth its complexity.
    """
    for key, h in sorted(candidate["horizons"].items(), key=lambda kv: int(kv[0])):
        for test in (_pooled_edge, _within_block_edge):
            refusal = test(key, h)
            if refusal:
                return Decision(False, f"{key} h: {refusal} ({composition(candidate)})")
    return Decision(
        True,
        "beats the best baseline at every horizon, pooled and within blocks "
        f"({composition(candidate)})",
    )


def _pooled_edge(key: str, h: dict[str, Any]) -> str | None:
    """Why one horizon's pooled PR-AUC edge fails the gate (None: it passes)."""
    edge, best = h.get("edge_over_best_baseline"), h.get("best_baseline")
    if edge is None or best is None:
        return "no baseline comparison recorded"
    if edge <= 0:
        return f"PR-AUC {h['pr_auc']:.4f} does not beat {best} ({edge:+.4f})"
    return _significance(f"edge over {best}", edge, h.get("edge_interval"), h["n_events"])


def _within_block_edge(key: str, h: dict[str, Any]) -> str | None:
    """Why one horizon's within-block ROC-AUC edge fails the gate (None: it passes)."""
    edge, best = h.get("edge_roc_within_fold"), h.get("best_baseline_roc_within_fold")
    if edge is None or best is None:
        return (
            "no within-block comparison recorded (evaluated before the gate compared ROC-AUC "
            "within blocks: retrain, or --force)"
        )
    if edge <= 0:
        mine = h.get("roc_auc_within_fold")
        shown = "n/a" if mine is None else f"{mine:.4f}"
        return f"ROC-AUC within blocks {shown} does not beat {best} ({edge:+.4f})"
    return _significance(
        f"within-block ROC-AUC edge over {best}",
        edge,
        h.get("edge_roc_within_fold_interval"),
        h["n_events"],
    )


def _significance(what: str, edge: float, interval: Any, episodes: int) -> str | None:
    """Refusal when `episodes` are enough to ask for an interval above zero and it is not."""
    if episodes < GATE_MIN_EPISODES:
        return None
    if interval and interval[0] is not None and interval[0] > 0:
        return None
    low = "n/a" if not interval or interval[0] is None else f"{interval[0]:+.4f}"
    return f"{what} {edge:+.4f} is not significant (95 % interval from {low}, {episodes} episodes)"


def composition(summary: dict[str, Any]) -> str:
    """What the champion is made of, per horizon: `4 h: logistic 0.40 + lightgbm 0.35 …`."""
    parts = []
    for key, h in sorted(summary.get("horizons", {}).items(), key=lambda kv: int(kv[0])):
        made = champion_made_of(h.get("champion_shares") or {}, h.get("champion_choices") or {})
        parts.append(f"{key} h: {made or 'not recorded'}")
    return "champion made of " + "; ".join(parts)


def gate(candidate: dict[str, Any], champion: dict[str, Any] | None) -> Decision:
    """Should the candidate replace the champion? Both are `EvaluationRecord.summary()` dicts.

    Beats means: it beats the strongest baseline pooled and within blocks (`beats_baselines`);
    and, if there is a champion, it was evaluated on the same data, label and splits, has a
    higher mean PR-AUC over the horizons, and a mean Brier skill no more than GATE_TOLERANCE
    lower (ranking gains bought with worse probabilities are refused).
    """
    if not candidate:
        return Decision(False, "the candidate has no walk-forward evaluation")
    baseline = beats_baselines(candidate)
    if not baseline.promote:
        return baseline
    if not champion:
        return Decision(True, f"no champion yet; {baseline.reason}")
    if candidate["fingerprint"] != champion["fingerprint"]:
        return Decision(
            False,
            "the champion was evaluated on different data, label or splits "
            f"({champion['fingerprint']} vs {candidate['fingerprint']}); "
            "retrain both on the same store, or --force",
        )
    if sorted(candidate["horizons"]) != sorted(champion["horizons"]):
        return Decision(False, "the candidate and champion cover different horizons; or --force")
    (pr_new, skill_new), (pr_old, skill_old) = _score(candidate), _score(champion)
    figures = (
        f"mean PR-AUC {pr_new:.4f} vs {pr_old:.4f}, Brier skill {skill_new:.4f} vs {skill_old:.4f}"
    )
    if pr_new <= pr_old:
        return Decision(False, f"no better ranking: {figures}")
    if skill_new < skill_old - GATE_TOLERANCE:
        return Decision(False, f"worse probabilities: {figures}")
    return Decision(True, f"beats the champion ({figures}) and {baseline.reason}")


@contextmanager
def one_at_a_time(uri: str, key: int = PROMOTION_LOCK) -> Iterator[None]:
    """Work on one registry database that must not interleave with another process's.

    Promotions and rollbacks each read the aliases, decide, then move them; two interleaved
    would lose one's move (a version promoted over a champion it was never compared with, a
    `rollback` alias pointing past the real previous champion). MLflow's first use of an empty
    database creates its tables, which two processes starting at once would both try
    (`SCHEMA_LOCK`). On PostgreSQL the lock is a session advisory lock (held by a connection,
    so a killed process releases it), on SQLite an flock beside the database file; an MLflow
    server (`http://`) takes no lock here.
    """
    if uri.startswith("postgresql"):
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(uri, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        finally:
            engine.dispose()
    elif uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        with open(database.with_name(database.name + ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield


def promote(
    version: str, *, force: bool = False, name: str = MODEL_NAME, tracking_uri: str | None = None
) -> Decision:
    """Move `champion` to `version` if the gate allows (or `force`); old champion → `rollback`.

    Only a fully registered version (status READY) can be promoted, and promotions and rollbacks
    of one registry run one at a time."""
    c = client(tracking_uri)
    with one_at_a_time(mlflow.get_tracking_uri()):
        return _promote(c, version, force, name)


def _promote(c: MlflowClient, version: str, force: bool, name: str) -> Decision:
    candidate = _version(c, name, version)
    if candidate.status != "READY":
        return Decision(
            False, f"version {candidate.version} is not fully registered ({candidate.status})"
        )
    try:
        current = c.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if current is not None and current.version == candidate.version:
        return Decision(False, f"version {candidate.version} is already the champion")
    decision = gate(
        evaluation_summary(c, name, candidate.version),
        evaluation_summary(c, name, current.version) if current else None,
    )
    if not decision.promote and not force:
        return decision
    if not decision.promote:
        decision = Decision(True, f"forced over the gate ({decision.reason})")
        c.set_model_version_tag(name, candidate.version, "promotion_forced", "true")
    if current is not None:
        c.set_registered_model_alias(name, ROLLBACK, current.version)
    c.set_registered_model_alias(name, CHAMPION, candidate.version)
    c.set_model_version_tag(name, candidate.version, "promotion", decision.reason)
    return decision


def rollback(*, name: str = MODEL_NAME, tracking_uri: str | None = None) -> tuple[str, str]:
    """Swap `champion` and `rollback`; returns (new champion, new rollback) versions."""
    c = client(tracking_uri)
    with one_at_a_time(mlflow.get_tracking_uri()):
        previous = _version(c, name, ROLLBACK)
        current = _version(c, name, CHAMPION)
        c.set_registered_model_alias(name, CHAMPION, previous.version)
        c.set_registered_model_alias(name, ROLLBACK, current.version)
        c.set_model_version_tag(
            name, previous.version, "promotion", f"rollback from {current.version}"
        )
    return str(previous.version), str(current.version)
