"""Settings shared by the report tests and their fixtures."""

from __future__ import annotations

from models.lgbm import DIRECTION_PARAMS, FLUSH_PARAMS, FitSpec
from serving.responses import ModelIdentity
from training.evaluate import EvalSpec

HORIZONS = (4, 12)
SPEC = EvalSpec(horizons=HORIZONS, n_boot=0, retrain_every=336)
FIT = FitSpec(
    max_rounds=60,
    early_stopping=20,
    flush_params={**FLUSH_PARAMS, "num_threads": 1},
    direction_params={**DIRECTION_PARAMS, "num_threads": 1},
)
"""Single-threaded: on a shared two-core machine OpenMP threads only spin-wait."""
IDENTITY = ModelIdentity(model_name="flushcast", model_version="3", run_id="f" * 32)
