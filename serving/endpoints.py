"""The service's logic without HTTP: requests in, response models out, bad input as InputError.

Requests become feature rows (`serving.inputs`), the rows are answered by the forecast layer
(`forecast.predictor.Predictor`, which the report, live operation and the notebook ask too), and
its answer is put into the response models (`serving.responses`). The BentoML service is a thin
adapter over this class, so the in-process floor the benchmark measures and the tests call is
exactly what the server runs.
"""

from __future__ import annotations

from flushcast.features.registry import FEATURES
from flushcast.forecast.bands import lower_edges
from flushcast.forecast.identity import ModelIdentity
from flushcast.forecast.predictor import Predictor
from flushcast.forecast.rows import Rows
from flushcast.models.bundle import Bundle
from flushcast.serving import inputs
from flushcast.serving.errors import InputError
from flushcast.serving.inputs import SeriesInput
from flushcast.serving.requests import (
    ExplainRequest,
    PredictBatchRequest,
    PredictRequest,
    RowRequest,
)
from flushcast.serving.responses import (
    ExplainResponse,
    FeatureInfo,
    HorizonInfo,
    ModelInfo,
    PredictBatchResponse,
    Prediction,
    PredictResponse,
    ServedModel,
)


class ServedPredictor:
    """One bundle behind the service's request and response models.

    `model` is the forecast layer's Predictor (what the report renders); `identity` the
    registered version as every response names it."""

    def __init__(self, bundle: Bundle, identity: ModelIdentity, promoted: bool = True) -> None:
        self.model = Predictor(bundle, identity, promoted)
        self.bundle = bundle
        self.identity = ServedModel.of(identity, promoted)

    def rows(self, request: RowRequest) -> Rows:
        """Feature rows of a /predict or /explain request (bars are built server-side)."""
        features = self.bundle.features
        if request.features is not None:
            return inputs.from_feature_row(
                request.features, request.symbol, request.venue, request.as_of, features
            )
        series = [SeriesInput((), request.symbol, request.venue, request.bars or [])]
        series += [
            SeriesInput(("context", i), s.symbol, s.venue, s.bars, predict=False)
            for i, s in enumerate(request.context)
        ]
        return inputs.from_series(
            series,
            features,
            self.bundle.max_lookback,
            bar=self.bundle.bar,
            market=self.bundle.symbols,
        )

    def predict(self, request: PredictRequest) -> PredictResponse:
        (prediction,) = self.predictions(self.rows(request), request.explain, request.top_k)
        return PredictResponse(**prediction.__dict__, model=self.identity)

    def predict_batch(self, request: PredictBatchRequest) -> PredictBatchResponse:
        features = self.bundle.features
        if request.table is not None:
            rows = inputs.from_table(request.table, features)
        else:
            series = [
                SeriesInput(("series", i), s.symbol, s.venue, s.bars)
                for i, s in enumerate(request.series or [])
            ]
            rows = inputs.from_series(
                series,
                features,
                self.bundle.max_lookback,
                request.last_bars,
                self.bundle.bar,
                market=self.bundle.symbols,
            )
        predictions = self.predictions(rows, request.explain, request.top_k)
        return PredictBatchResponse(model=self.identity, predictions=predictions)

    def predictions(self, rows: Rows, explain: bool, top_k: int) -> list[Prediction]:
        """The forecast layer's answer for every row, as response models."""
        return [
            Prediction.model_validate(forecast, from_attributes=True)
            for forecast in self.model.predictions(rows, explain, top_k)
        ]

    def explain(self, request: ExplainRequest) -> ExplainResponse:
        horizons = self.model.horizons
        if request.horizon is not None:
            if request.horizon not in self.bundle.horizons:
                raise InputError(
                    f"no {request.horizon} h model; horizons are {horizons}", ("horizon",)
                )
            horizons = [request.horizon]
        explained = self.model.explain(self.rows(request), horizons)
        return ExplainResponse.model_validate(
            {**explained.__dict__, "model": self.identity}, from_attributes=True
        )

    def info(self) -> ModelInfo:
        bundle = self.bundle
        return ModelInfo(
            model=self.identity,
            features=[
                FeatureInfo(
                    name=f.name,
                    family=f.family,
                    unit=f.unit,
                    lookback=bundle.lookbacks[f.name],
                    description=f.description,
                )
                for f in (FEATURES[name] for name in bundle.features)
            ],
            symbols=self.model.symbols,
            bar_hours=bundle.bar_hours,
            bars_needed=bundle.max_lookback,
            horizons=[
                HorizonInfo(
                    horizon_hours=h,
                    base_rate=m.base_rate,
                    direction_model=m.direction is not None,
                    risk_bands=lower_edges(m.base_rate),
                )
                for h, m in sorted(bundle.horizons.items())
            ],
            label=bundle.label,
            training=bundle.training,
            evaluation=bundle.evaluation,
            fit=bundle.fit,
        )
