"""Users' own exports (CSV or Parquet), read through a YAML mapping (`marketdata.adapters.mapping`).

The mapping says which column is the time (and its zone), which the symbol (with aliases such as
`BTC` -> `BTCUSDT`) and the venue, which source column fills which canonical column and in which
unit (funding in percent or fraction per interval, amounts in USD or coin), which values mean
"not collected" (zero-padding before a series starts), and the bar. A committed example for the
shared daily CoinGlass export is `docs/mappings/le1ma1_coinglass_1d.yaml`.

Rows are located by file line for CSV (the header is line 1) and by 1-based record for Parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError, shorten
from flushcast.marketdata.adapters.mapping import FUNDING_UNITS, FileSpec, Mapping, load_mapping
from flushcast.marketdata.adapters.textcsv import naive_times, numbers, read_records
from flushcast.marketdata.resample import LINE
from flushcast.marketdata.schema import FUNDING_INTERVAL_HOURS
from flushcast.marketdata.sources import SourceFrame
from flushcast.marketdata.timezones import naive_to_utc, require_utc


def _need(table: pd.DataFrame, column: str, key: str, mapping: Mapping, path: Path) -> pd.Series:
    if column not in table.columns:
        found = ", ".join(map(str, table.columns))
        raise DataError(
            f"no column {shorten(column)} (mapping key '{key}' of {mapping.path}; found {found})",
            file=path,
            column=column,
        )
    return table[column]


def _times(table: pd.DataFrame, mapping: Mapping, path: Path, tz: str | None) -> pd.Series:
    raw = _need(table, mapping.time_column, "time.column", mapping, path)
    column = mapping.time_column
    zone = tz or mapping.time_zone
    if mapping.time_format in ("epoch_ms", "epoch_s"):
        require_utc(zone, path)
        values = numbers(raw, file=path, column=column)
        unit = "ms" if mapping.time_format == "epoch_ms" else "s"
        return pd.Series(
            pd.to_datetime(values.round().astype("int64"), unit=unit, utc=True), index=raw.index
        ).astype("datetime64[us, UTC]")
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        require_utc(tz, path)
        return raw.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    text = raw.astype("string").str.strip()
    fmt = "ISO8601" if mapping.time_format == "iso" else mapping.time_format
    parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        require_utc(tz, path)
        bad = parsed.isna().to_numpy()
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"cannot parse {shorten(text.iloc[pos])} as a date-time",
                file=path,
                row=int(raw.index[pos]),
                column=column,
            )
        return parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    times = naive_times(text, file=path, column=column, fmt=fmt)
    return naive_to_utc(times, zone, file=path, column=column, first_line=0)


def _labels(
    table: pd.DataFrame, column: str | None, value: str | None, key: str, mapping, path
) -> pd.Series:
    if column is None:
        return pd.Series(value, index=table.index, dtype="object")
    raw = _need(table, column, key, mapping, path).astype("string").str.strip()
    missing = (raw.isna() | (raw == "")).to_numpy()
    if missing.any():
        line = int(raw.index[np.flatnonzero(missing)[0]])
        raise DataError(f"missing {key.split('.')[0]}", file=path, row=line, column=column)
    return raw.astype(str)


def _filter(table: pd.DataFrame, spec: FileSpec, mapping: Mapping, path: Path) -> pd.DataFrame:
    keep = np.ones(len(table), dtype=bool)
    for column, values in spec.filter.items():
        cells = _need(table, column, "filter", mapping, path).astype("string").str.strip()
        keep &= cells.isin(values).to_numpy()
    return table[keep]


def _not_collected(values: pd.Series, symbols: pd.Series, spec: FileSpec) -> pd.Series:
    """NaN where a value means "not collected": everywhere, or only in a series' leading run."""
    if not spec.not_collected:
        return values
    padded = values.isin(spec.not_collected) | values.isna()
    if spec.leading_only:
        started = (~padded).groupby(symbols.to_numpy(), sort=False).cummax()
        padded &= ~started
    return values.mask(padded)


def read(
    path: Path,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
    mapping: Path | Mapping | None = None,
) -> list[SourceFrame]:
    """One export as bars per (symbol, venue), in canonical units except coin amounts (which
    the pipeline values at the bar close)."""
    path = Path(path)
    if mapping is None:
        raise DataError("the table source needs --mapping MAP.yaml", file=path)
    spec_map = mapping if isinstance(mapping, Mapping) else load_mapping(Path(mapping))
    spec = spec_map.for_file(path)
    if symbol is not None and spec_map.symbol_column is not None:
        raise DataError(
            f"the mapping takes symbols from column {shorten(spec_map.symbol_column)}; "
            "--symbol does "
            "not apply",
            file=path,
        )
    table = _filter(read_records(path), spec, spec_map, path)
    if table.empty:
        return []
    symbols = _labels(
        table, spec_map.symbol_column, symbol or spec_map.symbol, "symbol.column", spec_map, path
    )
    if symbols.isna().any():
        raise DataError(
            f"the mapping {spec_map.path} names no symbol: add 'symbol' or pass --symbol",
            file=path,
        )
    symbols = symbols.replace(spec_map.aliases)
    venues = _labels(
        table, spec_map.venue_column, venue or spec_map.venue, "venue.column", spec_map, path
    )
    if venue is not None:
        venues = pd.Series(venue, index=table.index, dtype="object")
    if venues.isna().any():
        raise DataError(
            f"the mapping {spec_map.path} names no venue: add 'venue' or pass --venue", file=path
        )
    times = _times(table, spec_map, path, tz)
    # Series by series in time order, so "leading" means before a series' first value.
    order = np.lexsort((times.to_numpy(), venues.to_numpy(), symbols.to_numpy()))
    table, symbols, venues = table.iloc[order], symbols.iloc[order], venues.iloc[order]
    data = pd.DataFrame({"timestamp": times.iloc[order]}, index=table.index)
    for col in spec.columns:
        key = f"columns.{col.canonical}"
        raw = _need(table, col.source, key, spec_map, path)
        values = numbers(raw, file=path, column=col.source, required=False)
        values = _not_collected(values, symbols, spec)
        if col.canonical == "funding_rate":
            scale = FUNDING_UNITS[col.unit or "fraction"]
            values = values / scale * (FUNDING_INTERVAL_HOURS / col.interval_hours)
        data[col.canonical] = values
    data[LINE] = table.index.to_numpy()
    coins = tuple(c.canonical for c in spec.columns if c.unit == "coin")
    frames = []
    keys = pd.DataFrame({"symbol": symbols, "venue": venues})
    for (sym, ven), rows in data.groupby([keys["symbol"], keys["venue"]], sort=True):
        repeated = rows["timestamp"].duplicated().to_numpy()
        if repeated.any():
            line = int(rows[LINE].to_numpy()[repeated][0])
            raise DataError(
                f"{sym} on {ven}: a second row for {rows['timestamp'].to_numpy()[repeated][0]}",
                file=path,
                row=line,
                column=spec_map.time_column,
            )
        frames.append(
            SourceFrame(
                name=path.name,
                symbol=str(sym),
                venue=str(ven),
                data=rows.reset_index(drop=True),
                bar=spec_map.bar,
                file=str(path),
                coin_columns=coins,
            )
        )
    return frames
