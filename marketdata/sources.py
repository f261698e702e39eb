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
    8 h). The pipeline resamples to the canonical bar and merges sources.

    kind "funding": `data` has `timestamp` (settlement time, UTC) and `funding_rate` (fraction per
    8 h, already rescaled from the venue's interval). The pipeline forward-fills it onto bars: a
    rate is in force from its settlement until the next.

    `name` says which file and which part of it the rows came from; it is recorded per column in
    the store's provenance and quoted in conflict messages.
    """

    name: str
    symbol: str
    venue: str
    data: pd.DataFrame
    kind: Kind = "bars"


class Adapter(Protocol):
    """Reads one file in its native format, as the user has it.

    `symbol`, `tz` and `venue` override or supply what the file does not say itself (a format with
    naive timestamps needs `tz`; an adapter raises DataError when it needs one and gets none).
    """

    def __call__(
        self,
        path: Path,
        *,
        symbol: str | None = None,
        tz: str | None = None,
        venue: str | None = None,
    ) -> list[SourceFrame]: ...
