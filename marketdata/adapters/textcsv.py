"""Reading vendor CSVs field by field, so every bad value is reported by file line and column.

pandas' own parsers either guess (a stray letter turns a column into text) or fail with an
internal traceback; adapters instead read text, convert each column here, and name the 1-based
file line of the first bad value.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError, shorten
from flushcast.marketdata.compressed import read_bytes


def _short_line(data: bytes, width: int, skip: int) -> tuple[int, int] | None:
    """(1-based line, fields) of the first non-blank line after `skip` lines with fewer than
    `width` comma-separated fields: a truncated write (pandas would fill the missing fields
    with NaN, indistinguishable from empty cells). Quoted CSV is left to pandas."""
    if b'"' in data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == ord("\n"))
    if len(buf) and buf[-1] != ord("\n"):
        ends = np.append(ends, len(buf))
    starts = np.r_[0, ends[:-1] + 1]
    commas = np.flatnonzero(buf == ord(","))
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    length = ends - starts
    if len(length):
        length = length - (buf[np.maximum(ends - 1, 0)] == ord("\r"))
    short = (fields < width) & (length > 0)
    short[:skip] = False
    if not short.any():
        return None
    line = int(np.flatnonzero(short)[0])
    return line + 1, int(fields[line])


def read_fields(path: Path, names: Sequence[str], *, header_lines: int = 0) -> pd.DataFrame:
    """Every field of `path` as text in columns `names`; the index is the 1-based file line.

    A line with more or fewer fields than `names` is a DataError naming it (a truncated last
    line is the usual case); an empty field is NaN, which the column converters report. Blank
    lines are skipped. Compressed files are read within `marketdata.compressed`'s limits.
    """
    width = len(names)
    data = read_bytes(path)
    short = _short_line(data, width, header_lines)
    if short is not None:
        line, fields = short
        raise DataError(
            f"{fields} fields, expected {width} ({', '.join(names)}): is the line cut short?",
            file=path,
            row=line,
            column=names[fields],
        )
    try:
        raw = pd.read_csv(
            io.BytesIO(data),
            header=None,
            names=range(width + 1),  # one spare column catches a single extra field
            dtype=str,
            skiprows=header_lines,
            skip_blank_lines=False,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.ParserError as err:
        found = re.search(r"line (\d+), saw (\d+)", str(err))
        line = int(found.group(1)) if found else None  # pandas counts skipped lines too
        fields = f"{found.group(2)} fields" if found else "too many fields"
        raise DataError(
            f"{fields}, expected {width} ({', '.join(names)})", file=path, row=line
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=path) from None
    except UnicodeDecodeError as err:
        raise DataError(f"not a text CSV ({err.reason})", file=path) from None
    raw.index = raw.index + 1 + header_lines
    raw = raw[raw.notna().any(axis=1)]
    extra = raw[width].notna().to_numpy()
    if extra.any():
        line = int(raw.index[np.flatnonzero(extra)[0]])
        raise DataError(
            f"{width + 1} fields, expected {width} ({', '.join(names)})", file=path, row=line
        )
    raw = raw.drop(columns=width)
    raw.columns = list(names)
    return raw


def _first_bad(raw: pd.Series, bad: np.ndarray, what: str, file: Path, column: str):
    pos = int(np.flatnonzero(bad)[0])
    value = raw.iloc[pos]
    problem = "missing value" if pd.isna(value) else f"cannot parse {shorten(value)} as {what}"
    more = f" ({int(bad.sum())} rows in all)" if bad.sum() > 1 else ""
    raise DataError(problem + more, file=file, row=int(raw.index[pos]), column=column)


def numbers(raw: pd.Series, *, file: Path, column: str, required: bool = True) -> pd.Series:
    """Text -> float64; an unparsable value (or a missing one when `required`) is a DataError."""
    try:
        # Fast path for clean columns (about 3× faster than to_numeric on text); a bad cell
        # falls through to the slow path, which finds and names it.
        values = raw.astype("float64")
    except (ValueError, TypeError):
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = values.isna().to_numpy() & (raw.notna().to_numpy() | required)
    bad |= np.isinf(values.to_numpy())
    if bad.any():
        _first_bad(raw, bad, "a number", file, column)
    return values


def naive_times(raw: pd.Series, *, file: Path, column: str, fmt: str = "ISO8601") -> pd.Series:
    """Text wall-clock times (no zone) -> naive datetime64; unparsable or zoned -> DataError."""
    times = pd.to_datetime(raw, format=fmt, errors="coerce")
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        raise DataError(
            "timestamps carry a zone offset; this format has naive local times",
            file=file,
            column=column,
        )
    bad = times.isna().to_numpy()
    if bad.any():
        _first_bad(raw, bad, "a date-time", file, column)
    return times


def epoch_ms(raw: pd.Series, *, file: Path, column: str) -> pd.Series:
    """Text epoch milliseconds -> UTC datetime64[us, UTC]."""
    ms = numbers(raw, file=file, column=column)
    return pd.to_datetime(ms.round().astype("int64"), unit="ms", utc=True).astype(
        "datetime64[us, UTC]"
    )


def drop_repeated(frame: pd.DataFrame, key: str, *, file: Path) -> pd.DataFrame:
    """Drop rows that repeat an earlier row exactly; a repeated `key` with other values is an error.

    Exports cut at overlapping windows repeat rows verbatim (harmless); two different values for
    the same time mean the file cannot be trusted for that bar, so the line and column are named.
    """
    repeated = frame.duplicated(subset=[key], keep=False)
    if not repeated.any():
        return frame
    dups = frame[repeated]
    values = [c for c in frame.columns if c != key]
    first = dups.groupby(key, sort=False)[values].transform("first")
    differs = ~((dups[values] == first) | (dups[values].isna() & first.isna()))
    if differs.to_numpy().any():
        line_pos, col_pos = (int(a[0]) for a in np.nonzero(differs.to_numpy()))
        column = values[col_pos]
        line = int(dups.index[line_pos])
        raise DataError(
            f"{dups[key].iloc[line_pos]} appears more than once with different values "
            f"({first[column].iloc[line_pos]} and {dups[column].iloc[line_pos]})",
            file=file,
            row=line,
            column=column,
        )
    return frame[~frame.duplicated(subset=[key], keep="first")]


def check_header(
    header: Sequence[str], expected: Sequence[str], *, file: str | Path, what: str
) -> None:
    """The header row (line 1) must be exactly `expected`; names the first column that differs."""
    for i, name in enumerate(expected):
        got = header[i] if i < len(header) else None
        if got != name:
            raise DataError(
                f"{what}: header column {i + 1} is {shorten(got)}, expected {shorten(name)}",
                file=file,
                row=1,
                column=got or name,
            )
    if len(header) != len(expected):
        raise DataError(
            f"{what}: {len(header)} header columns, expected {len(expected)}", file=file, row=1
        )


def read_records(path: Path) -> pd.DataFrame:
    """A table with a header row (CSV, possibly compressed) or a Parquet file: CSV cells as text
    indexed by file line (the header is line 1), Parquet columns as stored indexed by 1-based
    record, so errors can name either."""
    if path.suffix.lower() == ".parquet":
        try:
            table = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"not a readable parquet file: {exc}", file=path) from None
        table.index = pd.RangeIndex(1, len(table) + 1)
        return table
    data = read_bytes(path)
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    header = [c.strip() for c in first.rstrip("\r").split(",")]
    if header == [""]:
        raise DataError("the file is empty", file=path)
    return read_fields(path, header, header_lines=1)
