"""Funding-rate histories in the CSV layouts found in the wild, recognised by their header.

    supervik   Symbol,Date,Funding Rate
               `Date` is naive local time, so `tz` is required. The fetcher writes UTC+3 for
               binance, bybit, htx, kucoin and mexc and UTC for gate (checked against Binance
               settlements); the venue comes from the file name <SYM>_<venue>_<from>_<to>_...csv.
    pakchu     funding_time_ms,funding_time_utc,symbol,funding_rate,...   (Binance USDT-M)
               date,symbol,funding_rate,funding_time,mark_price           (Binance USDT-M)
               epoch-ms UTC settlement times; venue binance unless given.

Rates in these files are fractions per funding interval. The interval is the file's most common
settlement spacing (dYdX: 1 h, most venues: 8 h); rates are rescaled to the canonical fraction per
8 h. One interval per file rather than per row: gaps in a history and irregular settlements (HTX
has 5-10 h spacings) would otherwise rescale single rates by noise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flushcast.common.errors import DataError, shorten
from flushcast.marketdata.adapters.textcsv import (
    drop_repeated,
    epoch_ms,
    naive_times,
    numbers,
    read_fields,
)
from flushcast.marketdata.resample import LINE
from flushcast.marketdata.schema import FUNDING_INTERVAL_HOURS
from flushcast.marketdata.sources import SourceFrame
from flushcast.marketdata.timezones import naive_to_utc, require_utc

Times = Callable[[pd.DataFrame, Path, str | None], pd.Series]


def _supervik_times(raw: pd.DataFrame, path: Path, tz: str | None) -> pd.Series:
    return naive_to_utc(
        naive_times(raw["Date"], file=path, column="Date"),
        tz,
        file=path,
        column="Date",
        first_line=0,  # raw.index already holds file line numbers
    )


@dataclass(frozen=True)
class Layout:
    name: str
    header: tuple[str, ...]  # the leading header fields that identify the layout
    symbol: str
    rate: str
    time: str
    times: Times


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "supervik",
        ("Symbol", "Date", "Funding Rate"),
        "Symbol",
        "Funding Rate",
        "Date",
        _supervik_times,
    ),
    Layout(
        "pakchu settlements with marks",
        ("funding_time_ms", "funding_time_utc", "symbol", "funding_rate"),
        "symbol",
        "funding_rate",
        "funding_time_ms",
        lambda raw, path, tz: epoch_ms(raw["funding_time_ms"], file=path, column="funding_time_ms"),
    ),
    Layout(
        "pakchu settlements",
        ("date", "symbol", "funding_rate", "funding_time"),
        "symbol",
        "funding_rate",
        "funding_time",
        lambda raw, path, tz: epoch_ms(raw["funding_time"], file=path, column="funding_time"),
    ),
)

_SUPERVIK_NAME = re.compile(r"^[A-Za-z0-9-]+_(?P<venue>[a-z0-9]+)_\d{4}-\d{2}-\d{2}_")


def _header(path: Path) -> tuple[str, ...]:
    try:
        return tuple(pd.read_csv(path, nrows=0, compression="infer").columns)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=path) from None
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise DataError(f"not a readable CSV: {err}", file=path) from None


def _layout(path: Path, header: tuple[str, ...]) -> Layout:
    for layout in LAYOUTS:
        if header[: len(layout.header)] == layout.header:
            return layout
    if "funding_time" in header and not any("rate" in h.lower() for h in header):
        raise DataError(
            f"this file has settlement times but no funding rate (header {', '.join(header)})",
            file=path,
            row=1,
        )
    known = "; ".join(",".join(layout.header) for layout in LAYOUTS)
    raise DataError(
        f"unrecognised funding CSV header {shorten(','.join(header))}; "
        f"known layouts start with: {known}",
        file=path,
        row=1,
    )


def _venue(path: Path, layout: Layout) -> str:
    if layout.name != "supervik":
        return "binance"
    match = _SUPERVIK_NAME.match(path.name)
    if match is None:
        raise DataError(
            "cannot tell the venue from the file name (<SYM>_<venue>_<from>_<to>_...): pass venue",
            file=path,
        )
    return match["venue"]


def funding_interval(settlements: pd.Series, *, file: Path) -> pd.Timedelta:
    """The most common spacing of settlement times, to the nearest hour (exchange clocks jitter
    by milliseconds)."""
    steps = settlements.sort_values().diff().dropna().dt.round("1h")
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        raise DataError(
            "cannot infer the funding interval from fewer than two settlements",
            file=file,
            column="timestamp",
        )
    return steps.mode().iloc[0]


def read(
    path: Path,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
) -> list[SourceFrame]:
    """One funding CSV as kind "funding": settlement `timestamp` (UTC), `funding_rate` per 8 h."""
    path = Path(path)
    header = _header(path)
    layout = _layout(path, header)
    if layout.name == "supervik" and tz is None:
        raise DataError(
            "supervik funding files have naive local times: pass tz ('+03:00' for binance, "
            "bybit, htx, kucoin, mexc; 'UTC' for gate)",
            file=path,
            column="Date",
        )
    if layout.name != "supervik":
        require_utc(tz, path)
    raw = read_fields(path, header, header_lines=1)
    table = pd.DataFrame(
        {
            # Settlements carry millisecond jitter (…:00.008); whole seconds put one settlement
            # on the same bar however late its event was stamped.
            "timestamp": layout.times(raw, path, tz).dt.round("1s"),
            "symbol": raw[layout.symbol].str.replace(r"[-_/]", "", regex=True).str.upper(),
            layout.rate: numbers(raw[layout.rate], file=path, column=layout.rate),
        },
        index=raw.index,
    )
    missing = table["symbol"].isna().to_numpy()
    if missing.any():
        line = int(table.index[missing][0])
        raise DataError("missing symbol", file=path, row=line, column=layout.symbol)
    venue = venue or _venue(path, layout)
    frames = []
    for market, rows in table.groupby("symbol", sort=True):
        rows = drop_repeated(rows.drop(columns="symbol"), "timestamp", file=path)
        interval = funding_interval(rows["timestamp"], file=path)
        per_8h = rows[layout.rate] * (pd.Timedelta(hours=FUNDING_INTERVAL_HOURS) / interval)
        data = pd.DataFrame(
            {"timestamp": rows["timestamp"], "funding_rate": per_8h, LINE: rows.index}
        )
        data = data.sort_values("timestamp").reset_index(drop=True)
        frames.append(
            SourceFrame(
                name=path.name,
                symbol=symbol or str(market),
                venue=venue,
                data=data,
                kind="funding",
            )
        )
    return frames
