"""Load, verify and warm up a served model: the one recipe for start-up and for reloads.

A worker starting (`serving.service.Flushcast`) and a worker switching to a new version
(`live.engine.Live.switch`, after `/reload` or a new champion) both call `load_served`: the
bundle is read only once its files match their SHA-256 record (`Bundle.load`), checked against
the feature code (`forecast.predictor.Predictor`), its walk-forward artefacts read for the
report's model card, and one synthetic request of the bundle's own bar size (1 h, 4 h or 1 d) is
scored, so numba code is compiled and the first real request costs what later ones do. Whether
the version is the registry's champion travels with it (`PROMOTED_ENV`), so every answer can say
when it is not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flushcast.forecast.identity import ModelIdentity
from flushcast.models.bundle import Bundle
from flushcast.serving import PROMOTED_ENV, WALK_FORWARD
from flushcast.serving.endpoints import ServedPredictor
from flushcast.serving.requests import Bar, PredictRequest

if TYPE_CHECKING:
    from flushcast.reporting.card import WalkForward


@dataclass(frozen=True)
class Served:
    """A model ready to answer: its predictor (warmed up) and its walk-forward artefacts."""

    predictor: ServedPredictor
    walk_forward: WalkForward | None


def load_served(
    stored: Any, promoted: bool | None = None, predictor: type[ServedPredictor] = ServedPredictor
) -> Served:
    """Load BentoML model `stored` (a `bentoml.Model`), verify, check and warm it up.

    `promoted`: whether it is the registry's champion (default: `PROMOTED_ENV`, else yes).
    """
    if promoted is None:
        promoted = os.environ.get(PROMOTED_ENV, "1") != "0"
    identity = ModelIdentity.of(stored.info.metadata)
    served = predictor(Bundle.load(stored.path), identity, promoted)
    bundle = served.bundle
    served.predict(warm_up_request(bundle.max_lookback, bundle.bar))
    return Served(served, _walk_forward(Path(stored.path) / WALK_FORWARD))


def _walk_forward(folder: Path) -> WalkForward | None:
    """The model's walk-forward artefacts for the report's model card, if imported with it."""
    from flushcast.reporting import WalkForward

    return WalkForward.read(folder) if folder.is_dir() else None


def warm_up_request(bars: int, bar: pd.Timedelta) -> PredictRequest:
    """A plausible synthetic window of `bar`-sized bars: the first raw-bars request then costs
    what later ones do (and a window of another bar size would be refused)."""
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.005, bars)))
    end = np.datetime64("2024-01-01T00:00")
    stamps = end - np.arange(bars)[::-1] * np.timedelta64(int(bar.total_seconds()), "s")
    window = [
        Bar(
            timestamp=f"{stamp}Z",
            open=c,
            high=c * 1.002,
            low=c * 0.998,
            close=c,
            volume_usd=1e6,
            oi_usd=1e8,
            funding_rate=1e-4,
            liq_long_usd=1e4,
            liq_short_usd=1e4,
        )
        for stamp, c in zip(stamps, close.tolist(), strict=True)
    ]
    return PredictRequest(symbol="WARMUP", bars=window, explain=True)
