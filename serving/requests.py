"""Request bodies of the prediction service: bars in the canonical schema, or ready feature rows.

Every model forbids unknown fields and non-finite numbers (JSON has no NaN: a missing value is
`null`), and numbers and flags are strict (`true` or `"123.5"` is not a number), so a typo or a
unit slip is refused with the field's path instead of being ignored or guessed at. Which fields
go together (bars or features, series or table) is declared in the JSON Schema as well, so the
OpenAPI spec says what the service accepts.
Ranges that need a whole bar (high >= low) or a whole series (sorted, unique, hourly) are
checked afterwards by `marketdata.validate`, the same check every ingested frame passes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    create_model,
    model_validator,
)

from flushcast.features.registry import FEATURES
from flushcast.marketdata.schema import COLUMN_UNITS, NAME_MAX, NAME_PATTERN

MAX_SERIES = 64
MAX_BARS = 50_000
"""Bars in one request, all series together: the work of building features grows with them."""
MAX_TABLE_ROWS = 10_000
MAX_TOP_K = 20

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Price = Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)]
"""A symbol or venue: the one name rule of `marketdata.schema` (ASCII letters, digits, . _ -)."""


def _whole(value: object) -> object:
    """JSON Schema counts 12.0 as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Count = Annotated[int, Field(strict=True), BeforeValidator(_whole)]
"""An integer: 12 or 12.0, not `true` or `"12"`."""


def _one_of(*branches: dict) -> ConfigDict:
    """Forbid unknown fields; declare which fields go together (JSON Schema `oneOf`)."""
    return ConfigDict(extra="forbid", json_schema_extra={"oneOf": list(branches)})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _unit(column: str) -> str:
    return f"Unit: {COLUMN_UNITS[column]}."


class Bar(Strict):
    """One bar of the canonical market frame (`marketdata.schema`); null = not available."""

    timestamp: AwareDatetime = Field(description="Bar open time, with a timezone (UTC advised).")
    open: Price = Field(description=_unit("open"))
    high: Price = Field(description=_unit("high"))
    low: Price = Field(description=_unit("low"))
    close: Price = Field(description=_unit("close"))
    volume_usd: NonNegative | None = Field(None, description=_unit("volume_usd"))
    oi_usd: NonNegative | None = Field(None, description=_unit("oi_usd"))
    funding_rate: Finite | None = Field(None, description=_unit("funding_rate"))
    liq_long_usd: NonNegative | None = Field(None, description=_unit("liq_long_usd"))
    liq_short_usd: NonNegative | None = Field(None, description=_unit("liq_short_usd"))
    taker_buy_volume_usd: NonNegative | None = Field(
        None, description=_unit("taker_buy_volume_usd")
    )
    long_short_ratio: NonNegative | None = Field(None, description=_unit("long_short_ratio"))
    symbol: Name | None = Field(
        None, description="Optional (canonical frame records carry it): must be the series'."
    )
    venue: Name | None = Field(
        None, description="Optional (canonical frame records carry it): must be the series'."
    )


VENUE = "Exchange the bars come from (default: the bars' own `venue`, else 'unspecified')."
UNSPECIFIED = "unspecified"


def venue_of(named: BaseModel, bars: list[Bar] | None) -> None:
    """A series whose request names no venue takes the one its bars carry (canonical frame
    records do), rather than an invented one its bars would then contradict."""
    if "venue" in named.model_fields_set or not bars or bars[0].venue is None:
        return
    named.__dict__["venue"] = bars[0].venue  # bars naming another one are refused later


class Series(Strict):
    """The recent bars of one symbol on one venue, oldest first, ending at the bar to predict."""

    symbol: Name = Field(examples=["BTCUSDT"])
    venue: Name = Field(UNSPECIFIED, description=VENUE)
    bars: list[Bar] = Field(
        min_length=1,
        max_length=MAX_BARS,
        description="Bars of the model's bar size (GET /model: bar_hours) in time order; at "
        "least the model's lookback (bars_needed).",
    )

    @model_validator(mode="after")
    def _venue(self) -> Series:
        venue_of(self, self.bars)
        return self


FeatureValues = create_model(
    "FeatureValues",
    __config__=ConfigDict(extra="forbid"),
    __doc__="The registry features of one bar, as `features.build_features` computes them. "
    "Null or omitted means missing: the model still answers, and the response lists them.",
    **{
        name: (Finite | None, Field(None, description=f"{spec.description} Unit: {spec.unit}."))
        for name, spec in FEATURES.items()
    },
)


