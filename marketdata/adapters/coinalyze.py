"""Coinalyze CSV exports: headerless, naive local time, coin units.

Files are named `<SYMBOL>_PERP.<exchange code>_<kind>.csv`; the kind says the columns:

    ohlcv-history             t, open, high, low, close, volume, buy_volume, trades, buy_trades
    open-interest-history     t, open, high, low, close        (open interest, coin units)
    liquidation-history       t, long, short                   (coin units; long = longs liquidated)
    long-short-ratio-history  t, ratio, long_percent, short_percent

`t` is the bar open in the downloader's local wall-clock time, with no zone in the file, so `tz`
is required. Known exports (verified against Binance prices, see the tests):

    denizyts__Coinalyze-Backtester/src/csvFolder   1 h bars   tz="+06:00"
    denizyts__Coinalyze-Backtester/src/csvFolder2  5 min bars tz="+03:00"

Coin amounts become USD with the prices in the sibling ohlcv file of the same symbol and folder,
which must therefore be present. Rows with no price bar at their time are dropped (the ingest
pipeline keeps only bars with prices anyway).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from flushcast.common.errors import DataError, shorten
from flushcast.marketdata.adapters.textcsv import drop_repeated, naive_times, numbers, read_fields
from flushcast.marketdata.resample import LINE, infer_bar
from flushcast.marketdata.sources import SourceFrame
from flushcast.marketdata.timezones import naive_to_utc

COLUMNS: dict[str, tuple[str, ...]] = {
    "ohlcv-history": (
        "t",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "buy_volume",
        "trades",
        "buy_trades",
    ),
    "open-interest-history": ("t", "open", "high", "low", "close"),
    "liquidation-history": ("t", "long", "short"),
    "long-short-ratio-history": ("t", "ratio", "long_percent", "short_percent"),
}

EXCHANGE_CODES: dict[str, str] = {"A": "binance", "6": "bybit", "3": "okx"}
"""Coinalyze's one-character exchange suffix; others need `venue=` from the user."""

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_NAME = re.compile(
    r"^(?P<market>[A-Za-z0-9]+?)(?:_PERP)?\.(?P<code>[A-Za-z0-9]+)_(?P<kind>"
    + "|".join(COLUMNS)
    + r")\.csv$"
)


def _parse_name(path: Path) -> tuple[str, str, str]:
    match = _NAME.match(path.name)
    if match is None:
        raise DataError(
            "not a Coinalyze export name: expected <SYMBOL>_PERP.<exchange>_<kind>.csv with kind "
            f"one of {', '.join(COLUMNS)}",
            file=path,
        )
    return match["market"].upper(), match["code"], match["kind"]


def _read_table(path: Path, kind: str, tz: str) -> pd.DataFrame:
    """One export as UTC `timestamp` + its numeric columns, repeated rows removed."""
    names = COLUMNS[kind]
    raw = read_fields(path, names)
    table = pd.DataFrame({"t": naive_times(raw["t"], file=path, column="t", fmt=TIME_FORMAT)})
    for name in names[1:]:
        table[name] = numbers(raw[name], file=path, column=name)
    table = drop_repeated(table, "t", file=path)
    table.insert(0, "timestamp", naive_to_utc(table.pop("t"), tz, file=path, column="t"))
    table[LINE] = table.index
    bar = infer_bar(table["timestamp"], file=str(path))
    # A zone offset that is not a whole number of bars (e.g. +05:30 on 1 h bars) means a wrong tz.
    off_grid = table["timestamp"] != table["timestamp"].dt.floor(bar)
    if off_grid.any():
        line = int(table.index[off_grid.to_numpy()][0])
        raise DataError(
            f"bar open {table['timestamp'][off_grid].iloc[0]} (UTC) is not on a {bar} boundary "
            f"after reading times as {shorten(tz)}: is tz right?",
            file=path,
            row=line,
            column="t",
        )
    return table.sort_values("timestamp").reset_index(drop=True)


def _prices(path: Path, kind: str, tz: str) -> pd.DataFrame:
    sibling = path.with_name(path.name.removesuffix(f"_{kind}.csv") + "_ohlcv-history.csv")
    if not sibling.is_file():
        raise DataError(
            f"coin amounts need prices to become USD: the ohlcv file {sibling.name} must be in "
            "the same folder",
            file=path,
        )
    ohlcv = _read_table(sibling, "ohlcv-history", tz)
    # Amounts accumulated over a bar (volume, liquidations) are valued at the bar's typical price
    # (high + low + close) / 3, the usual VWAP stand-in when trades are not available; amounts
    # at the bar close (open interest) are valued at the close.
    return pd.DataFrame(
        {
            "timestamp": ohlcv["timestamp"],
            "typical": (ohlcv["high"] + ohlcv["low"] + ohlcv["close"]) / 3.0,
            "close": ohlcv["close"],
        }
    )


def read(
    path: Path,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
) -> list[SourceFrame]:
    """One Coinalyze export as canonical columns in USD (kind "bars", the file's own bar size)."""
    path = Path(path)
    market, code, kind = _parse_name(path)
    if tz is None:
        raise DataError(
            "Coinalyze exports have naive local timestamps: pass tz (e.g. '+06:00' for the "
            "hourly csvFolder export, '+03:00' for the 5-minute csvFolder2 export)",
            file=path,
            column="t",
        )
    if venue is None:
        venue = EXCHANGE_CODES.get(code)
        if venue is None:
            raise DataError(
                f"unknown Coinalyze exchange code {shorten(code)}: pass venue", file=path
            )
    table = _read_table(path, kind, tz)
    if kind == "ohlcv-history":
        typical = (table["high"] + table["low"] + table["close"]) / 3.0
        data = pd.DataFrame(
            {
                "timestamp": table["timestamp"],
                "open": table["open"],
                "high": table["high"],
                "low": table["low"],
                "close": table["close"],
                "volume_usd": table["volume"] * typical,
                "taker_buy_volume_usd": table["buy_volume"] * typical,
                LINE: table[LINE],
            }
        )
    elif kind == "long-short-ratio-history":
        data = pd.DataFrame(
            {"timestamp": table["timestamp"], "long_short_ratio": table["ratio"], LINE: table[LINE]}
        )
    else:
        priced = table.merge(_prices(path, kind, tz), on="timestamp", how="inner")
        if kind == "open-interest-history":
            data = pd.DataFrame(
                {
                    "timestamp": priced["timestamp"],
                    "oi_usd": priced["close_x"] * priced["close_y"],
                    LINE: priced[LINE],
                }
            )
        else:
            data = pd.DataFrame(
                {
                    "timestamp": priced["timestamp"],
                    "liq_long_usd": priced["long"] * priced["typical"],
                    "liq_short_usd": priced["short"] * priced["typical"],
                    LINE: priced[LINE],
                }
            )
    return [SourceFrame(name=path.name, symbol=symbol or market, venue=venue, data=data)]
