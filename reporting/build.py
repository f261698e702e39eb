"""The trader report: one self-contained HTML page for one symbol at one bar.

`render_report` works on what is already in memory (the forecast layer's `Predictor`, a market
frame, the version's walk-forward artefacts), so the CLI, the notebook and the service's
`GET /report` render the same page (`reporting.registered.load_predictor` gets them from the
MLflow registry). Probabilities, risk bands, direction and the ranking of reasons come from the
Predictor it is handed, the one the service answers with, so the page always agrees with
`/predict` and `/explain`; reporting imports nothing of serving's (the service imports reporting
for `GET /report`). Images are embedded as data URIs and a
Content-Security-Policy forbids the page any network access.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from flushcast.common.errors import DataError
from flushcast.features.build import build_features
from flushcast.features.context import is_btc
from flushcast.features.heatmap import DEFAULT_CONFIG, liquidation_heatmap
from flushcast.features.registry import FEATURES
from flushcast.forecast.answer import HorizonForecast
from flushcast.forecast.predictor import Predictor
from flushcast.marketdata.resample import infer_bar
from flushcast.marketdata.schema import BAR
from flushcast.models.applicability import bar_problem, duration
from flushcast.models.bundle import SYMBOL, Bundle
from flushcast.reporting import charts, sentences
from flushcast.reporting.card import WalkForward, model_card
from flushcast.reporting.live import live_section
from flushcast.reporting.sentences import percent, when
from flushcast.training.labels import LabelSpec, direction_column, make_labels

HEATMAP_HOURS = 168
"""The heatmap shows the last week: the levels built up recently are the ones price can reach."""
HEATMAP_MIN_BARS = 42
"""...and at least this many bars, so a daily chart is more than seven columns."""
CAVEATS = (
    "The model sees one venue's bars (of the size it was trained on): price, open interest, "
    "funding and liquidations. "
    "It does not see order books, spot markets, other venues' positioning, news, macro "
    "releases, exchange outages or large players' intentions, and it cannot anticipate them.",
    "A probability is a long-run frequency: at 10 %, nine of ten such forecasts see no flush "
    "within their horizon. It was calibrated on the training period; a market regime unlike "
    "that period makes it less reliable.",
    "The heatmap is an estimate from open-interest changes under an assumed leverage mix, not "
    "the exchange's book of positions; real liquidation levels may sit elsewhere.",
    "The reasons are the model's own arithmetic (exact contributions to its log-odds): they say "
    "what moved this forecast, not what will cause a flush.",
)


class ReportError(ValueError):
    """A report request that cannot be met; `field` names the offending input."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Series:
    """The reported (symbol, venue) series: its market rows and feature rows, time-sorted."""

    symbol: str
    venue: str
    market: pd.DataFrame
    table: pd.DataFrame


def pick_series(frame: pd.DataFrame, symbol: str, venue: str | None) -> tuple[str, pd.DataFrame]:
    """The market rows of `symbol` (on `venue`, needed only if it trades on several)."""
    if frame.empty:
        raise ReportError("frame", "no market data")
    names = frame["symbol"].astype(str)
    if symbol not in set(names):
        raise ReportError("symbol", f"{symbol} not in the data (it has {sorted(set(names))})")
    venues = sorted(set(frame.loc[names == symbol, "venue"].astype(str)))
    if venue is None:
        if len(venues) > 1:
            raise ReportError("venue", f"{symbol} trades on {venues}: choose one")
        venue = venues[0]
    elif venue not in venues:
        raise ReportError("venue", f"{symbol} is not on {venue} in the data (it is on {venues})")
    mine = (names == symbol) & (frame["venue"].astype(str) == venue)
    return venue, frame[mine].sort_values("timestamp", kind="stable").reset_index(drop=True)


def check_bar(market: pd.DataFrame, bundle: Bundle, symbol: str) -> pd.Timedelta:
    """The series' bar size, if it is the model's (`models.applicability`); else ReportError."""
    bar = infer_bar(market["timestamp"])
    problem = bar_problem(bar, bundle.bar)
    if problem:
        raise ReportError("symbol", f"{symbol}: {problem}; report with a model of its bar size")
    return bar


