"""Which registered model answers: its name, version and training run, without MLflow.

The registry makes one when it registers or loads a version (`training.registry`), the BentoML
store keeps its fields as model metadata, and every answer of the service names it. A model
fitted in a notebook has none: its answers carry no identity rather than a made-up one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelIdentity:
    """The registered model, its version and its training run (registry, store, responses)."""

    model_name: str
    model_version: str
    run_id: str

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> ModelIdentity:
        """The identity in `fields` (BentoML metadata, a response body); other keys ignored."""
        return cls(**{f.name: str(fields[f.name]) for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)