class Options(Strict):
    explain: StrictBool = Field(True, description="Include the top SHAP contributions per horizon.")
    top_k: Count = Field(5, ge=1, le=MAX_TOP_K, description="How many contributions to return.")


class RowRequest(Strict):
    """A symbol with its recent bars (features built server-side), or a ready feature row."""

    model_config = _one_of(
        {
            "required": ["bars"],
            "properties": {
                "bars": {"type": "array"},
                "features": {"type": "null"},
                "as_of": {"type": "null"},
            },
        },
        {
            "required": ["features"],
            "properties": {
                "features": {"type": "object"},
                "bars": {"type": "null"},
                "context": {"maxItems": 0},
            },
        },
    )

    symbol: Name = Field(examples=["BTCUSDT"])
    venue: Name = Field(UNSPECIFIED, description=VENUE)
    bars: list[Bar] | None = Field(
        None,
        min_length=1,
        max_length=MAX_BARS,
        description="Bars of the model's bar size (GET /model: bar_hours), oldest first, ending "
        "at the bar to predict; at least the model's lookback (bars_needed), spanning at most "
        "twice as many bar times as there are bars.",
    )
    context: list[Series] = Field(
        default_factory=list,
        max_length=MAX_SERIES,
        description="Other series over the same hours, used only for cross-series features: "
        "BTC bars for an alt-coin (btc_* features), the same coin on other venues (funding "
        "spread). Without them those features are missing and the response warns.",
    )
    features: FeatureValues | None = Field(  # type: ignore[valid-type]
        None, description="A ready feature row, instead of bars."
    )
    as_of: AwareDatetime | None = Field(
        None, description="Open time of the bar a feature row describes (echoed back)."
    )

    @model_validator(mode="after")
    def _one_input(self) -> RowRequest:
        if (self.bars is None) == (self.features is None):
            raise ValueError("send exactly one of `bars` or `features`")
        if self.features is not None and self.context:
            raise ValueError("`context` series only apply to `bars`")
        if self.bars is not None and self.as_of is not None:
            raise ValueError("`as_of` only applies to `features`; with bars it is the last bar")
        venue_of(self, self.bars)
        return self


class PredictRequest(Options, RowRequest):
    """A symbol with its recent bars (features built server-side), or a ready feature row."""


class ExplainRequest(RowRequest):
    """One prediction to explain in full: every input's contribution, per horizon."""

    horizon: Count | None = Field(
        None,
        json_schema_extra={"minimum": 1},  # below 1, like any horizon the model lacks: data_error
        description="Only this horizon (hours), one of GET /model's horizons; default all.",
    )


class TableRow(Strict):
    symbol: Name
    venue: Name = "unspecified"
    as_of: AwareDatetime | None = None
    values: list[Finite | None] = Field(
        max_length=len(FEATURES), description="One value per entry of `columns`."
    )


class FeatureTable(Strict):
    """Feature rows in columnar form: names once, then one value list per row.

    Naming every feature in every row would triple the body and the parse time of a large batch.
    """

    columns: list[str] = Field(
        min_length=1,
        max_length=len(FEATURES),
        json_schema_extra={
            "uniqueItems": True,
            "items": {"type": "string", "enum": list(FEATURES)},
        },
        description="Feature names, in value order; a model feature left out is missing "
        "in every row (the response lists it).",
    )
    rows: list[TableRow] = Field(min_length=1, max_length=MAX_TABLE_ROWS)


class PredictBatchRequest(Options):
    """Many symbols or many bars at once: series of bars, or a feature table."""

    model_config = _one_of(
        {
            "required": ["series"],
            "properties": {"series": {"type": "array"}, "table": {"type": "null"}},
        },
        {
            "required": ["table"],
            "properties": {"table": {"type": "object"}, "series": {"type": "null"}},
        },
    )

    explain: StrictBool = Field(
        False, description="Include the top SHAP contributions per horizon."
    )
    series: list[Series] | None = Field(
        None,
        min_length=1,
        max_length=MAX_SERIES,
        description="Series built together, so cross-series features (BTC context, funding "
        "spread) see each other; every series gets predictions.",
    )
    last_bars: Count = Field(
        1,
        ge=1,
        le=MAX_TABLE_ROWS,
        description="With `series`: predict each series' last N bars (each needs a full "
        "lookback before it).",
    )
    table: FeatureTable | None = None

    @model_validator(mode="after")
    def _one_input(self) -> PredictBatchRequest:
        if (self.series is None) == (self.table is None):
            raise ValueError("send exactly one of `series` or `table`")
        return self
