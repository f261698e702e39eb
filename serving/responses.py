"""Response bodies: per-horizon probabilities, risk bands, SHAP contributions, model identity.

The HTTP schema of the answer `forecast.predictor.Predictor` gives (`forecast.answer`, the same
fields): `serving.endpoints` fills these from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flushcast.forecast.bands import Band
from flushcast.forecast.identity import ModelIdentity


class RegisteredModel(BaseModel):
    """What every prediction names: the registered model, its version and its training run."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    model_version: str
    run_id: str


class ServedModel(RegisteredModel):
    """The registry identity of the model answering, and whether it is the champion."""

    promoted: bool = Field(
        True,
        description="Whether this version holds the registry's champion alias, i.e. passed "
        "the promotion gate; false: served by request (`flushcast serve --version`), and every "
        "answer's warnings say so.",
    )

    @classmethod
    def of(cls, identity: ModelIdentity, promoted: bool = True) -> ServedModel:
        return cls(**identity.to_dict(), promoted=promoted)


class Contribution(BaseModel):
    feature: str
    value: float | str | None = Field(description="The input value (null = missing).")
    contribution: float = Field(
        description="Exact contribution to the flush model's log-odds (TreeSHAP, or linear)."
    )
    description: str


class Explanation(BaseModel):
    """Top contributions; all of them plus `base_value` sum to `log_odds`."""

    base_value: float = Field(description="Expected log-odds over the training data.")
    log_odds: float = Field(description="The flush model's raw score for this row.")
    top: list[Contribution] = Field(description="Largest contributions by absolute value.")


class HorizonPrediction(BaseModel):
    horizon_hours: int
    p_flush: float = Field(description="Calibrated probability of a flush within the horizon.")
    risk_band: Band
    relative_risk: float = Field(description="p_flush over the training base rate.")
    base_rate: float = Field(description="Flush rate in the training rows at this horizon.")
    p_long_flush: float = Field(description="P(long flush | flush): longs liquidated.")
    p_short_squeeze: float = Field(description="P(short squeeze | flush): shorts liquidated.")
    explanation: Explanation | None = None


class Prediction(BaseModel):
    symbol: str
    venue: str
    as_of: datetime | None = Field(description="Open time of the bar the features describe.")
    horizons: list[HorizonPrediction]
    warnings: list[str] = Field(description="Missing inputs and what they affect.")


class PredictResponse(Prediction):
    model: ServedModel


class PredictBatchResponse(BaseModel):
    model: ServedModel
    predictions: list[Prediction]


class HorizonExplanation(BaseModel):
    horizon_hours: int
    base_value: float = Field(description="Expected log-odds over the training data.")
    log_odds: float = Field(description="base_value plus every contribution.")
    p_uncalibrated: float = Field(
        description="sigmoid(log_odds): the booster's own probability, on the scale of its "
        "negative-downsampled training rows."
    )
    p_flush: float = Field(description="Calibrated probability (what /predict returns).")
    contributions: list[Contribution] = Field(description="Every model input, in model order.")


class ExplainResponse(BaseModel):
    symbol: str
    venue: str
    as_of: datetime | None
    model: ServedModel
    horizons: list[HorizonExplanation]
    warnings: list[str]


class FeatureInfo(BaseModel):
    name: str
    family: str
    unit: str
    lookback: int = Field(
        description="Hours of history the value depends on, counted in 1-hour bars with the "
        "current one included (at any bar_hours: a request sends bars_needed bars)."
    )
    description: str


class HorizonInfo(BaseModel):
    horizon_hours: int
    base_rate: float
    direction_model: bool = Field(description="False: direction is reported as 50/50.")
    risk_bands: dict[str, float] = Field(description="Lower p_flush edge of each band.")


class ModelInfo(BaseModel):
    """What the served bundle was trained on and how it scored out of sample."""

    model: ServedModel
    features: list[FeatureInfo]
    symbols: list[str] = Field(description="Symbols seen in training; others are 'unknown'.")
    bar_hours: float = Field(
        description="The bar size the model was trained on, in hours: "
        "bars of another size are refused."
    )
    bars_needed: int = Field(description="Bars per series a raw-bars request must send.")
    horizons: list[HorizonInfo]
    label: dict[str, Any]
    training: dict[str, Any] = Field(description="Data span, sources and row counts.")
    evaluation: dict[str, Any] = Field(description="Walk-forward metrics per horizon.")
    fit: dict[str, Any]
