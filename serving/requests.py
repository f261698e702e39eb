"""Request bodies of the prediction service: bars in the canonical schema, or ready feature rows.

Every model forbids unknown fields and non-finite numbers (JSON has no NaN: a missing value is
`null`), so a typo or a unit slip is refused with the field's path instead of being ignored.
Ranges that need a whole bar (high >= low) or a whole series (sorted, unique, hourly) are
checked afterwards by `marketdata.validate`, the same check every ingested frame passes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model, model_validator

from features.registry import FEATURES
from marketdata.schema import COLUMN_UNITS

MAX_SERIES = 64
MAX_TABLE_ROWS = 10_000
MAX_TOP_K = 20

Finite = Annotated[float, Field(allow_inf_nan=False)]
Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


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


class Series(Strict):
    """The recent bars of one symbol on one venue, oldest first, ending at the bar to predict."""

    symbol: str = Field(min_length=1, examples=["BTCUSDT"])
    venue: str = Field("unspecified", min_length=1, description="Exchange the bars come from.")
    bars: list[Bar] = Field(
        min_length=1,
        description="Hourly bars in time order; at least the model's lookback (see GET /model).",
    )


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
    explain: bool = Field(True, description="Include the top SHAP contributions per horizon.")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="How many contributions to return.")


class RowRequest(Strict):
    """A symbol with its recent bars (features built server-side), or a ready feature row."""

    symbol: str = Field(min_length=1, examples=["BTCUSDT"])
    venue: str = Field("unspecified", min_length=1, description="Exchange the bars come from.")
    bars: list[Bar] | None = Field(
        None, description="Hourly bars, oldest first, ending at the bar to predict."
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
        return self


class PredictRequest(Options, RowRequest):
    """A symbol with its recent bars (features built server-side), or a ready feature row."""


class ExplainRequest(RowRequest):
    """One prediction to explain in full: every input's contribution, per horizon."""

    horizon: int | None = Field(None, description="Only this horizon (hours); default all.")


class TableRow(Strict):
    symbol: str = Field(min_length=1)
    venue: str = Field("unspecified", min_length=1)
    as_of: AwareDatetime | None = None
    values: list[Finite | None] = Field(description="One value per entry of `columns`.")


class FeatureTable(Strict):
    """Feature rows in columnar form: names once, then one value list per row.

    Naming every feature in every row would triple the body and the parse time of a large batch.
    """

    columns: list[str] = Field(
        min_length=1,
        description="Feature names, in value order; a model feature left out is missing "
        "in every row (the response lists it).",
    )
    rows: list[TableRow] = Field(min_length=1, max_length=MAX_TABLE_ROWS)


class PredictBatchRequest(Options):
    """Many symbols or many bars at once: series of bars, or a feature table."""

    explain: bool = Field(False, description="Include the top SHAP contributions per horizon.")
    series: list[Series] | None = Field(
        None,
        max_length=MAX_SERIES,
        description="Series built together, so cross-series features (BTC context, funding "
        "spread) see each other; every series gets predictions.",
    )
    last_bars: int = Field(
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
