"""CoinGlass exports: one CSV per coin with aggregated (all-venue) price, liquidation, OI, funding.

Header (checked exactly): `timestamp,datetime_utc,price_open..price_close,liquidation_long_usd,
liquidation_short_usd,liquidation_total_usd,funding_open..funding_close,oi_open..oi_close,
oi_weight_open..oi_weight_close,cvd_open..cvd_close`. `timestamp` is the bar open in epoch ms UTC;
the bar (5 min, 30 min, 1 h all occur) is whatever the timestamps step by, and the pipeline
aggregates it to the canonical bar.

Units: liquidations and OI are USD (`oi_close` is the OI at bar close). Funding is the OI-weighted
rate in PERCENT per 8 h, so it is divided by 100. It is a per-bar reading of the rate in force,
not a list of settlements, so it is returned as a bar column (`funding_rate` = `funding_close`, the
rate at bar close, aggregated with "last") rather than as kind "funding": treating every bar as a
settlement would invent settlement times that CoinGlass does not report. `oi_weight_*` and `cvd_*`
(often all zeros) have no canonical column and are ignored; there is no volume.

Venue is "aggregate" unless given. The symbol comes from `symbol`, else from the first upper-case
token of the file name (`BTC_1h.csv`, `coinglass-ETH-5m.csv`), else it is a DataError.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError
from flushcast.marketdata.adapters.textcsv import (
    check_header,
    drop_repeated,
    epoch_ms,
    numbers,
    read_fields,
)
from flushcast.marketdata.resample import LINE, infer_bar
from flushcast.marketdata.sources import SourceFrame
from flushcast.marketdata.timezones import require_utc

VENUE = "aggregate"

COLUMNS: tuple[str, ...] = (
    "timestamp",
    "datetime_utc",
    *(f"price_{s}" for s in ("open", "high", "low", "close")),
    "liquidation_long_usd",
    "liquidation_short_usd",
    "liquidation_total_usd",
    *(
        f"{m}_{s}"
        for m in ("funding", "oi", "oi_weight", "cvd")
        for s in ("open", "high", "low", "close")
    ),
)

PERCENT = 100.0
"""CoinGlass funding is in percent: 0.01 means 0.01 % = 0.0001 as a fraction."""

TOTAL_RTOL, TOTAL_ATOL = 1e-3, 1.0
"""How closely long + short must match the file's own total (rounding in the export)."""

_SYMBOL_TOKEN = re.compile(r"^[A-Z][A-Z0-9]+$")


def symbol_from_name(path: Path) -> str | None:
    """The first upper-case token of the file name (split at `_`, `-`, `.`, spaces), if any."""
    for token in re.split(r"[_\-.\s]+", path.stem):
        if _SYMBOL_TOKEN.match(token):
            return token
    return None


def _check_header(path: Path) -> None:
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = handle.readline().strip().lstrip("\ufeff")
    header = [c.strip() for c in first.split(",")]
    check_header(header, COLUMNS, file=path, what="not a CoinGlass export")


def _check_total(raw: pd.DataFrame, long: pd.Series, short: pd.Series, path: Path) -> None:
    """A total that is not long + short means shifted or mislabelled columns."""
    total = numbers(raw["liquidation_total_usd"], file=path, column="liquidation_total_usd")
    bad = (np.abs(long + short - total) > TOTAL_ATOL + TOTAL_RTOL * np.abs(total)).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"long {long.iloc[pos]:.10g} + short {short.iloc[pos]:.10g} != total "
            f"{total.iloc[pos]:.10g}",
            file=path,
            row=int(raw.index[pos]),
            column="liquidation_total_usd",
        )


def _check_alignment(times: pd.Series, raw: pd.DataFrame, path: Path) -> None:
    """Every bar open must sit on the file's own bar grid (a stray row means a broken export)."""
    bar = infer_bar(times, file=str(path))
    us = times.astype("int64").to_numpy()  # datetime64[us]: microseconds
    bad = us % (bar // pd.Timedelta("1us")) != 0
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{times.iloc[pos]} is not on the file's {bar // pd.Timedelta('1min')}-minute bar grid",
            file=path,
            row=int(raw.index[pos]),
            column="timestamp",
        )


def read(
    path: Path,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
) -> list[SourceFrame]:
    """One CoinGlass export as bars in canonical units (USD, funding fraction per 8 h)."""
    path = Path(path)
    require_utc(tz, path)
    symbol = symbol or symbol_from_name(path)
    if symbol is None:
        raise DataError(
            "the file name does not say the coin: pass symbol (e.g. BTC or BTCUSDT)", file=path
        )
    _check_header(path)
    raw = read_fields(path, COLUMNS, header_lines=1)
    raw = drop_repeated(raw, "timestamp", file=path)
    if raw.empty:
        return []
    times = epoch_ms(raw["timestamp"], file=path, column="timestamp")
    _check_alignment(times, raw, path)
    long = numbers(raw["liquidation_long_usd"], file=path, column="liquidation_long_usd")
    short = numbers(raw["liquidation_short_usd"], file=path, column="liquidation_short_usd")
    _check_total(raw, long, short, path)
    funding = numbers(raw["funding_close"], file=path, column="funding_close", required=False)
    data = pd.DataFrame(
        {
            "timestamp": times,
            "open": numbers(raw["price_open"], file=path, column="price_open"),
            "high": numbers(raw["price_high"], file=path, column="price_high"),
            "low": numbers(raw["price_low"], file=path, column="price_low"),
            "close": numbers(raw["price_close"], file=path, column="price_close"),
            "liq_long_usd": long,
            "liq_short_usd": short,
            "oi_usd": numbers(raw["oi_close"], file=path, column="oi_close", required=False),
            "funding_rate": funding / PERCENT,
            LINE: raw.index,
        }
    )
    data = data.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return [SourceFrame(name=path.name, symbol=symbol, venue=venue or VENUE, data=data)]
