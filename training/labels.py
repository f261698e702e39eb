"""Flush labels: the one place that looks forward in time, kept apart from the features.

A flush at bar t for horizon H uses bars t+1 … t+H only. Its threshold uses only liquidation sums
whose windows end at or before t, so the label is "would this have been surprising given what
was known at t". Labels are computed per (symbol, venue) series on the full hourly grid: a window
that touches a missing bar (or a missing value) is left unlabelled (NaN), never invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from flushcast.common.errors import DataError
from flushcast.marketdata.schema import BAR

LONG_FLUSH = "long_flush"
SHORT_SQUEEZE = "short_squeeze"
MIXED = "mixed"
DIRECTIONS: tuple[str, ...] = (LONG_FLUSH, SHORT_SQUEEZE, MIXED)

Source = Literal["liquidations", "oi_drop"]


class LabelSpec(BaseModel):
    """Every parameter of the label definition; recorded with each training or evaluation run.

    Lengths are in hours and become bars of the dataset's bar size, so the label means the same
    at 1 h, 4 h and daily bars: the trailing median is over `median_window_hours` of H-hour
    sums, σ is the standard deviation of bar returns over `vol_window_hours` (scaled to the
    horizon by √(H / bar)), and at least `min_trailing_hours` of trailing sums must exist.

    `source="liquidations"` (the definition) needs `liq_long_usd` and `liq_short_usd`.
    `source="oi_drop"` is the documented proxy for sources without liquidation data and must be
    chosen explicitly: the "spike" becomes the largest fractional drop of open interest within
    t+1 … t+H, ln(oi_t / min oi), judged against m times the trailing median of the same drops,
    and the direction comes from the price move alone (long_flush if the fall is at least the
    rise, else short_squeeze; never mixed). `floor_usd` applies to the liquidation source only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str = "v2"
    """The variant's name (`LABELS`), shown in reports and recorded with every run."""
    horizons: tuple[int, ...] = (4, 12, 24)
    m: float = Field(4.0, gt=0)
    """Spike: the next H hours' amount is at least m(H) × the trailing median of H-hour
    amounts, where ..."""
    m_decay: float = Field(0.25, ge=0)
    """... m(H) = m × (H / 4 h)^-m_decay: sums over longer windows are smoother, so the same
    cascade stands out less against their median (0: one m for every horizon)."""
    threshold: Literal["median", "quantile"] = "median"
    quantile: float = Field(0.95, gt=0, lt=1)
    """With `threshold="quantile"`: the spike is an amount above this trailing quantile."""
    scale: Literal["usd", "oi"] = "oi"
    """`oi`: liquidations as a share of the open interest at the start of their window, so the
    threshold does not move with how much leverage (or vendor coverage) there is."""
    k: float = Field(2.0, gt=0)
    median_window_hours: int = Field(720, ge=1)
    min_trailing_hours: int = Field(168, ge=1)
    vol_window_hours: int = Field(720, ge=2)
    floor_usd: float = Field(0.0, ge=0)
    source: Source = "liquidations"

    def m_for(self, horizon: int) -> float:
        """The spike multiple at `horizon` hours."""
        return float(self.m * (horizon / 4.0) ** -self.m_decay)

    @model_validator(mode="after")
    def _consistent(self) -> LabelSpec:
        if not self.horizons or any(h < 1 for h in self.horizons):
            raise ValueError(f"horizons must be positive whole hours, got {self.horizons}")
        if self.min_trailing_hours > self.median_window_hours:
            raise ValueError("min_trailing_hours cannot exceed median_window_hours")
        return self

    def to_params(self) -> dict[str, Any]:
        """Flat, string-keyed parameters (e.g. for MLflow `log_params`)."""
        params = self.model_dump()
        params["horizons"] = ",".join(str(h) for h in self.horizons)
        return {f"label_{key}": value for key, value in params.items()}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> LabelSpec:
        """The spec `to_params` recorded (e.g. in a model bundle), read back."""
        values = {key.removeprefix("label_"): value for key, value in params.items()}
        try:
            values["horizons"] = tuple(int(h) for h in str(values["horizons"]).split(","))
            return cls.model_validate(values, strict=False)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"cannot read the label definition ({exc})") from exc


