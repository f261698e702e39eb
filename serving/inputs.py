"""Requests to feature rows: bars go through the training feature code, tables are checked.

Bars are validated per series in the order they were sent, so an error names the row the client
sent (`bars[17].high`), then built with `features.build_features`, the code that made the
training table, so serving cannot drift from training. Each series must hold at least the
bundle's lookback: fewer bars would silently change long-window features.

The work is bounded by the request's size: features are computed on every bar time from a
series' first bar to its last (`features.grid`), so a series may span at most `MAX_SPAN_PER_BAR`
times as many bar times as it has bars, checked before anything of that size is allocated, and
a request holds at most `MAX_BARS` bars in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from pydantic import BaseModel

from flushcast.common.errors import DataError, shorten
from flushcast.features import breadth, events, relative
from flushcast.features.build import build_features
from flushcast.features.context import BTC_FEATURES, is_btc
from flushcast.features.registry import FEATURES
from flushcast.forecast.rows import Rows
from flushcast.marketdata.schema import BAR, COLUMNS, OPTIONAL_COLUMNS, VALUE_COLUMNS
from flushcast.marketdata.validate import validate
from flushcast.models.applicability import bar_problem, duration, history_problem
from flushcast.serving.errors import InputError, Loc, path
from flushcast.serving.requests import MAX_BARS, Bar, FeatureTable

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
NO_BTC = "no BTC series sent, so the btc_* features are missing: add BTC bars as `context`"
MAX_SPAN_PER_BAR = 2
"""Bar times from a series' first bar to its last, per bar sent: half the window may be gaps."""


@dataclass(frozen=True)
class SeriesInput:
    """One series of a request, with where it sits in the request body (for error paths)."""

    loc: Loc
    symbol: str
    venue: str
    bars: Sequence[Bar]
    predict: bool = True