def resolve_at(
    stamps: pd.Series, at: str | pd.Timestamp | None, bar: pd.Timedelta = BAR
) -> pd.Timestamp:
    """The bar to report on: `at` (UTC if naive) if the series has it, else the last bar."""
    if at is None:
        return stamps.iloc[-1]
    try:
        stamp = pd.Timestamp(at)
    except ValueError as exc:
        raise ReportError("at", f"not a time: {at!r}") from exc
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if not (stamps == stamp).any():
        raise ReportError(
            "at",
            f"no bar at {when(stamp)}; the series has {duration(bar)} bars (open times) from "
            f"{when(stamps.iloc[0])} to {when(stamps.iloc[-1])}",
        )
    return stamp


def percentiles(reference: pd.DataFrame, row: pd.Series) -> dict[str, float]:
    """Each value's mid-rank percentile among the reference rows (NaN if either is missing)."""
    out = {}
    for name, value in row.items():
        known = reference[name].to_numpy(dtype="float64")
        known = known[~np.isnan(known)]
        if not len(known) or math.isnan(value):
            out[str(name)] = math.nan
            continue
        below, ties = np.sum(known < value), np.sum(known == value)
        out[str(name)] = float((below + 0.5 * ties) / len(known))
    return out


def training_reference(
    table: pd.DataFrame, bundle: Bundle, symbol: str, venue: str
) -> tuple[pd.DataFrame, str]:
    """This series' feature rows inside the bundle's training span, and a caption saying so."""
    start = pd.Timestamp(bundle.training.get("data_start", table["timestamp"].min()))
    end = pd.Timestamp(bundle.training.get("data_end", table["timestamp"].max()))
    rows = table[
        (table["timestamp"] >= start)
        & (table["timestamp"] <= end)
        & (table["symbol"].astype(str) == symbol)
        & (table["venue"].astype(str) == venue)
    ]
    period = f"{when(start)} → {when(end)}"
    if rows.empty:
        return (
            rows,
            f"Percentile: none, the data has no {symbol} bars in the training period ({period}).",
        )
    return rows, (
        f"Percentile: where each value sits among {len(rows):,} training bars of {symbol} "
        f"({period})."
    )


