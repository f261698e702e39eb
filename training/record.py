"""The evaluation record: one typed document that the CLI table, the promotion gate, the model
card, the MLflow tags and the JSON file all read.

Horizons are integers here; on disk (`evaluation.json`) they are string keys beside `meta`, the
layout other tools already depend on. Undefined values (a ROC with one class) are None, which
is `null` in the JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from flushcast.training.metrics import METRICS

Interval = tuple[float | None, float | None]


def champion_made_of(shares: dict[str, float], choices: dict[str, int]) -> str:
    """`logistic 0.40 + lightgbm 0.35 … (two_part)`: each input's share and, when the folds'
    champions were combined rather than picked, the rule that combined them (`stack`, or
    `two_part`: the order and the level part, `training.combine`); "" when nothing is known."""
    made = " + ".join(f"{name} {share:.2f}" for name, share in shares.items() if share)
    rules = [label for label in choices if label not in shares]
    return made + (f" ({', '.join(rules)})" if made and rules else "")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ModelMetrics = create_model(  # type: ignore[call-overload]
    "ModelMetrics",
    __base__=_Record,
    **{m.key: (float | None, None) for m in METRICS},
    folds_used=(int, 0),
    direction_accuracy=(float | None, None),
)
"""Every metric of `training.metrics.METRICS` for one model (fields generated from it)."""


class FoldExclusion(_Record):
    fold: int
    test_start: str
    reason: str


class DirectionRecord(_Record):
    """Direction accuracy on true one-sided flush bars: the model beside trivial rules."""

    n_sided: int
    """One-sided flush bars scored (long flushes and short squeezes)."""
    n_episodes: int
    """Flush episodes those bars belong to."""
    accuracy: dict[str, float | None]
    """`call` (the direction call a bundle ships), `model` (the direction trees alone) and each
    trivial rule: majority side of the training span, sign of funding, sign of the 24 h return
    (orientations learned on the training span)."""
    intervals: dict[str, Interval] = Field(default_factory=dict)
    """95 % block-bootstrap intervals of each accuracy, of the call and of the trees minus the
    best rule (`call_minus_<rule>`, `model_minus_<rule>`) and of the call minus the trees."""
    best_rule: str | None = None
    method: str = "model"
    """`combination.direction`: the trees alone (`model`) or their stack with the rules."""
    made_of: dict[str, float] = Field(default_factory=dict)
    """The call's mean weight on each input's log-odds over the scored folds."""


class _HasModels(_Record):
    models: dict[str, ModelMetrics]  # type: ignore[valid-type]

    def metric(self, model: str, key: str) -> float | None:
        """One model's metric, None where the model or the value is missing."""
        values = self.models.get(model)
        return None if values is None else getattr(values, key)


class SymbolRecord(_HasModels):
    base_rate: float | None
    n_test: int
    n_events: int


class HorizonRecord(_HasModels):
    """One horizon: counts, every model's metrics, the strongest baseline and the edge over it."""

    base_rate: float | None
    n_test: int
    n_events: int
    """Flush episodes (runs of flush bars of one series) in the scored test rows."""
    n_folds: int
    """Folds scored (every model on the same rows)."""
    folds_excluded: list[FoldExclusion] = Field(default_factory=list)
    best_baseline: str | None = None
    """The baseline with the highest pooled PR-AUC."""
    edge_over_best_baseline: float | None = None
    """Champion PR-AUC minus the best baseline's (pooled)."""
    best_baseline_within_fold: str | None = None
    edge_over_best_baseline_within_fold: float | None = None
    """Champion minus best baseline, PR-AUC within test blocks."""
    best_baseline_roc_within_fold: str | None = None
    """The baseline with the highest ROC-AUC within test blocks."""
    edge_over_best_baseline_roc_within_fold: float | None = None
    """Champion minus that baseline, ROC-AUC within test blocks (the promotion gate's
    within-block test; its interval resamples test blocks)."""
    champion_choices: dict[str, int] = Field(default_factory=dict)
    """How many scored folds each label of the champion had (the rule, `stack` or `two_part`,
    or the chosen candidate)."""
    champion_shares: dict[str, float] = Field(default_factory=dict)
    """What the champion is made of: each input's mean share over the scored folds."""
    direction: DirectionRecord | None = None
    intervals: dict[str, Interval] = Field(default_factory=dict)
    per_symbol: dict[str, SymbolRecord] = Field(default_factory=dict)


class EvaluationRecord(_Record):
    """A walk-forward evaluation: per horizon its record, and how it was made (`meta`)."""

    horizons: dict[int, HorizonRecord]
    meta: dict[str, Any] = Field(default_factory=dict)
    """Fingerprint, code version, data span and sources, bar, label, configuration."""

    @property
    def fingerprint(self) -> str | None:
        return self.meta.get("fingerprint")

    def to_document(self) -> dict[str, Any]:
        """The JSON layout: string horizon keys beside `meta` (strict JSON: no NaN)."""
        document: dict[str, Any] = {
            str(h): entry.model_dump(mode="json") for h, entry in sorted(self.horizons.items())
        }
        document["meta"] = self.meta
        return _finite(document)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> EvaluationRecord:
        """Read the JSON layout back (as written by `to_document`)."""
        horizons = {int(k): v for k, v in document.items() if k != "meta"}
        return cls.model_validate({"horizons": horizons, "meta": document.get("meta", {})})

    @classmethod
    def read(cls, path: str | Path) -> EvaluationRecord:
        return cls.from_document(json.loads(Path(path).read_text()))

    def summary(self) -> dict[str, Any]:
        """The compact form kept on a model version (MLflow tag, bundle): what the gate reads."""
        keep = ("pr_auc", "roc_auc", "roc_auc_within_fold", "lift_within_fold", "brier_skill")
        return _finite(
            {
                "fingerprint": self.fingerprint,
                "horizons": {
                    str(h): {
                        "base_rate": entry.base_rate,
                        "n_events": entry.n_events,
                        **{k: entry.metric("champion", k) for k in keep},
                        "best_baseline": entry.best_baseline,
                        "best_baseline_pr_auc": entry.metric(entry.best_baseline or "", "pr_auc"),
                        "edge_over_best_baseline": entry.edge_over_best_baseline,
                        "edge_interval": entry.intervals.get("edge_over_best_baseline"),
                        "best_baseline_roc_within_fold": entry.best_baseline_roc_within_fold,
                        "edge_roc_within_fold": entry.edge_over_best_baseline_roc_within_fold,
                        "edge_roc_within_fold_interval": entry.intervals.get(
                            "edge_over_best_baseline_roc_within_fold"
                        ),
                        "champion_choices": entry.champion_choices,
                        "champion_shares": entry.champion_shares,
                    }
                    for h, entry in sorted(self.horizons.items())
                },
            }
        )


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, tuples lists."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return _finite(value.item())
    return value