def _frame(series: SeriesInput) -> pd.DataFrame:
    """The canonical frame of one series, in request order (dtypes as `conform` makes them)."""
    bars, n = series.bars, len(series.bars)
    micros = np.array([(b.timestamp - EPOCH) // MICROSECOND for b in bars], dtype="int64")
    data = {
        "timestamp": pd.to_datetime(micros, unit="us", utc=True),
        "symbol": pd.Categorical.from_codes(np.zeros(n, dtype="int8"), [series.symbol]),
        "venue": pd.Categorical.from_codes(np.zeros(n, dtype="int8"), [series.venue]),
        **{c: np.array([getattr(b, c) for b in bars], dtype="float64") for c in VALUE_COLUMNS},
    }
    return pd.DataFrame(data, columns=list(COLUMNS))


def _check_bar_size(frame: pd.DataFrame, loc: Loc, bar: pd.Timedelta) -> None:
    """Refuse bars of another size: their features would describe other time spans."""
    steps = np.diff(frame["timestamp"].astype("int64").to_numpy())  # microseconds
    positive = steps[steps > 0]
    if not len(positive):
        return
    values, counts = np.unique(positive, return_counts=True)
    common = int(values[np.argmax(counts)])
    problem = bar_problem(pd.Timedelta(common, unit="us"), bar)
    if problem:
        row = int(np.flatnonzero(steps == common)[0]) + 1
        raise InputError(problem, (*loc, "bars", row, "timestamp"))


def _check_names(series: SeriesInput) -> None:
    """Bars may carry the canonical `symbol` and `venue` columns, if they are the series' own."""
    for name in ("symbol", "venue"):
        expected = getattr(series, name)
        for i, bar in enumerate(series.bars):
            given = getattr(bar, name)
            if given is not None and given != expected:
                raise InputError(
                    f"bar {name} {shorten(given)} is not the {name} of its series, "
                    f"{shorten(expected)}",
                    (*series.loc, "bars", i, name),
                )


def _check_span(frame: pd.DataFrame, loc: Loc, bar: pd.Timedelta) -> None:
    """Refuse a series whose time span is far larger than its bar count, before the grid."""
    t = frame["timestamp"].astype("int64").to_numpy()  # microseconds
    span = int((t.max() - t.min()) // (bar // pd.Timedelta("1us"))) + 1
    limit = MAX_SPAN_PER_BAR * len(t)
    if span > limit:
        after_gap = int(np.argmax(np.abs(np.diff(t)))) + 1
        raise InputError(
            f"{len(t)} bars span {span:,} {duration(bar)} bar times; at most {limit:,} "
            f"({MAX_SPAN_PER_BAR}x the bar count) are accepted, so gaps like the one before "
            "this bar are refused",
            (*loc, "bars", after_gap, "timestamp"),
        )


def _checked(series: SeriesInput, needed: int, bar: pd.Timedelta) -> tuple[pd.DataFrame, list[str]]:
    _check_names(series)
    frame = _frame(series)
    _check_bar_size(frame, series.loc, bar)
    _check_span(frame, series.loc, bar)
    try:
        report = validate(frame, bar=bar)
    except DataError as exc:
        where = (exc.row, exc.column) if exc.row is not None else (exc.column,)
        loc = (*series.loc, "bars", *(x for x in where if x is not None))
        raise InputError(exc.problem, loc) from exc
    problem = history_problem(series.symbol, len(frame), needed, bar)
    if problem:
        raise InputError(problem, (*series.loc, "bars"), bars_needed=needed)
    notes = []
    absent = [c for c in OPTIONAL_COLUMNS if frame[c].isna().all()]
    if absent:
        notes.append(f"no {', '.join(absent)} in the bars of {series.symbol}")
    if report.missing_bars:
        notes.append(f"{report.missing_bars} bar(s) missing inside the window of {series.symbol}")
    return frame, notes


def from_series(
    all_series: Sequence[SeriesInput],
    features: list[str],
    lookback: int,
    last_bars: int = 1,
    bar: pd.Timedelta = BAR,
    market: Sequence[str] = (),
) -> Rows:
    """Features of the last `last_bars` bars of every series marked `predict` (of size `bar`,
    the bar the model was trained on). `market` names the symbols the model learned breadth
    over: breadth is computed over the series sent, so any of them not sent is warned about."""
    total = sum(len(s.bars) for s in all_series)
    if total > MAX_BARS:
        raise InputError(f"{total:,} bars in one request; at most {MAX_BARS:,}: split it")
    seen: dict[tuple[str, str], Loc] = {}
    for s in all_series:
        key = (s.symbol, s.venue)
        if key in seen:
            raise InputError(
                f"{s.symbol} on {s.venue} is sent twice (also at {path(seen[key])})", s.loc
            )
        seen[key] = s.loc
    frames, notes = [], {}
    for s in all_series:
        needed = lookback + (last_bars - 1 if s.predict else 0)
        frame, notes[(s.symbol, s.venue)] = _checked(s, needed, bar)
        frames.append(frame)
    try:
        table = build_features(pd.concat(frames, ignore_index=True), bar=bar, needed=features)
    except DataError as exc:  # cross-series checks; per-series ones passed above
        raise InputError(str(exc)) from exc
    btc_used = set(BTC_FEATURES.values()) & set(features)
    no_btc = [NO_BTC] if btc_used and not any(is_btc(s.symbol) for s in all_series) else []
    rows = []
    for s in all_series:
        if s.predict:
            part = table[(table["symbol"] == s.symbol) & (table["venue"] == s.venue)]
            rows.append(part.tail(last_bars))
    picked = pd.concat(rows, ignore_index=True)
    stale = calendar_note(picked["timestamp"], features, bar)
    narrow = breadth_note(features, market, {s.symbol for s in all_series})
    symbols = picked["symbol"].astype(str).tolist()
    venues = picked["venue"].astype(str).tolist()
    return Rows(
        values=picked[features].to_numpy(dtype="float64"),
        symbols=symbols,
        venues=venues,
        as_of=[ts.to_pydatetime() for ts in picked["timestamp"]],
        notes=[
            [*notes[(s, v)], *no_btc, *narrow, *late]
            for s, v, late in zip(symbols, venues, stale, strict=True)
        ],
    )


def breadth_note(features: Sequence[str], market: Sequence[str], sent: set[str]) -> list[str]:
    """A warning when breadth or relative features are read over fewer symbols than the model
    learned them over: they then describe a smaller market than the one in training."""
    families = {breadth.FAMILY, relative.FAMILY}  # breadth's ETH and BTC copies included
    across = {name for name, spec in FEATURES.items() if spec.family in families}
    if not set(features) & across:
        return []
    absent = sorted(set(market) - sent)
    if not absent:
        return []
    return [
        f"breadth and relative features are computed over the series sent; the model learned "
        f"them over {', '.join(market)}: add {', '.join(absent)} as `context`"
    ]


def calendar_note(opens: pd.Series, features: Sequence[str], bar: pd.Timedelta) -> list[list[str]]:
    """Per row, a warning when the model reads event features the calendar cannot give: the
    bar's look-ahead week runs past the calendar's last date, so they are missing."""
    if not set(features) & {spec.name for spec in events.SPECS}:
        return [[] for _ in range(len(opens))]
    until = events.covered_until()
    ahead = pd.Timedelta(hours=events.CAP_HOURS)
    note = (
        f"the events calendar ends at {until:%Y-%m-%d %H:%M} UTC, so event features of this "
        f"bar are missing: add later events with ${events.ENV} (docs/features.md)"
    )
    return [[note] if stamp + bar + ahead > until else [] for stamp in opens]


def from_table(table: FeatureTable, features: list[str]) -> Rows:
    """Rows of a columnar feature table; model features it lacks are missing (NaN)."""
    columns = table.columns
    unknown = [c for c in columns if c not in FEATURES]
    if unknown:
        raise InputError(f"unknown feature(s) {unknown}", ("table", "columns"))
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InputError(f"feature(s) named twice: {repeated}", ("table", "columns"))
    for i, row in enumerate(table.rows):
        if len(row.values) != len(columns):
            raise InputError(
                f"{len(row.values)} values for {len(columns)} columns",
                ("table", "rows", i, "values"),
            )
    given = np.array([row.values for row in table.rows], dtype="float64").reshape(-1, len(columns))
    values = np.full((len(table.rows), len(features)), np.nan)
    for j, name in enumerate(features):
        if name in columns:
            values[:, j] = given[:, columns.index(name)]
    return Rows(
        values=values,
        symbols=[row.symbol for row in table.rows],
        venues=[row.venue for row in table.rows],
        as_of=[row.as_of for row in table.rows],
        notes=[[] for _ in table.rows],
    )


def from_feature_row(
    row: BaseModel, symbol: str, venue: str, as_of: datetime | None, features: list[str]
) -> Rows:
    """One named feature row (the /predict form)."""
    return Rows(
        values=np.array([[getattr(row, f) for f in features]], dtype="float64"),
        symbols=[symbol],
        venues=[venue],
        as_of=[as_of],
        notes=[[]],
    )
