"""Risk by symbol: the latest closed bar's prediction per series of the server's store, cached.

`compute` builds each series' features over its last `max_lookback` bars with the training code
(`features.build_latest`) and scores them with the service's `ServedPredictor`, the same path as
/predict, so `GET /risk/{symbol}` answers exactly what /predict would for those bars. It runs
once per closed bar (the live loop calls it when the store changes) and its result, a
`Snapshot`, is what every worker answers from: `RiskBook` keeps each entry serialised, so a call
costs a dictionary lookup and the staleness appended to the stored bytes.

Staleness is the age of the bar described: seconds since it closed. A collector writes a bar a
few seconds after it closes, so up to one bar of age is normal; past `stale_after` the answer
says the feed is stale, past `stale_limit` it is refused with 503 (a forecast for a market the
service no longer sees is not a forecast).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field

from flushcast.features.build import build_latest
from flushcast.forecast.rows import Rows
from flushcast.marketdata.schema import BAR, OPTIONAL_COLUMNS
from flushcast.serving.endpoints import ServedPredictor
from flushcast.serving.responses import Prediction, ServedModel

TOP_K = 5


class RiskEntry(Prediction):
    """One series' prediction for its latest closed bar."""

    bar_close: datetime = Field(description="When the bar described (`as_of`) closed.")


class Staleness(BaseModel):
    state: Literal["fresh", "stale"] = Field(
        description="`stale`: no newer bar arrived although one should have (feed behind)."
    )
    age_seconds: float = Field(description="Seconds since the bar described closed.")
    message: str | None = None


class RiskResponse(RiskEntry):
    model: ServedModel
    computed_at: datetime = Field(description="When this prediction was computed and cached.")
    staleness: Staleness


class Unavailable(BaseModel):
    symbol: str
    venue: str
    as_of: datetime
    age_seconds: float
    problem: str


class RiskListResponse(BaseModel):
    model: ServedModel
    computed_at: datetime
    risks: list[RiskResponse] = Field(description="Every series the store holds, fresh or stale.")
    unavailable: list[Unavailable] = Field(description="Series whose data is past the limit.")