def _inputs(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """The rows the symbol's features depend on: its own series and BTC's (the context)."""
    names = frame["symbol"].astype(str)
    btc = names.isin([name for name in names.unique() if is_btc(name)])
    return frame[(names == symbol) | btc]


UNREGISTERED = "a model fitted in this session (not registered)"
"""What the page names instead of a registered version for a notebook's model."""
MAX_MISSING_FOR_BAND = 0.5
"""Above this share of missing inputs the headline shows no risk band: a badge would claim more
than the few inputs left can say."""
CONFIDENT_DIRECTION = 0.6
"""A direction is stated as a call only from this probability (given a flush) on; below it the
two sides are close to a coin flip and the page says so."""


def _direction(bundle: Bundle, prediction: HorizonForecast) -> str:
    if bundle.horizons[prediction.horizon_hours].direction is None:
        return "no direction model (too few one-sided flushes in training): 50/50"
    longs, shorts = prediction.p_long_flush, prediction.p_short_squeeze
    if max(longs, shorts) < CONFIDENT_DIRECTION:
        return (
            f"no clear side: longs flushed {percent(longs)}, shorts squeezed {percent(shorts)} "
            "if a flush comes"
        )
    if longs >= shorts:
        return f"longs flushed, price down ({percent(longs)} if a flush comes)"
    return f"shorts squeezed, price up ({percent(shorts)} if a flush comes)"


def _changes(bundle: Bundle, prediction: HorizonForecast) -> list[float]:
    """Per top reason: the calibrated probability minus what it would be without it."""
    explanation = prediction.explanation
    calibrator = bundle.horizons[prediction.horizon_hours].calibrator
    log_odds = explanation.log_odds
    scores = [log_odds] + [log_odds - c.contribution for c in explanation.top]
    p = calibrator.predict(np.asarray(scores, dtype="float64"))
    return [float(p[0] - q) for q in p[1:]]


def _reason(contribution: Any, change: float, symbol: str, percentile: dict[str, float]) -> str:
    if contribution.feature == SYMBOL:
        return sentences.symbol_sentence(symbol, change)
    return sentences.sentence(
        FEATURES[contribution.feature],
        contribution.value,
        change,
        percentile.get(contribution.feature),
    )


def _why(
    bundle: Bundle, prediction: HorizonForecast, symbol: str, pct: dict[str, float]
) -> dict[str, Any]:
    explanation = prediction.explanation
    steps = [(c.feature, c.contribution) for c in explanation.top]
    other = explanation.log_odds - explanation.base_value - sum(v for _, v in steps)
    title = (
        f"{prediction.horizon_hours} h: score {explanation.log_odds:.2f} → calibrated "
        f"probability {percent(prediction.p_flush)}"
    )
    figure = charts.waterfall(explanation.base_value, steps, other, title)
    changes = _changes(bundle, prediction)
    return {
        "horizon": prediction.horizon_hours,
        "chart": charts.data_uri(figure),
        "steps": steps,
        "reasons": [
            _reason(c, change, symbol, pct)
            for c, change in zip(explanation.top, changes, strict=True)
        ],
        "others": len(bundle.columns) - len(steps),
    }


def _feature_table(
    bundle: Bundle,
    values: pd.Series,
    pct: dict[str, float],
    contributions: dict[int, np.ndarray],
) -> list[dict[str, Any]]:
    rows = []
    for j, name in enumerate(bundle.features):
        feature = FEATURES[name]
        share = pct.get(name, math.nan)
        ranked = sentences.ranked(feature)
        effects = [float(contributions[h][j]) for h in sorted(contributions)]
        rows.append(
            {
                "name": name,
                "family": feature.family,
                "description": feature.description,
                "value": sentences.format_value(feature, float(values[name])),
                "percentile": "–" if math.isnan(share) or not ranked else f"{100 * share:.0f}",
                "effects": [sentences.effect(e) for e in effects],
                "strong": max(abs(e) for e in effects) >= 0.05,
            }
        )
    return rows


def _timeline(
    predictor: Predictor, series: Series, at: pd.Timestamp, weeks: int, notes: list[str]
) -> str:
    bundle = predictor.bundle
    start = at - weeks * 7 * 24 * BAR
    table = series.table[(series.table["timestamp"] > start) & (series.table["timestamp"] <= at)]
    X = predictor.matrix(
        table[bundle.features].to_numpy(dtype="float64"), table["symbol"].astype(str).tolist()
    )
    probabilities = {h: predictor.scores(X, h).p_flush for h in bundle.horizons}
    shortest = min(bundle.horizons)
    known = series.market[series.market["timestamp"] <= at]
    market = known.set_index("timestamp").reindex(table["timestamp"])
    try:
        spec = LabelSpec.from_params(bundle.label)
        labels = make_labels(known, spec, horizons=[shortest], bar=bundle.bar)
        events = labels.set_index("timestamp")[direction_column(shortest)].reindex(
            table["timestamp"]
        )
    except DataError as exc:
        notes.append(f"Past flushes are not marked: {exc}")
        events = pd.Series(np.nan, index=table["timestamp"])
    figure = charts.timeline(
        table["timestamp"],
        probabilities,
        {h: m.base_rate for h, m in bundle.horizons.items()},
        market["close"].to_numpy(dtype="float64"),
        events,
        shortest,
        f"Flush probability, last {f'{weeks} weeks' if weeks > 1 else 'week'}; "
        f"shaded: a flush followed within {shortest} h",
    )
    return charts.data_uri(figure)


def heatmap_span(bar: pd.Timedelta) -> pd.Timedelta:
    """How far back the heatmap shows: a week, or `HEATMAP_MIN_BARS` bars if longer (daily)."""
    return max(pd.Timedelta(hours=HEATMAP_HOURS), HEATMAP_MIN_BARS * bar)


def _heatmap(series: Series, at: pd.Timestamp, bar: pd.Timedelta, notes: list[str]) -> str | None:
    span = heatmap_span(bar)
    start = at - DEFAULT_CONFIG.lookback(bar) * bar - span
    window = series.market[
        (series.market["timestamp"] > start) & (series.market["timestamp"] <= at)
    ]
    if not window["oi_usd"].notna().any():
        notes.append("No open interest in the data, so no liquidation heatmap.")
        return None
    heatmap = liquidation_heatmap(window, bar=bar)
    shown = window[window["timestamp"] > at - span]
    figure = charts.liquidation_heatmap(
        heatmap,
        shown,
        f"{series.symbol}: estimated liquidation levels, last {span.days} days",
    )
    return charts.data_uri(figure)


def report_context(
    predictor: Predictor,
    frame: pd.DataFrame,
    symbol: str,
    *,
    at: str | pd.Timestamp | None = None,
    venue: str | None = None,
    walk_forward: WalkForward | None = None,
    weeks: int = 4,
    top_k: int = 6,
    live: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as plain values (the template's input; handy in notebooks).

    `live`: a `live.monitor` report (`MonitorReport.to_dict()`) for the section on how the
    live forecasts did; without it the section is left out."""
    if weeks < 1:
        raise ReportError("weeks", f"must be at least 1, got {weeks}")
    if top_k < 1:
        raise ReportError("top_k", f"must be at least 1, got {top_k}")
    bundle = predictor.bundle
    venue, market = pick_series(frame, symbol, venue)
    bar = check_bar(market, bundle, symbol)
    table = build_features(_inputs(frame, symbol), bar=bundle.bar)
    mine = table[(table["symbol"].astype(str) == symbol) & (table["venue"].astype(str) == venue)]
    series = Series(symbol, venue, market, mine.reset_index(drop=True))
    at = resolve_at(series.table["timestamp"], at, bar)
    current = series.table[series.table["timestamp"] == at]
    (prediction,) = predictor.table_predictions(current, explain=True, top_k=top_k)
    X = predictor.matrix(current[bundle.features].to_numpy(dtype="float64"), [symbol])
    contributions = {h: predictor.contributions(X, h)[0] for h in sorted(bundle.horizons)}
    reference, reference_caption = training_reference(table, bundle, symbol, venue)
    values = current[bundle.features].iloc[0]
    pct = percentiles(reference[bundle.features], values)
    notes = list(prediction.warnings)
    missing = int(values.isna().sum())
    rated = missing <= len(values) * MAX_MISSING_FOR_BAND
    if not rated:
        notes.insert(
            0,
            f"{missing} of {len(values)} inputs are missing, so no risk band is shown: the "
            "probability mostly repeats what the model does without them.",
        )
    identity = (
        None
        if predictor.identity is None
        else {**predictor.identity.to_dict(), "promoted": predictor.promoted}
    )
    card = model_card(bundle, identity, walk_forward)
    if card["simulated"]:
        notes.insert(0, "This model was trained on simulated data: a demonstration, not advice.")
    elif card["augmented"]:
        notes.insert(0, card["augmented"])
    return {
        "symbol": symbol,
        "venue": venue,
        "as_of": when(at),
        "price": float(market.loc[market["timestamp"] == at, "close"].iloc[0]),
        "identity": identity,
        "UNREGISTERED": UNREGISTERED,
        "headline": [
            {
                "horizon": h.horizon_hours,
                "p_flush": percent(h.p_flush),
                "band": h.risk_band if rated else None,
                "relative_risk": f"{h.relative_risk:.2f}",
                "base_rate": percent(h.base_rate),
                "direction": _direction(bundle, h),
            }
            for h in prediction.horizons
        ],
        "why": [_why(bundle, h, symbol, pct) for h in prediction.horizons],
        "heatmap": _heatmap(series, at, bar, notes),
        "timeline": _timeline(predictor, series, at, weeks, notes),
        "features": _feature_table(bundle, values, pct, contributions),
        "horizons": sorted(bundle.horizons),
        "reference": reference_caption,
        "card": card,
        "caveats": CAVEATS,
        "bands": predictor.band_words,
        "notes": notes,
        "live": live_section(live),
    }


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("flushcast.reporting", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["percent"] = percent
    return env


def render_report(
    predictor: Predictor,
    frame: pd.DataFrame,
    symbol: str,
    *,
    at: str | pd.Timestamp | None = None,
    venue: str | None = None,
    walk_forward: WalkForward | None = None,
    weeks: int = 4,
    top_k: int = 6,
    live: dict[str, Any] | None = None,
) -> str:
    """The report page (HTML) for `symbol` at bar `at` (default: its last bar in `frame`).

    `frame` is a canonical market frame holding the symbol's history (at least the bundle's
    lookback before `at`; the training span too, for the percentiles) and the BTC series the
    context features need. Raises ReportError naming the bad argument.
    """
    context = report_context(
        predictor,
        frame,
        symbol,
        at=at,
        venue=venue,
        walk_forward=walk_forward,
        weeks=weeks,
        top_k=top_k,
        live=live,
    )
    return _environment().get_template("report.html.j2").render(**context)
