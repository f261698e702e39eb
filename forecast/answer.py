"""The answer as plain data: what `forecast.predictor.Predictor` returns.

The service's response models (`serving.responses`) have the same fields and are filled from
these, so the HTTP schema, the report, live operation and the notebook read one answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flushcast.forecast.bands import Band


@dataclass(frozen=True)
class Contribution:
    """One model input: its value (None = missing) and its exact log-odds contribution."""

    feature: str
    value: float | str | None
    contribution: float
    description: str


@dataclass(frozen=True)
class Explanation:
    """Top contributions; all of them plus `base_value` sum to `log_odds`."""

    base_value: float
    log_odds: float
    top: list[Contribution]


@dataclass(frozen=True)
class HorizonForecast:
    """One horizon of one row: calibrated probability, band, direction, optional reasons."""

    horizon_hours: int
    p_flush: float
    risk_band: Band
    relative_risk: float
    base_rate: float
    p_long_flush: float
    p_short_squeeze: float
    explanation: Explanation | None = None


@dataclass(frozen=True)
class Forecast:
    """Every horizon of one feature row, with the warnings that row's answer carries."""

    symbol: str
    venue: str
    as_of: datetime | None
    horizons: list[HorizonForecast]
    warnings: list[str]


@dataclass(frozen=True)
class HorizonExplanation:
    """Every input's contribution at one horizon, and the score they add up to."""

    horizon_hours: int
    base_value: float
    log_odds: float
    p_uncalibrated: float
    p_flush: float
    contributions: list[Contribution]


@dataclass(frozen=True)
class Explained:
    """The full explanation of one row, per horizon."""

    symbol: str
    venue: str
    as_of: datetime | None
    horizons: list[HorizonExplanation]
    warnings: list[str]
