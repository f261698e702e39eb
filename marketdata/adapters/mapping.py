"""The YAML mapping that tells `flushcast ingest table` how to read a user's own export.

The format is documented, with examples, in `docs/mappings/README.md`. Every key is checked: an
unknown or mistyped key, a wrong type or an unknown canonical column is a DataError naming the
mapping file and the key (`files[2].columns.funding_rate.unit`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from flushcast.common import yamlfile
from flushcast.common.errors import ECHO_CHARS, DataError, shorten
from flushcast.marketdata.schema import (
    NON_NEGATIVE_COLUMNS,
    PRICE_COLUMNS,
    VALUE_COLUMNS,
    parse_bar,
)

AMOUNT_COLUMNS = tuple(c for c in NON_NEGATIVE_COLUMNS if c != "long_short_ratio")
FUNDING_UNITS = {"fraction": 1.0, "percent": 100.0, "bp": 10_000.0}
AMOUNT_UNITS = ("usd", "coin")
TIME_FORMATS = ("iso", "epoch_ms", "epoch_s")


@dataclass(frozen=True)
class ColumnSpec:
    canonical: str
    source: str
    unit: str | None = None
    interval_hours: float = 8.0


@dataclass(frozen=True)
class FileSpec:
    match: str
    columns: tuple[ColumnSpec, ...]
    filter: dict[str, tuple[str, ...]] = field(default_factory=dict)
    not_collected: tuple[float, ...] = ()
    leading_only: bool = False


@dataclass(frozen=True)
class Mapping:
    path: Path
    files: tuple[FileSpec, ...]
    time_column: str
    time_zone: str | None = None
    time_format: str = "iso"
    bar: pd.Timedelta | None = None
    venue: str | None = None
    venue_column: str | None = None
    symbol: str | None = None
    symbol_column: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)

    def for_file(self, path: Path) -> FileSpec:
        for spec in self.files:
            if fnmatch.fnmatchcase(path.name, spec.match):
                return spec
        patterns = ", ".join(repr(s.match) for s in self.files)
        raise DataError(
            f"no entry of 'files' in mapping {self.path} matches the file name ({patterns})",
            file=path,
        )


class _Reader:
    """Walks the YAML, naming the key of every problem."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> DataError:
        return DataError(f"mapping key '{key}': {problem}", file=self.path)

    def table(self, value: Any, key: str, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping of {', '.join(sorted(allowed))}")
        for name in value:
            if name not in allowed:
                shown = name if isinstance(name, str) and len(name) <= ECHO_CHARS else shorten(name)
                raise self.fail(
                    f"{key}.{shown}" if key else shown,
                    f"unknown key (known here: {', '.join(sorted(allowed))})",
                )
        for name in sorted(required):
            if name not in value:
                raise self.fail(f"{key}.{name}" if key else name, "is required")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
            raise self.fail(key, f"expected a name, got {shorten(value)}")
        return str(value)


def load_mapping(path: Path) -> Mapping:
    """Parse and check a mapping file."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such mapping file", file=path)
    try:
        doc = yamlfile.load(path.read_text())
    except (yamlfile.YamlError, UnicodeDecodeError) as exc:
        raise DataError(f"not readable YAML: {exc}", file=path) from None
    r = _Reader(path)
    doc = r.table(doc, "", {"bar", "venue", "time", "symbol", "files"}, {"time", "files"})

    bar = None
    if "bar" in doc:
        try:
            bar = parse_bar(doc["bar"])
        except ValueError as exc:
            raise r.fail("bar", str(exc)) from None

    time = doc["time"]
    if isinstance(time, str):
        time = {"column": time}
    time = r.table(time, "time", {"column", "zone", "format"}, {"column"})
    time_format = r.text(time.get("format", "iso"), "time.format")
    if time_format not in TIME_FORMATS and "%" not in time_format:
        raise r.fail(
            "time.format", f"{shorten(time_format)}: use {', '.join(TIME_FORMATS)} or a strftime"
        )

    venue, venue_column = None, None
    if isinstance(doc.get("venue"), dict):
        venue_column = r.text(
            r.table(doc["venue"], "venue", {"column"}, {"column"})["column"], "venue.column"
        )
    elif "venue" in doc:
        venue = r.text(doc["venue"], "venue")

    symbol, symbol_column, aliases = None, None, {}
    if "symbol" in doc:
        spec = doc["symbol"]
        if isinstance(spec, str):
            spec = {"value": spec}
        spec = r.table(spec, "symbol", {"column", "value", "aliases"}, set())
        if ("column" in spec) == ("value" in spec):
            raise r.fail("symbol", "give exactly one of 'column' or 'value'")
        symbol_column = r.text(spec["column"], "symbol.column") if "column" in spec else None
        symbol = r.text(spec["value"], "symbol.value") if "value" in spec else None
        raw_aliases = spec.get("aliases", {})
        if not isinstance(raw_aliases, dict):
            raise r.fail("symbol.aliases", "expected a mapping such as {BTC: BTCUSDT}")
        aliases = {
            r.text(k, f"symbol.aliases.{k}"): r.text(v, f"symbol.aliases.{k}")
            for k, v in raw_aliases.items()
        }

    files = doc["files"]
    if not isinstance(files, list) or not files:
        raise r.fail("files", "expected a list of file entries (match, columns, ...)")
    return Mapping(
        path=path,
        files=tuple(_file_spec(r, entry, f"files[{i}]") for i, entry in enumerate(files)),
        time_column=r.text(time["column"], "time.column"),
        time_zone=None if time.get("zone") is None else r.text(time["zone"], "time.zone"),
        time_format=time_format,
        bar=bar,
        venue=venue,
        venue_column=venue_column,
        symbol=symbol,
        symbol_column=symbol_column,
        aliases=aliases,
    )


def _file_spec(r: _Reader, entry: Any, key: str) -> FileSpec:
    entry = r.table(entry, key, {"match", "columns", "filter", "not_collected"}, {"columns"})
    columns = entry["columns"]
    if not isinstance(columns, dict) or not columns:
        raise r.fail(f"{key}.columns", "expected canonical column: source column entries")
    specs = [
        _column_spec(r, canonical, spec, f"{key}.columns.{canonical}")
        for canonical, spec in columns.items()
    ]
    prices = [s.canonical for s in specs if s.canonical in PRICE_COLUMNS]
    if prices and len(prices) != len(PRICE_COLUMNS):
        missing = [c for c in PRICE_COLUMNS if c not in prices]
        raise r.fail(
            f"{key}.columns",
            f"prices come as open, high, low and close together; missing {missing}",
        )

    filters: dict[str, tuple[str, ...]] = {}
    if "filter" in entry:
        raw = entry["filter"]
        if not isinstance(raw, dict) or not raw:
            raise r.fail(f"{key}.filter", "expected source column: value (or list of values)")
        for column, values in raw.items():
            values = values if isinstance(values, list) else [values]
            filters[r.text(column, f"{key}.filter")] = tuple(
                r.text(v, f"{key}.filter.{column}") for v in values
            )

    not_collected: tuple[float, ...] = ()
    leading = False
    if "not_collected" in entry:
        spec = r.table(
            entry["not_collected"], f"{key}.not_collected", {"values", "leading"}, {"values"}
        )
        values = spec["values"] if isinstance(spec["values"], list) else [spec["values"]]
        try:
            not_collected = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise r.fail(
                f"{key}.not_collected.values", f"expected numbers, got {shorten(values)}"
            ) from None
        leading = spec.get("leading", False)
        if not isinstance(leading, bool):
            raise r.fail(
                f"{key}.not_collected.leading", f"expected true or false, got {shorten(leading)}"
            )
    return FileSpec(
        match=r.text(entry.get("match", "*"), f"{key}.match"),
        columns=tuple(specs),
        filter=filters,
        not_collected=not_collected,
        leading_only=leading,
    )


def _column_spec(r: _Reader, canonical: Any, spec: Any, key: str) -> ColumnSpec:
    if canonical not in VALUE_COLUMNS:
        raise r.fail(key, f"not a canonical column (one of {', '.join(VALUE_COLUMNS)})")
    if isinstance(spec, str):
        spec = {"column": spec}
    spec = r.table(spec, key, {"column", "unit", "interval_hours"}, {"column"})
    unit = spec.get("unit")
    if unit is not None:
        unit = r.text(unit, f"{key}.unit")
        allowed = (
            tuple(FUNDING_UNITS)
            if canonical == "funding_rate"
            else AMOUNT_UNITS
            if canonical in AMOUNT_COLUMNS
            else ()
        )
        if unit not in allowed:
            what = f"one of {', '.join(allowed)}" if allowed else "no unit (it has none)"
            raise r.fail(f"{key}.unit", f"{shorten(unit)}: {canonical} takes {what}")
    interval = spec.get("interval_hours", 8)
    if canonical != "funding_rate" and "interval_hours" in spec:
        raise r.fail(f"{key}.interval_hours", "only funding_rate has a funding interval")
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise r.fail(f"{key}.interval_hours", f"expected hours > 0, got {shorten(interval)}")
    return ColumnSpec(
        canonical=canonical,
        source=r.text(spec["column"], f"{key}.column"),
        unit=unit,
        interval_hours=float(interval),
    )