@dataclass(frozen=True)
class _Bars:
    """The spec's lengths in bars of one bar size."""

    median: int
    min_sums: int
    vol: int

    @classmethod
    def of(cls, spec: LabelSpec, bar: pd.Timedelta) -> _Bars:
        hour = pd.Timedelta(hours=1)
        return cls(
            median=max(1, round(spec.median_window_hours * hour / bar)),
            min_sums=max(1, round(spec.min_trailing_hours * hour / bar)),
            vol=max(2, round(spec.vol_window_hours * hour / bar)),
        )


def whole_bars(hours: float, bar: pd.Timedelta, what: str = "horizon") -> int:
    """`hours` as a whole number of bars, or a DataError naming `what` and the bar size.

    Horizons and walk-forward lengths must fit the bar exactly (with 4 h bars a horizon is
    4/12/24 h; with daily bars 24/72 h): a rounded horizon would be a different question.
    """
    count = pd.Timedelta(hours=hours) / bar
    if count < 1 or abs(count - round(count)) > 1e-9:
        raise DataError(
            f"{what} of {hours:g} h is not a whole number of {bar_text(bar)} bars",
            column=what.replace(" ", "_"),
        )
    return round(count)


def bar_text(bar: pd.Timedelta) -> str:
    """'1 h', '4 h', '1 d'."""
    hours = bar / pd.Timedelta(hours=1)
    return f"{hours / 24:g} d" if hours >= 24 and hours % 24 == 0 else f"{hours:g} h"


def flush_column(horizon: int) -> str:
    """Name of the 0/1 flush label for `horizon` bars (NaN where unlabelled)."""
    return f"flush_{horizon}h"


def direction_column(horizon: int) -> str:
    """Name of the direction label for `horizon` bars (set on flush rows only)."""
    return f"direction_{horizon}h"


def move_side_column(horizon: int) -> str:
    """Name of the move-side label for `horizon` bars: the side the direction label would
    name if the window were a flush (long_flush, short_squeeze, mixed), on every labelled row."""
    return f"move_side_{horizon}h"


def move_ratio_column(horizon: int) -> str:
    """Name of the forward move in units of the move a flush needs (k·σ·√H; a flush has >= 1)."""
    return f"move_ratio_{horizon}h"


def move_columns(horizon: int) -> list[str]:
    """The move target's columns at `horizon` (a direction model's extra rows, `fit.direction`)."""
    return [move_side_column(horizon), move_ratio_column(horizon)]


def _forward(values: pd.Series, horizon: int, how: str) -> np.ndarray:
    """Aggregate over t+1 … t+H; NaN when any bar of the window is missing or past the end."""
    rolled = getattr(values.rolling(horizon, min_periods=horizon), how)()
    return rolled.shift(-horizon).to_numpy()


def _trailing_threshold(
    window_sums: pd.Series, spec: LabelSpec, n: _Bars, horizon_hours: int
) -> np.ndarray:
    """The spike threshold from the H-hour amounts whose windows end in the trailing window at
    t: m × their median, or their `quantile`."""
    rolled = window_sums.rolling(n.median, min_periods=n.min_sums)
    if spec.threshold == "quantile":
        return rolled.quantile(spec.quantile).to_numpy()
    return spec.m_for(horizon_hours) * rolled.median().to_numpy()


