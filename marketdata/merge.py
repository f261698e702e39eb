"""Merging several sources of one (symbol, venue) onto one bar grid.

Each column keeps the name of every source that supplied it, and every cell remembers which
source and which line of its file it came from, so a later check can point into the file.
Where two sources supply the same column at the same bar:

- two *different* sources must agree within a tolerance; otherwise the merge fails and names
  both sources, the bar and the column (a wrong time zone shows up exactly so). Values are never
  averaged;
- two snapshots of *one* vendor series (same `Source.series`) are revisions: the newer one (by
  `as_of`) supersedes the older on their overlap, whichever is merged first;
- a source merged with `replace` supersedes whatever is there (a corrected file).

Superseded values are counted (`Revision`): how many bars changed and by how much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError
from flushcast.marketdata.resample import LINE
from flushcast.marketdata.schema import BAR, FUNDING_INTERVAL_HOURS, PRICE_COLUMNS
from flushcast.marketdata.validate import Locate

PRICE_RTOL = 0.005
"""Relative disagreement allowed between two sources' prices (and other notionals) at one bar.
Same-venue sources agree to the tick; half a percent leaves room for vendor rounding and unit
conversions, while a time-zone shift of even an hour usually exceeds it somewhere."""

FUNDING_ATOL = 1e-6
"""Absolute disagreement allowed between two funding rates (0.01 bp per 8 h)."""

FUNDING_MAX_STALE_INTERVALS = 3
"""A settlement stays in force until the next one; after this many missed settlements the
funding series is taken to have a gap, not to be constant."""

STORED = "store"
"""Source name of the rows already in the store when new files are merged in."""

PART = "__part"
"""Column of a concatenated part: which of its sources each row came from (index)."""


@dataclass(frozen=True)
class Source:
    """Where a part comes from, and which rule applies where it overlaps stored values."""

    name: str
    """Recorded in provenance and quoted in messages."""
    file: str | None = None
    """The file errors name (None: the rows are already stored)."""
    series: str | None = None
    """A vendor series key: parts with the same key are snapshots that revise each other."""
    as_of: pd.Timestamp | None = None
    """When a snapshot was taken: the newer supersedes the older on their overlap."""
    replace: bool = False
    """Supersede whatever is there (a corrected file)."""


@dataclass
class Revision:
    """What one source changed where it superseded earlier values: bars compared (overlapping
    and superseded), bars whose value changed, and the largest change relative to the old value
    (bars whose old value was 0 count as changed but have no ratio)."""

    source: str
    superseded: list[str]
    bars_compared: int
    bars_changed: int
    max_relative_change: float = 0.0
    column: str | None = None
    at: pd.Timestamp | None = None

    def as_record(self) -> dict:
        return {
            "source": self.source,
            "superseded": self.superseded,
            "bars_compared": self.bars_compared,
            "bars_changed": self.bars_changed,
            "max_relative_change": self.max_relative_change,
            "column": self.column,
            "at": None if self.at is None else self.at.isoformat(),
        }


def _disagree(a: np.ndarray, b: np.ndarray, column: str) -> np.ndarray:
    if column == "funding_rate":
        return np.abs(a - b) > FUNDING_ATOL
    return np.abs(a - b) > PRICE_RTOL * np.maximum(np.abs(a), np.abs(b))


def _empty() -> pd.DataFrame:
    return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="timestamp"))


class BarMerger:
    """Outer-joins bar parts (each `timestamp` + value columns, at one bar) one by one.

    Beside the values it keeps, per column and bar, the index of the source in `parts` (-1:
    none) and the line in that source's file (-1: unknown).
    """

    def __init__(self) -> None:
        self._bars = _empty()
        self._origin = _empty()
        self._lines = _empty()
        self.parts: list[Source] = []
        self.sources: dict[str, list[str]] = {}
        self.revisions: list[Revision] = []

    @property
    def bars(self) -> pd.DataFrame:
        return self._bars.reset_index()

    def _register(self, source: str | Source) -> int:
        self.parts.append(source if isinstance(source, Source) else Source(name=source))
        return len(self.parts) - 1

    def add(self, name: str | Source | Sequence[str | Source], part: pd.DataFrame) -> None:
        """Merge `part` in; `name` is its source, or the sources it was concatenated from (then
        `part[PART]` says which row came from which). An optional `line` column gives each
        row's line in its file."""
        named = [name] if isinstance(name, str | Source) else list(name)
        ids = np.array([self._register(s) for s in named], dtype=np.int32)
        part = part.set_index("timestamp")
        row_ids = (
            ids[part.pop(PART).to_numpy()]
            if PART in part.columns
            else np.full(len(part), ids[0], dtype=np.int32)
        )
        lines = part.pop(LINE).to_numpy(dtype="int64") if LINE in part.columns else None
        if lines is None:
            lines = np.full(len(part), -1, dtype=np.int64)
        index = self._bars.index.union(part.index)
        merged = self._bars.reindex(index)
        origin = self._origin.reindex(index, fill_value=-1)
        where = self._lines.reindex(index, fill_value=-1)
        at = index.get_indexer(part.index)
        n = len(index)
        changed = np.zeros(n, dtype=bool)
        compared = np.zeros(n, dtype=bool)
        worst: tuple[float, str | None, int] = (0.0, None, -1)
        superseded: set[int] = set()
        for column in part.columns:
            incoming = np.full(n, np.nan)
            incoming[at] = part[column].to_numpy(dtype="float64")
            inc_src = np.full(n, -1, dtype=np.int32)
            inc_src[at] = row_ids
            has_inc = ~np.isnan(incoming)
            if not has_inc.any():
                continue
            inc_line = np.full(n, -1, dtype=np.int64)
            inc_line[at] = lines
            if column in merged.columns:
                current = merged[column].to_numpy(dtype="float64")
                cur_src = origin[column].to_numpy(dtype=np.int32)
            else:
                current = np.full(n, np.nan)
                cur_src = np.full(n, -1, dtype=np.int32)
            both = has_inc & ~np.isnan(current)
            take = has_inc & np.isnan(current)
            if both.any():
                wins, keeps = self._rule(cur_src, inc_src, both)
                self._check_agreement(
                    current,
                    incoming,
                    both & ~wins & ~keeps,
                    column,
                    index,
                    cur_src,
                    inc_src,
                    inc_line,
                )
                wins &= both
                compared |= wins
                diff = wins & (current != incoming)
                changed |= diff
                if diff.any():
                    superseded.update(int(s) for s in np.unique(cur_src[diff]))
                    # Relative to the old value; a change from 0 counts as changed, has no ratio.
                    rated = diff & (current != 0)
                    if rated.any():
                        rel = np.abs(incoming[rated] - current[rated]) / np.abs(current[rated])
                        i = int(np.argmax(rel))
                        if rel[i] > worst[0]:
                            worst = (float(rel[i]), column, int(np.flatnonzero(rated)[i]))
                take |= wins
            merged[column] = np.where(take, incoming, current)
            origin[column] = np.where(take, inc_src, cur_src).astype(np.int32)
            held = where[column].to_numpy(dtype="int64") if column in where.columns else -1
            where[column] = np.where(take, inc_line, held)
            known = self.sources.setdefault(column, [])
            for s in np.unique(inc_src[has_inc]):
                label = self.parts[int(s)].name
                if label not in known:
                    known.append(label)
        if compared.any():
            self.revisions.append(
                Revision(
                    source=", ".join(dict.fromkeys(self.parts[int(i)].name for i in ids)),
                    superseded=sorted(dict.fromkeys(self.parts[s].name for s in superseded)),
                    bars_compared=int(compared.sum()),
                    bars_changed=int(changed.sum()),
                    max_relative_change=worst[0],
                    column=worst[1],
                    at=None if worst[2] < 0 else index[worst[2]],
                )
            )
        self._bars, self._origin, self._lines = merged, origin, where

    def _rule(
        self, cur_src: np.ndarray, inc_src: np.ndarray, both: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per bar where both have a value: does the incoming win, or does the current stay
        without a check? (Neither: two sources that must agree.)"""
        n = len(self.parts)
        codes: dict[str, int] = {}
        key = np.array(
            [codes.setdefault(p.series, len(codes)) if p.series else -1 for p in self.parts] + [-1],
            dtype=np.int64,
        )
        has_key = key >= 0
        as_of = np.array(
            [p.as_of.value if p.as_of is not None else np.iinfo(np.int64).min for p in self.parts]
            + [np.iinfo(np.int64).min],
            dtype=np.int64,
        )
        replace = np.array([p.replace for p in self.parts] + [False])
        cs = np.where(cur_src >= 0, cur_src, n)
        ins = np.where(inc_src >= 0, inc_src, n)
        same = has_key[cs] & has_key[ins] & (key[cs] == key[ins])
        newer = as_of[ins] > as_of[cs]
        wins = both & (replace[ins] | (same & newer))
        keeps = both & ~wins & same
        return wins, keeps

    def _check_agreement(
        self,
        current: np.ndarray,
        incoming: np.ndarray,
        check: np.ndarray,
        column: str,
        index: pd.DatetimeIndex,
        cur_src: np.ndarray,
        inc_src: np.ndarray,
        inc_line: np.ndarray,
    ) -> None:
        if not check.any():
            return
        bad = np.zeros(len(check), dtype=bool)
        bad[check] = _disagree(current[check], incoming[check], column)
        if not bad.any():
            return
        i = int(np.flatnonzero(bad)[0])
        earlier, later = self.parts[int(cur_src[i])], self.parts[int(inc_src[i])]
        hint = (
            " (prices disagree: is one source's time zone wrong?)"
            if column in PRICE_COLUMNS
            else ""
        )
        raise DataError(
            f"sources disagree at bar {index[i]}: {earlier.name} has {current[i]:.10g}, "
            f"{later.name} has {incoming[i]:.10g} ({int(bad.sum())} bars disagree){hint}",
            file=later.file,
            row=int(inc_line[i]) if inc_line[i] >= 0 else None,
            column=column,
        )

    def claim(self, source: Source, columns: Sequence[str], first, last) -> None:
        """Mark the current values of `columns` in [first, last] as coming from `source` (the
        snapshot that supplied them, as recorded in the store's provenance)."""
        sid = self._register(source)
        inside = (self._bars.index >= first) & (self._bars.index <= last)
        for column in columns:
            if column in self._bars.columns:
                held = inside & self._bars[column].notna().to_numpy()
                self._origin.loc[held, column] = sid

    def locate(self, keep: np.ndarray) -> Locate:
        """(position, column) -> (file, line) for the bars selected by `keep`."""
        origin = self._origin[keep]
        lines = self._lines[keep]

        def where(pos: int, column: str) -> tuple[str | None, int | None]:
            columns = [column] if column in origin.columns else list(origin.columns)
            for col in columns:
                sid = int(origin[col].iat[pos])
                if sid >= 0:
                    part = self.parts[sid]
                    line = int(lines[col].iat[pos])
                    if part.file is None:
                        held = "" if part.name == STORED else f" (values from {part.name})"
                        return f"the store{held}", None
                    return part.file, line if line >= 0 else None
            return None, None

        return where


def funding_part(
    settlements: pd.DataFrame, bar_opens: pd.Series, bar: pd.Timedelta = BAR
) -> pd.DataFrame:
    """`funding_on_bars` as a part to merge: `timestamp` (the bar opens), `funding_rate`, and
    `line` (the settlement's line in its file) when the settlements carry one."""
    settlements = settlements.sort_values("timestamp")
    spacing = settlements["timestamp"].diff().median()
    if pd.isna(spacing):
        spacing = pd.Timedelta(hours=FUNDING_INTERVAL_HOURS)
    carried = ["close_time", "funding_rate"] + ([LINE] if LINE in settlements.columns else [])
    closes = pd.DataFrame({"close_time": (bar_opens + bar).to_numpy()})
    joined = pd.merge_asof(
        closes,
        settlements.rename(columns={"timestamp": "close_time"})[carried],
        on="close_time",
        direction="backward",
        allow_exact_matches=True,
        tolerance=spacing * FUNDING_MAX_STALE_INTERVALS,
    )
    out = pd.DataFrame(
        {"timestamp": bar_opens.to_numpy(), "funding_rate": joined["funding_rate"].to_numpy()}
    )
    if LINE in settlements.columns:
        out[LINE] = joined[LINE].fillna(-1).to_numpy(dtype="int64")
    return out


def funding_on_bars(
    settlements: pd.DataFrame, bar_opens: pd.Series, bar: pd.Timedelta = BAR
) -> pd.Series:
    """The funding rate in force at each bar's close, from settlement times and rates.

    A rate settles at its timestamp and stays in force until the next settlement, so a bar gets
    the last settlement at or before its close (bar open + bar). Nothing later is used.
    """
    rates = funding_part(settlements, bar_opens, bar)["funding_rate"].to_numpy()
    return pd.Series(rates, index=bar_opens.index, name="funding_rate")
