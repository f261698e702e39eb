"""Files already in the canonical column names (the README's table), as CSV or Parquet.

`timestamp` (bar open; ISO-8601 with an offset, or without one meaning UTC as the canonical
frame defines it, or a tz-aware Parquet column), `symbol`, optionally `venue` (else `venue`
must be given), the four prices and any of the optional columns in canonical units. An unknown
column is an error (a misspelt `volume_usd` would otherwise vanish silently). The bar is the
spacing of the timestamps; `--bar` on the ingest aggregates it into a coarser one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError, shorten
from flushcast.marketdata.adapters.textcsv import numbers, read_records
from flushcast.marketdata.resample import LINE
from flushcast.marketdata.schema import COLUMNS, VALUE_COLUMNS
from flushcast.marketdata.sources import SourceFrame
from flushcast.marketdata.timezones import require_utc


def _times(raw: pd.Series, path: Path) -> pd.Series:
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return raw.dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    text = raw.astype("string").str.strip()
    try:
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    except (ValueError, TypeError):
        raise DataError("timestamps mix forms; use one", file=path, column="timestamp") from None
    bad = parsed.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"cannot parse {shorten(text.iloc[pos])} as a date-time",
            file=path,
            row=int(raw.index[pos]),
            column="timestamp",
        )
    return parsed.astype("datetime64[us, UTC]")


def read(
    path: Path,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
) -> list[SourceFrame]:
    """One canonical file as bars per (symbol, venue)."""
    path = Path(path)
    require_utc(tz, path)
    table = read_records(path)
    unknown = [c for c in table.columns if c not in COLUMNS]
    if unknown:
        raise DataError(
            f"not a canonical column: {shorten(unknown[0])} (canonical: {', '.join(COLUMNS)})",
            file=path,
            row=1,
            column=str(unknown[0]),
        )
    for column, given in (("symbol", symbol), ("venue", venue)):
        if column not in table.columns and given is None:
            raise DataError(f"no {column} column: pass --{column}", file=path, column=column)
    if "timestamp" not in table.columns:
        raise DataError("no timestamp column", file=path, column="timestamp")
    data = pd.DataFrame({"timestamp": _times(table["timestamp"], path)}, index=table.index)
    for column in VALUE_COLUMNS:
        if column in table.columns:
            data[column] = numbers(table[column], file=path, column=column, required=False)
    data[LINE] = table.index.to_numpy()
    symbols = pd.Series(symbol, index=table.index) if symbol else table["symbol"].astype("string")
    venues = pd.Series(venue, index=table.index) if venue else table["venue"].astype("string")
    frames = []
    for (sym, ven), rows in data.groupby([symbols.to_numpy(), venues.to_numpy()], sort=True):
        rows = rows.sort_values("timestamp", kind="stable")
        repeated = rows["timestamp"].duplicated().to_numpy()
        if repeated.any():
            line = int(rows[LINE].to_numpy()[repeated][0])
            raise DataError(
                f"{sym} on {ven}: a second row for one bar", file=path, row=line, column="timestamp"
            )
        frames.append(
            SourceFrame(
                name=path.name,
                symbol=str(sym),
                venue=str(ven),
                data=rows.reset_index(drop=True),
                file=str(path),
            )
        )
    return frames