def _series_labels(
    grid: pd.DataFrame, horizon: int, spec: LabelSpec, n: _Bars, horizon_hours: int
) -> dict[str, np.ndarray]:
    """Labels and their ingredients for one series on its complete bar grid (`horizon` bars)."""
    close = grid["close"]
    log_close = np.log(close)
    # σ_t from the bar returns of the window up to and including t; nine in ten must exist (a
    # month-long window must survive an exchange outage; nothing is imputed).
    sigma = log_close.diff().rolling(n.vol, min_periods=max(2, int(np.ceil(0.9 * n.vol)))).std()
    low = _forward(grid["low"], horizon, "min")
    high = _forward(grid["high"], horizon, "max")
    down = np.log(low / close.to_numpy())
    up = np.log(high / close.to_numpy())
    move = np.maximum(np.abs(down), up)
    needed = spec.k * sigma.to_numpy() * np.sqrt(horizon)

    if spec.source == "liquidations":
        total = grid["liq_long_usd"] + grid["liq_short_usd"]
        sums = total.rolling(horizon, min_periods=horizon).sum()
        if spec.scale == "oi":
            # The share of the OI in force when the window opened (known at its start).
            sums = sums / grid["oi_usd"].shift(horizon).where(lambda oi: oi > 0)
        amount = sums.shift(-horizon).to_numpy()
        floor = spec.floor_usd if spec.scale == "usd" else 0.0
        threshold = np.maximum(_trailing_threshold(sums, spec, n, horizon_hours), floor)
        longs = _forward(grid["liq_long_usd"], horizon, "sum")
        shorts = _forward(grid["liq_short_usd"], horizon, "sum")
    else:
        oi = np.log(grid["oi_usd"])
        # Largest OI shed inside the window ending at j, relative to OI just before it.
        drops = oi.shift(horizon) - oi.rolling(horizon, min_periods=horizon).min()
        drops = drops.clip(lower=0.0)
        amount = drops.shift(-horizon).to_numpy()
        threshold = _trailing_threshold(drops, spec, n, horizon_hours)
        longs = shorts = np.zeros(len(grid))

    # A zero trailing median (a quiet month) must not turn "no liquidations at all" into a spike.
    spike = (amount >= threshold) & (amount > 0)
    flush = (spike & (move >= needed)).astype("float64")
    known = ~(np.isnan(amount) | np.isnan(threshold) | np.isnan(move) | np.isnan(needed))
    flush[~known] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isnan(flush), np.nan, move / needed)

    falling = np.abs(down) >= up
    if spec.source == "liquidations":
        is_long = (longs >= shorts) & falling
        is_short = (shorts >= longs) & (up >= np.abs(down))
        # Both hold only when longs == shorts and |down| == up: call that mixed, not a side.
        direction = np.where(is_long & ~is_short, 0, np.where(is_short & ~is_long, 1, 2))
    else:
        direction = np.where(falling, 0, 1)
    # The move side is the direction label's rule on every window whose move is known: a flush's
    # direction is its move side, and a quiet window's says which side its move liquidated.
    return {
        "flush": flush,
        "direction": np.where(flush == 1.0, direction, -1),
        "move_side": np.where(np.isnan(flush), -1, direction),
        "move_ratio": ratio,
        "amount": amount,
        "threshold": threshold,
        "move": move,
        "needed": needed,
        "sigma": sigma.to_numpy(),
    }


def _require_inputs(frame: pd.DataFrame, spec: LabelSpec) -> None:
    """Refuse, with the series named, rather than label a source that lacks the inputs."""
    needed = ["timestamp", "symbol", "venue", "close", "high", "low"]
    if spec.source == "liquidations":
        needed += ["liq_long_usd", "liq_short_usd"]
        if spec.scale == "oi":
            needed += ["oi_usd"]
    else:
        needed += ["oi_usd"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"cannot label: missing columns {missing}", column=missing[0])
    data_cols = needed[6:]
    keys = [frame["symbol"].astype(str), frame["venue"].astype(str)]
    has = frame[data_cols].notna().groupby(keys, observed=True).any()
    together = frame[data_cols].notna().all(axis=1).groupby(keys, observed=True).any()
    unusable = together[~together]
    if len(unusable):
        symbol, venue = unusable.index[0]
        absent = [c for c in data_cols if not has.loc[(symbol, venue), c]] or data_cols
        if spec.source == "oi_drop":
            hint = "the open-interest proxy needs oi_usd"
        elif absent == ["oi_usd"]:
            hint = "label v2 counts liquidations as a share of OI: use a label with scale 'usd'"
        else:
            hint = "choose LabelSpec(source='oi_drop') explicitly to use the open-interest proxy"
        raise DataError(
            f"no {' / '.join(absent)} data for {symbol} on {venue} "
            f"({len(unusable)} series without it): cannot label; {hint}",
            column=absent[0],
        )


