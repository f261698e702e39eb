"""The service's logic without HTTP: requests in, response models out, bad input as InputError.

The BentoML service is a thin adapter over this class, so the in-process floor the benchmark
measures and the tests call is exactly what the server runs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from features.registry import FEATURES, at_bar, max_lookback
from models.applicability import unknown_symbol
from models.bundle import SYMBOL, Bundle
from serving import inputs
from serving.bands import band, describe, lower_edges
from serving.errors import InputError
from serving.inputs import Rows, SeriesInput
from serving.requests import ExplainRequest, PredictBatchRequest, PredictRequest, RowRequest
from serving.responses import (
    Contribution,
    ExplainResponse,
    Explanation,
    FeatureInfo,
    HorizonExplanation,
    HorizonInfo,
    HorizonPrediction,
    ModelIdentity,
    ModelInfo,
    PredictBatchResponse,
    Prediction,
    PredictResponse,
    ServedModel,
)
from serving.scorer import Scorer

if TYPE_CHECKING:
    from reporting.card import WalkForward


class Predictor:
    """Answers requests with one bundle; refuses a bundle the feature code no longer matches."""

    def __init__(self, bundle: Bundle, identity: ModelIdentity) -> None:
        bundle.check_features(at_bar(bundle.bar), max_lookback(bundle.bar))
        self.bundle = bundle
        self.identity = ServedModel.model_validate(identity.model_dump())
        self.scorer = Scorer(bundle)
        self.horizons = sorted(bundle.horizons)
        self.columns = bundle.columns
        self.symbol_column = self.columns.index(SYMBOL)
        self.band_words = describe()
        """The risk bands' edges in words (the report prints them)."""
        self.descriptions = bundle.input_descriptions(FEATURES)

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

    def table_predictions(self, table, explain: bool, top_k: int) -> list[Prediction]:
        """Every horizon for every row of a feature table (the report's path)."""
        return self.predictions(inputs.rows_of_table(table, self.bundle.features), explain, top_k)

    def predictions(self, rows: Rows, explain: bool, top_k: int) -> list[Prediction]:
        """Every horizon for every row, one booster call per model for the whole batch."""
        X = self.scorer.matrix(rows.values, rows.symbols)
        per_horizon = []
        for h in self.horizons:
            scores = self.scorer.scores(X, h)
            base_rate = self.bundle.horizons[h].base_rate
            explanations = self._top(X, rows, h, top_k) if explain else [None] * len(X)
            per_horizon.append(
                [
                    HorizonPrediction(
                        horizon_hours=h,
                        p_flush=p,
                        risk_band=band(p, base_rate),
                        relative_risk=p / base_rate,
                        base_rate=base_rate,
                        p_long_flush=p_long,
                        p_short_squeeze=1.0 - p_long,
                        explanation=explanation,
                    )
                    for p, p_long, explanation in zip(
                        scores.p_flush.tolist(), scores.p_long.tolist(), explanations, strict=True
                    )
                ]
            )
        warnings = self.warnings(rows)
        return [
            Prediction(
                symbol=rows.symbols[i],
                venue=rows.venues[i],
                as_of=rows.as_of[i],
                horizons=[column[i] for column in per_horizon],
                warnings=warnings[i],
            )
            for i in range(len(X))
        ]

    def explain(self, request: ExplainRequest) -> ExplainResponse:
        horizons = self.horizons
        if request.horizon is not None:
            if request.horizon not in self.bundle.horizons:
                raise InputError(
                    f"no {request.horizon} h model; horizons are {horizons}", ("horizon",)
                )
            horizons = [request.horizon]
        rows = self.rows(request)
        X = self.scorer.matrix(rows.values, rows.symbols)
        explained = []
        for h in horizons:
            contributions = self.scorer.contributions(X, h)[0].tolist()
            log_odds = sum(contributions)
            explained.append(
                HorizonExplanation(
                    horizon_hours=h,
                    base_value=contributions[-1],
                    log_odds=log_odds,
                    p_uncalibrated=1.0 / (1.0 + math.exp(-log_odds)),
                    p_flush=float(self.scorer.scores(X, h).p_flush[0]),
                    contributions=[
                        self._contribution(rows.symbols[0], X[0].tolist(), j, c)
                        for j, c in enumerate(contributions[:-1])
                    ],
                )
            )
        return ExplainResponse(
            symbol=rows.symbols[0],
            venue=rows.venues[0],
            as_of=rows.as_of[0],
            model=self.identity,
            horizons=explained,
            warnings=self.warnings(rows)[0],
        )

    def warnings(self, rows: Rows) -> list[list[str]]:
        """Per row: input notes, an unknown symbol, and which features were missing."""
        missing = np.isnan(rows.values)
        by_pattern: dict[bytes, list[str]] = {}  # a batch has few distinct missing patterns
        out = []
        for i, symbol in enumerate(rows.symbols):
            notes = [*self.model_notes(), *rows.notes[i]]
            if not self.scorer.knows(symbol):
                notes.append(unknown_symbol(symbol))
            pattern = missing[i].tobytes()
            if pattern not in by_pattern:
                by_pattern[pattern] = self._missing(missing[i])
            out.append(notes + by_pattern[pattern])
        return out

    def model_notes(self) -> list[str]:
        """What every answer of this model says about the model itself: not the champion."""
        if self.identity.promoted:
            return []
        version = self.identity.model_version
        return [
            f"model version {version} is not promoted: it has not passed the promotion gate "
            f"(see why with `flushcast promote {version}`); served by request, not as the champion"
        ]

    def _missing(self, missing: np.ndarray) -> list[str]:
        features = self.bundle.features
        nan = [features[j] for j in np.flatnonzero(missing)]
        notes = []
        if nan:
            notes.append(f"{len(nan)} of {len(features)} features missing: {', '.join(nan)}")
        as_zero = [name for name in nan if name in self.scorer.read_as_zero]
        if as_zero:
            notes.append(
                f"never missing in training, so the model reads them as 0: {', '.join(as_zero)}"
            )
        return notes

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
            symbols=self.scorer.symbols,
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

    def _top(self, X: np.ndarray, rows: Rows, horizon: int, k: int) -> list[Explanation]:
        contributions = self.scorer.contributions(X, horizon)
        order = np.argsort(-np.abs(contributions[:, :-1]), axis=1, kind="stable")[:, :k]
        values = X.tolist()
        return [
            Explanation(
                base_value=c[-1],
                log_odds=sum(c),
                top=[self._contribution(rows.symbols[i], values[i], j, c[j]) for j in top],
            )
            for i, (c, top) in enumerate(zip(contributions.tolist(), order.tolist(), strict=True))
        ]

    def _contribution(
        self, symbol: str, values: list[float], j: int, contribution: float
    ) -> Contribution:
        """Input j of a row (`values` as model input) with its contribution and description."""
        value: float | str | None = values[j]
        if j == self.symbol_column:
            value = symbol
        elif value != value:  # NaN: the input was missing
            value = None
        return Contribution(
            feature=self.columns[j],
            value=value,
            contribution=contribution,
            description=self.descriptions[j],
        )


def load_predictor(
    ref: str = "champion", tracking_uri: str | None = None, command: str = "report"
) -> tuple[Predictor, WalkForward | None]:
    """A registered version (number, alias or `latest`) as a Predictor, with its walk-forward
    artefacts; a version that is not the champion is marked so (`ServedModel.promoted`).
    Without a champion the error names `command`'s own way forward (`--version latest`)."""
    from reporting.card import load_walk_forward
    from serving.versions import champion_version, no_champion, version_number
    from training.registry import CHAMPION, RegistryError, load_bundle
    from training.tracking import tracking_uri as resolve

    uri = resolve(tracking_uri)
    try:
        bundle, identity = load_bundle(version_number(ref, uri), tracking_uri=uri)
    except RegistryError as exc:
        raise (no_champion(exc, command) if ref == CHAMPION else exc) from None
    promoted = identity.model_version == champion_version(uri)
    served = ServedModel(**identity.model_dump(), promoted=promoted)
    return Predictor(bundle, served), load_walk_forward(identity.run_id, uri)
