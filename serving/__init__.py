"""The BentoML prediction service: calibrated flush probabilities with exact reasons.

Light on purpose (the CLI imports it): the service itself lives in `serving.service`.
"""

from __future__ import annotations

from pathlib import Path

MODEL_ENV = "FLUSHCAST_MODEL"
"""BentoML model tag to serve (default `flushcast:latest`); `flushcast serve` pins the champion."""
PROMOTED_ENV = "FLUSHCAST_PROMOTED"
"""0: the served version is not the registry's champion (`flushcast serve --version`); answers
say so. Unset or 1: it is."""
WORKERS_ENV = "FLUSHCAST_WORKERS"
"""Worker processes (default 2: one per core of the target machine)."""
WALK_FORWARD = "walk_forward"
"""Folder in the BentoML model holding the version's evaluation, for the report's model card."""
READ_TIMEOUT_ENV = "FLUSHCAST_READ_TIMEOUT"
"""Seconds a client has for a request's headers, and again for its body (default 15)."""
STORE_ENV = "FLUSHCAST_STORE"
"""Market data store `GET /report` reads (default: the demo store in the checkout)."""
SPEC = Path(__file__).with_name("openapi.json")
"""The committed OpenAPI spec (`serving.openapi`), held equal to the served one."""
ROOT = Path(__file__).resolve().parents[1]
"""The checkout: `bentoml serve` imports the service from here, `bentoml build` reads it."""
