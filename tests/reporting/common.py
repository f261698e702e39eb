"""Settings shared by the report tests and their fixtures."""

from __future__ import annotations

from flushcast.forecast.identity import ModelIdentity
from flushcast.training.config import TrainingConfig
from flushcast.training.labels import LabelSpec

HORIZONS = (4, 12)
CONFIG = TrainingConfig(label=LabelSpec(horizons=HORIZONS)).with_overrides(
    {
        "evaluation.n_boot": 0,
        "walk_forward.retrain_every_hours": 336,
        "fit.lightgbm.rounds": 60,
    }
)
"""Small and quick: the report tests are about the page, not the model's skill."""
IDENTITY = ModelIdentity(model_name="flushcast", model_version="3", run_id="f" * 32)
