"""Scheduled events: how far the bar is from the next (and the last) US macro release.

FOMC decisions, CPI, payrolls and PCE move every crypto market within minutes, at times known
weeks ahead; leverage is cut or piled on before them and flushed right after. Times come from
the calendar packaged in `features/data/events.yaml` (its header gives the sources and how it
was made), plus the user's own events in the same format named by the `FLUSHCAST_EVENTS`
environment variable. A calendar is complete only for the span it `covers`: a value that would
need an event past that span is missing (unknown), never "no event" (`covered_until` lets the
service warn when it scores bars past the end).

Knowing a scheduled release's time in advance is not look-ahead: only releases whose time was
published before the bar are listed (unscheduled meetings are left out). Everything is measured
from the bar's close, when its forecast is made, so it means the same at every bar size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from flushcast.common.errors import DataError
from flushcast.features.grid import SeriesGrid
from flushcast.features.spec import Feature

FAMILY = "events"
PACKAGED = Path(__file__).resolve().parent / "data" / "events.yaml"
ENV = "FLUSHCAST_EVENTS"
"""Environment variable naming a YAML file of extra events (same format as the packaged one)."""
CAP_HOURS = 168.0
"""Hours to or since an event are capped at a week: "a week or more" is one value."""
WITHIN_HOURS = (4, 12, 24)

SPECS: tuple[Feature, ...] = (
    Feature(
        "event_hours_to_next",
        FAMILY,
        "hours",
        1,
        "Hours from the bar's close to the next scheduled US macro release (FOMC decision, CPI, "
        f"payrolls, PCE), capped at {CAP_HOURS:g}.",
        (),
    ),
    Feature(
        "event_hours_since_last",
        FAMILY,
        "hours",
        1,
        "Hours from the last scheduled US macro release to the bar's close (a release inside "
        f"the bar counts), capped at {CAP_HOURS:g}.",
        (),
    ),
    *(
        Feature(
            f"event_within_{h}h",
            FAMILY,
            "0/1",
            1,
            f"1 if a scheduled US macro release falls in the {h} hours after the bar's close.",
            (),
            (h,),
        )
        for h in WITHIN_HOURS
    ),
)


@dataclass(frozen=True)
class Calendar:
    """Event instants (sorted, UTC) and the span the list is complete for."""

    times: pd.DatetimeIndex
    kinds: tuple[str, ...]
    start: pd.Timestamp
    until: pd.Timestamp


def _timestamp(value: object, where: str, file: Path) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(str(value).strip())
    except (ValueError, TypeError):
        message = f"{where}: {value!r} is not a time such as 2024-03-12T12:30Z"
        raise DataError(message, file=file) from None
    if stamp is pd.NaT:
        raise DataError(f"{where}: missing time", file=file)
    if stamp.tzinfo is None:
        raise DataError(f"{where}: {value!r} has no time zone (write Z for UTC)", file=file)
    return stamp.tz_convert("UTC")


def read_calendar(path: Path) -> Calendar:
    """One calendar file: `covers: {from, until}` (optional in a user's file: then its first
    and last event) and `events: [{time, kind}, ...]`. Errors name the file and the entry."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise DataError(f"cannot read the events file ({exc.strerror})", file=path) from None
    except yaml.YAMLError as exc:
        raise DataError(f"not valid YAML: {exc}", file=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise DataError("an events file needs a list under `events:`", file=path)
    times, kinds = [], []
    for i, entry in enumerate(data["events"]):
        where = f"events[{i}]"
        if not isinstance(entry, dict) or "time" not in entry:
            raise DataError(f"{where}: each event needs a `time` (and a `kind`)", file=path)
        times.append(_timestamp(entry["time"], f"{where}.time", file=path))
        kinds.append(str(entry.get("kind", "user")))
    covers = data.get("covers") or {}
    if not isinstance(covers, dict):
        raise DataError("`covers` needs `from` and `until`", file=path)
    if not times and not covers:
        raise DataError("no events and no `covers` span", file=path)
    start = _timestamp(covers["from"], "covers.from", path) if "from" in covers else min(times)
    until = _timestamp(covers["until"], "covers.until", path) if "until" in covers else max(times)
    order = np.argsort(np.asarray([t.value for t in times], dtype="int64"), kind="stable")
    return Calendar(
        times=pd.DatetimeIndex([times[i] for i in order], tz="UTC"),
        kinds=tuple(kinds[i] for i in order),
        start=start,
        until=until,
    )


def merged(base: Calendar, extra: Calendar) -> Calendar:
    """The packaged calendar with a user's events added; the span grows only where the user's
    file is complete and joins the packaged span."""
    times = base.times.append(extra.times)
    order = np.argsort(times.asi8, kind="stable")
    kinds = base.kinds + extra.kinds
    joins = extra.start <= base.until
    return Calendar(
        times=times[order],
        kinds=tuple(kinds[i] for i in order),
        start=base.start,
        until=max(base.until, extra.until) if joins else base.until,
    )


@lru_cache(maxsize=4)
def _calendar(extra: str | None) -> Calendar:
    base = read_calendar(PACKAGED)
    return merged(base, read_calendar(Path(extra))) if extra else base


def calendar() -> Calendar:
    """The calendar features use: the packaged one plus `$FLUSHCAST_EVENTS` if set."""
    return _calendar(os.environ.get(ENV) or None)


def covered_until() -> pd.Timestamp:
    """The last instant the calendar is complete for: bars closing after it (less a week) get
    missing event features, so a service scoring them should say so."""
    return calendar().until


def _capped(hours: np.ndarray) -> np.ndarray:
    """Hours capped at a week; no event at all (NaN) reads as the cap too."""
    return np.minimum(np.nan_to_num(hours, nan=CAP_HOURS), CAP_HOURS)


def event_features(closes: pd.DatetimeIndex, cal: Calendar) -> dict[str, np.ndarray]:
    """The event columns for bars closing at `closes` (hours to the next release at or after
    the close, since the last one before it; NaN where the calendar cannot tell)."""
    hour = pd.Timedelta(hours=1)
    c = closes.as_unit("ns").asi8  # one unit: grids are in µs, parsed calendars in ns
    ev = cal.times.as_unit("ns").asi8[cal.times <= cal.until]
    nxt = np.searchsorted(ev, c, side="left")
    to_next = np.full(len(c), np.nan)
    has = nxt < len(ev)
    to_next[has] = (ev[nxt[has]] - c[has]) / hour.value
    horizon_end = closes + pd.Timedelta(hours=CAP_HOURS)
    known_ahead = np.asarray(horizon_end <= cal.until) | (to_next <= CAP_HOURS)
    to_next = np.where(known_ahead, _capped(to_next), np.nan)
    out = {"event_hours_to_next": to_next}
    for h in WITHIN_HOURS:
        within = np.where(to_next <= h, 1.0, 0.0)
        unknown = np.isnan(to_next) & np.asarray(closes + pd.Timedelta(hours=h) > cal.until)
        within[unknown] = np.nan
        within[np.isnan(to_next) & ~unknown] = 0.0
        out[f"event_within_{h}h"] = within
    last = np.searchsorted(ev, c, side="left") - 1
    since = np.full(len(c), np.nan)
    has = last >= 0
    since[has] = (c[has] - ev[last[has]]) / hour.value
    known_behind = np.asarray(closes - pd.Timedelta(hours=CAP_HOURS) >= cal.start) | (
        since <= CAP_HOURS
    )
    since = np.where(known_behind, _capped(since), np.nan)
    inside = np.asarray((closes >= cal.start) & (closes <= cal.until))
    out["event_hours_since_last"] = np.where(inside, since, np.nan)
    for name in out:
        if name != "event_hours_since_last":
            out[name] = np.where(np.asarray(closes >= cal.start), out[name], np.nan)
    return out


def compute(g: SeriesGrid) -> dict[str, np.ndarray]:
    return event_features(g.timestamps + g.bar, calendar())