def make_labels(
    frame: pd.DataFrame,
    spec: LabelSpec | None = None,
    *,
    horizons: Sequence[int] | None = None,
    bar: pd.Timedelta = BAR,
    details: bool = False,
) -> pd.DataFrame:
    """Flush and direction labels for every row of a canonical frame, in the frame's row order.

    Horizons are hours and must be whole numbers of `bar` (the frame's bar size).

    Returns `timestamp, symbol, venue` and, per horizon H, `flush_{H}h` (1.0, 0.0, or NaN where
    the window or the trailing history is incomplete) and `direction_{H}h` (category: long_flush,
    short_squeeze, mixed; NaN unless a flush), `move_side_{H}h` (the same rule on every
    labelled window, flush or not) and `move_ratio_{H}h` (the forward move over k·σ·√H).
    With `details=True` also the ingredients per H:
    `amount_{H}h` (forward liquidation USD or OI drop), `threshold_{H}h`, `move_{H}h`,
    `needed_{H}h` (k·σ·√H) and `sigma` (trailing σ of bar log returns).
    """
    spec = spec or LabelSpec()
    horizons = tuple(horizons) if horizons is not None else spec.horizons
    steps = {h: whole_bars(h, bar) for h in horizons}
    n_bars = _Bars.of(spec, bar)
    _require_inputs(frame, spec)
    columns = ["close", "high", "low", "liq_long_usd", "liq_short_usd", "oi_usd"]
    columns = [c for c in columns if c in frame.columns]
    out = frame[["timestamp", "symbol", "venue"]].copy()
    n = len(frame)
    results: dict[str, np.ndarray] = {}
    for h in horizons:
        results[f"flush_{h}h"] = np.full(n, np.nan)
        results[f"direction_{h}h"] = np.full(n, -1)
        results[move_side_column(h)] = np.full(n, -1)
        results[move_ratio_column(h)] = np.full(n, np.nan)
        if details:
            for part in ("amount", "threshold", "move", "needed"):
                results[f"{part}_{h}h"] = np.full(n, np.nan)
    if details:
        results["sigma"] = np.full(n, np.nan)

    ts = frame["timestamp"]
    keys = [frame["symbol"].astype(str), frame["venue"].astype(str)]
    for rows in frame.groupby(keys, observed=True, sort=False).indices.values():
        stamps = ts.iloc[rows]
        start = stamps.min()
        bars = ((stamps - start) // bar).to_numpy(dtype=np.int64)
        if np.any((stamps - start) % bar != pd.Timedelta(0)) or len(np.unique(bars)) < len(bars):
            raise DataError(
                f"timestamps of one series must be unique and on the {bar_text(bar)} grid "
                "(validate first)",
                column="timestamp",
            )
        # Scatter onto the complete grid so missing bars are NaN, not silently skipped.
        grid_values = np.full((int(bars.max()) + 1, len(columns)), np.nan)
        grid_values[bars] = frame[columns].iloc[rows].to_numpy(dtype="float64")
        grid = pd.DataFrame(grid_values, columns=columns)
        for h in horizons:
            labels = _series_labels(grid, steps[h], spec, n_bars, h)
            results[f"flush_{h}h"][rows] = labels["flush"][bars]
            results[f"direction_{h}h"][rows] = labels["direction"][bars]
            results[move_side_column(h)][rows] = labels["move_side"][bars]
            results[move_ratio_column(h)][rows] = labels["move_ratio"][bars]
            if details:
                for part in ("amount", "threshold", "move", "needed"):
                    results[f"{part}_{h}h"][rows] = labels[part][bars]
                results["sigma"][rows] = labels["sigma"][bars]

    for name, values in results.items():
        if name.startswith(("direction_", "move_side_")):
            codes = values.astype(np.int8)
            out[name] = pd.Categorical.from_codes(codes, categories=list(DIRECTIONS))
        else:
            out[name] = values
    return out


def base_rate(labels: pd.DataFrame, horizon: int) -> float:
    """Share of labelled rows that are flushes at `horizon` (NaN rows excluded)."""
    return float(labels[flush_column(horizon)].mean())


V1 = {"name": "v1", "m_decay": 0.0, "scale": "usd", "vol_window_hours": 72}
"""The first definition: USD liquidations, one m, σ over the last 3 days."""
LABELS: dict[str, LabelSpec] = {
    "v1": LabelSpec(**V1),
    "sigma30d": LabelSpec(**{**V1, "name": "sigma30d", "vol_window_hours": 720}),
    "oi_share": LabelSpec(name="oi_share", m_decay=0.0),
    "v2": LabelSpec(),
    "quantile": LabelSpec(name="quantile", scale="usd", threshold="quantile", quantile=0.95),
}
"""The label variants compared in docs/label.md, by name (`--label NAME`)."""


def label_named(name: str, **changes: Any) -> LabelSpec:
    """A label variant by name, with fields changed (e.g. `horizons=(24, 72)`)."""
    if name not in LABELS:
        raise DataError(f"unknown label {name!r} (choose from {', '.join(LABELS)})", column="label")
    if not changes:
        return LABELS[name]
    return LabelSpec.model_validate({**LABELS[name].model_dump(), **changes}, strict=False)