@dataclass(frozen=True)
class Snapshot:
    """The cached predictions of one computation: what `risk.json` holds."""

    model: ServedModel
    computed_at: datetime
    entries: list[RiskEntry]

    def to_json(self) -> str:
        return json.dumps(
            {
                "model": self.model.model_dump(),
                "computed_at": self.computed_at.isoformat(),
                "entries": [e.model_dump(mode="json") for e in self.entries],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        document = json.loads(text)
        return cls(
            model=ServedModel.model_validate(document["model"]),
            computed_at=datetime.fromisoformat(document["computed_at"]),
            entries=[RiskEntry.model_validate(e) for e in document["entries"]],
        )


def _notes(part: pd.DataFrame, lookback: int, bar: pd.Timedelta = BAR) -> list[str]:
    """What the window of one series lacks, in the words /predict uses."""
    symbol = str(part["symbol"].iat[0])
    notes = []
    if len(part) < lookback:
        notes.append(
            f"{symbol} has {len(part)} bars in the store; the model needs {lookback}, so "
            "long-window features are missing"
        )
    absent = [c for c in OPTIONAL_COLUMNS if part[c].isna().all()]
    if absent:
        notes.append(f"no {', '.join(absent)} in the bars of {symbol}")
    span = (part["timestamp"].iat[-1] - part["timestamp"].iat[0]) / bar + 1
    if span > len(part):
        notes.append(f"{int(span - len(part))} bar(s) missing inside the window of {symbol}")
    return notes


def compute(
    predictor: ServedPredictor, market: pd.DataFrame, now: datetime, top_k: int = TOP_K
) -> tuple[Snapshot, Rows]:
    """Predictions for the last bar of every series in `market` (a canonical frame)."""
    lookback, bar = predictor.bundle.max_lookback, predictor.bundle.bar
    ordered = market.sort_values(["symbol", "venue", "timestamp"], kind="stable")
    window = ordered.groupby(["symbol", "venue"], observed=True).tail(lookback)
    latest = build_latest(window, bar=bar)  # the model's bar: 4 h features from 4 h bars
    notes = {
        (str(s), str(v)): _notes(part, lookback, bar)
        for (s, v), part in window.groupby(["symbol", "venue"], observed=True)
    }
    symbols = latest["symbol"].astype(str).tolist()
    venues = latest["venue"].astype(str).tolist()
    rows = Rows(
        values=latest[predictor.bundle.features].to_numpy(dtype="float64"),
        symbols=symbols,
        venues=venues,
        as_of=[t.to_pydatetime() for t in latest["timestamp"]],
        notes=[notes[key] for key in zip(symbols, venues, strict=True)],
    )
    # The base class's method: a cached prediction is logged once by the live loop, not as a
    # request (the service's Predictor logs what it answers).
    predictions = ServedPredictor.predictions(predictor, rows, True, top_k)
    entries = [
        RiskEntry(**p.model_dump(), bar_close=p.as_of + bar.to_pytimedelta()) for p in predictions
    ]
    return Snapshot(predictor.identity, now, entries), rows


@dataclass(frozen=True)
class Limits:
    stale_after: timedelta = timedelta(hours=2)
    stale_limit: timedelta = timedelta(hours=6)


class RiskError(LookupError):
    """A /risk call the book cannot answer: `status` is the HTTP status to send."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}


class RiskBook:
    """The snapshot every worker answers from, kept as ready JSON per series."""

    def __init__(self, limits: Limits, now: Callable[[], datetime]) -> None:
        self.limits = limits
        self.now = now
        self.snapshot: Snapshot | None = None
        self._prefix: dict[tuple[str, str], bytes] = {}
        self._closes: dict[tuple[str, str], datetime] = {}
        self._opens: dict[tuple[str, str], datetime | None] = {}
        self._venues: dict[str, list[str]] = {}

    def load(self, snapshot: Snapshot) -> None:
        prefix, closes, opens, venues = {}, {}, {}, {}
        head = {
            "model": snapshot.model.model_dump(),
            "computed_at": snapshot.computed_at.isoformat(),
        }
        for entry in snapshot.entries:
            body = {**entry.model_dump(mode="json"), **head}
            key = (entry.symbol, entry.venue)
            prefix[key] = json.dumps(body)[:-1].encode()  # without the closing brace
            closes[key] = entry.bar_close
            opens[key] = entry.as_of
            venues.setdefault(entry.symbol, []).append(entry.venue)
        self._prefix, self._closes, self._opens, self._venues = prefix, closes, opens, venues
        self.snapshot = snapshot

    def key(self, symbol: str, venue: str | None) -> tuple[str, str]:
        venues = self._venues.get(symbol)
        if not venues:
            known = sorted(self._venues)
            raise RiskError(404, f"no {symbol} in the store (it has {known})", symbols=known)
        if venue is None:
            if len(venues) > 1:
                raise RiskError(400, f"{symbol} is on {sorted(venues)}: choose one with ?venue=")
            return symbol, venues[0]
        if venue not in venues:
            raise RiskError(404, f"{symbol} is not on {venue} in the store (it is on {venues})")
        return symbol, venue

    def staleness(self, key: tuple[str, str], now: datetime) -> Staleness:
        age = now - self._closes[key]
        seconds = round(max(age.total_seconds(), 0.0), 1)
        if age <= self.limits.stale_after:
            return Staleness(state="fresh", age_seconds=seconds)
        message = (
            f"the latest {key[0]} bar on {key[1]} closed {age.total_seconds() / 3600:.1f} h ago: "
            "the feed is behind"
        )
        return Staleness(state="stale", age_seconds=seconds, message=message)

    def answer(self, symbol: str, venue: str | None = None) -> bytes:
        """The /risk/{symbol} body; RiskError for unknown, ambiguous or expired series."""
        if self.snapshot is None:
            raise RiskError(503, "no risk computed yet: the store is empty or still loading")
        key = self.key(symbol, venue)
        now = self.now()
        staleness = self.staleness(key, now)
        if now - self._closes[key] > self.limits.stale_limit:
            raise RiskError(
                503,
                f"{staleness.message}; past the {self.limits.stale_limit} limit, no forecast",
                as_of=self._opens[key].isoformat() if self._opens[key] else None,
                age_seconds=staleness.age_seconds,
            )
        return self._prefix[key] + b', "staleness": ' + staleness.model_dump_json().encode() + b"}"

    def answer_all(self) -> bytes:
        """The /risk body: every series within the limit, and the ones past it."""
        if self.snapshot is None:
            raise RiskError(503, "no risk computed yet: the store is empty or still loading")
        risks, unavailable = [], []
        for key in self._prefix:
            try:
                risks.append(self.answer(*key))
            except RiskError as exc:
                unavailable.append(
                    {"symbol": key[0], "venue": key[1], "as_of": exc.body["as_of"],
                     "age_seconds": exc.body["age_seconds"], "problem": exc.body["error"]}
                )  # fmt: skip
        head = {
            "model": self.snapshot.model.model_dump(),
            "computed_at": self.snapshot.computed_at.isoformat(),
            "unavailable": unavailable,
        }
        return json.dumps(head)[:-1].encode() + b', "risks": [' + b", ".join(risks) + b"]}"


def utc_now() -> datetime:
    return datetime.now(UTC)
