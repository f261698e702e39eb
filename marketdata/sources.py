"""What an adapter hands to the ingest pipeline: one source's rows for one symbol and venue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import pandas as pd

Kind = Literal["bars", "funding"]


@dataclass(frozen=True)
class SourceFrame:
    """Rows one adapter read from one file.

    kind "bars": `data` has a tz-aware UTC `timestamp` (bar open, at the source's own bar size,
    e.g. 5 min) and some canonical value columns, already in canonical units (USD, fraction per
    8 h) except those named in `coin_columns`. The pipeline resamples to the series' bar and
    merges sources.

    kind "funding": `data` has `timestamp` (settlement time, UTC) and `funding_rate` (fraction per
    8 h, already rescaled from the venue's interval). The pipeline forward-fills it onto bars: a
    rate is in force from its settlement until the next.

    An optional `line` column (`marketdata.resample.LINE`) holds each row's 1-based line (or
    record) in the file, so every later check can name it.

    `name` says which file and which part of it the rows came from; it is recorded per column in
    the store's provenance and quoted in conflict messages. `file` is the path errors name
    (default: `name`).
    """

    name: str
    symbol: str
    venue: str
    data: pd.DataFrame
    kind: Kind = "bars"
    bar: pd.Timedelta | None = None
    """The source's own bar when the format declares it; None: inferred from the spacing."""
    file: str | None = None
    series: str | None = None
    """A vendor series key: frames with the same key are snapshots of one series that revise
    each other (the newer `as_of` wins on their overlap) instead of conflicting."""
    as_of: pd.Timestamp | None = None
    coin_columns: tuple[str, ...] = ()
    """Amount columns in coin units: the pipeline values them at the close of the same bar (the
    file's own close when it has one, before aggregating; else the series' close)."""

    @property
    def where(self) -> str:
        return self.file or self.name


class Adapter(Protocol):
    """Reads one file in its native format, as the user has it.

    `symbol`, `tz` and `venue` override or supply what the file does not say itself (a format with
    naive timestamps needs `tz`; an adapter raises DataError when it needs one and gets none).
    Some sources take further options (see `marketdata.ingest.SOURCES`) as keywords.
    """

    def __call__(
        self,
        path: Path,
        *,
        symbol: str | None = None,
        tz: str | None = None,
        venue: str | None = None,
    ) -> list[SourceFrame]: ...
