"""CoinGlass API v4 history responses, as served (JSON) or as saved (Parquet or CSV of `data`).

As served, a response is `{"code": "0", "msg": "success", "data": [{...}, ...]}`; a saved file
holds the `data` records as a table. The series comes from the endpoint in the file name, or
from `series`:

    series          endpoint in the name            fields                      canonical
    price           …price_ohlc…                    time, open, high, low,      OHLC, volume_usd
                                                    close[, volume_usd]
    open-interest   …openInterest_ohlc…             time, open, high, low,      oi_usd = close
                    (the all-exchange USD total)    close
    funding         …fundingRate_oi_weight…         time, open, high, low,      funding_rate =
                                                    close (percent per 8 h)     close / 100
    liquidation     …liquidation_aggregated…        time, aggregated_long_      liq_long_usd,
                                                    liquidation_usd, …short…    liq_short_usd

`time` is the bar open in epoch milliseconds, UTC; the bar (4 h in the shared snapshots) is the
spacing of the times. Numbers may be text (as some saved days have them) and are parsed, a bad
one named by record (Parquet, JSON: 1-based record of `data`) or line (CSV: header is line 1).
The open-interest *parts* (`…_stablecoin…`, `…_coin_margin…`) are refused: they are a share
of the total, the stablecoin one in coin units, and would not agree with it.

A response is a snapshot of a series the vendor keeps revising: its last bar was still forming
when it was saved, so it is dropped unless `keep_last`, and the snapshot is dated by its last bar
(or `as_of`), so that a newer snapshot supersedes an older one where they overlap (see
`marketdata.merge`). Venue is "aggregate" (CoinGlass's own cross-exchange series) unless given;
the symbol is `symbol`, else the coin that ends the file name (`…_history_BTC.parquet`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from flushcast.common.errors import DataError, shorten
from flushcast.marketdata.adapters.textcsv import epoch_ms, numbers, read_records
from flushcast.marketdata.compressed import read_bytes
from flushcast.marketdata.resample import LINE, infer_bar
from flushcast.marketdata.sources import SourceFrame
from flushcast.marketdata.timezones import require_utc

VENUE = "aggregate"
PERCENT = 100.0

SERIES: dict[str, dict[str, str]] = {
    "price": {
        "open": "open",
        "high": "high",
        "low": "low",
        "close": "close",
        "volume_usd": "volume_usd",
    },
    "open-interest": {"oi_usd": "close"},
    "funding": {"funding_rate": "close"},
    "liquidation": {
        "liq_long_usd": "aggregated_long_liquidation_usd",
        "liq_short_usd": "aggregated_short_liquidation_usd",
    },
}
"""Per series: canonical column <- field of the response."""

OPTIONAL_FIELDS = {"volume_usd"}

_ENDPOINTS = (
    (re.compile(r"openInterest_ohlc.*(stablecoin|coin_margin)", re.IGNORECASE), None),
    (re.compile(r"price_ohlc", re.IGNORECASE), "price"),
    (re.compile(r"openInterest_ohlc", re.IGNORECASE), "open-interest"),
    (re.compile(r"fundingRate_oi_weight", re.IGNORECASE), "funding"),
    (re.compile(r"liquidation_aggregated", re.IGNORECASE), "liquidation"),
)
_COIN = re.compile(r"_([A-Z][A-Z0-9]{1,15})$")


def series_of(path: Path, series: str | None) -> str:
    """The series a file holds: `series` if given, else from the endpoint in its name."""
    if series is not None:
        if series not in SERIES:
            raise DataError(
                f"--series {shorten(series)}: choose one of {', '.join(SERIES)}", file=path
            )
        return series
    for pattern, name in _ENDPOINTS:
        if pattern.search(path.name):
            if name is None:
                raise DataError(
                    "this is one margin type's part of the open interest (the stablecoin part is "
                    "in coin units); ingest the all-exchange USD total "
                    "(…openInterest_ohlc_aggregated_history…) instead",
                    file=path,
                )
            return name
    raise DataError(
        "cannot tell the series from the file name (…price_ohlc…, …openInterest_ohlc…, "
        f"…fundingRate_oi_weight…, …liquidation_aggregated…): pass --series "
        f"({', '.join(SERIES)})",
        file=path,
    )


def _records(path: Path) -> pd.DataFrame:
    """The `data` records of a response, indexed by 1-based record (or CSV line)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".csv"):
        return read_records(path)
    if suffix == ".json":
        try:
            response = json.loads(read_bytes(path))
        except (UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"not a readable JSON response: {exc}", file=path) from None
        if not isinstance(response, dict) or "data" not in response:
            raise DataError("expected a response object with 'code' and 'data'", file=path)
        if str(response.get("code")) != "0":
            raise DataError(
                f"the API answered code {shorten(response.get('code'))}: "
                f"{shorten(response.get('msg'))}",
                file=path,
                column="code",
            )
        data = response["data"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError("'data' must be a list of records", file=path, column="data")
        table = pd.DataFrame.from_records(data)
        table.index = pd.RangeIndex(1, len(table) + 1)
        return table
    raise DataError("expected a .json response or a saved .parquet or .csv", file=path)


def _symbol(path: Path, symbol: str | None) -> str:
    coin = _COIN.search(path.stem)
    if symbol is None:
        if coin is None:
            raise DataError("the file name does not say the coin: pass --symbol", file=path)
        return coin.group(1)
    if coin is not None and not symbol.upper().startswith(coin.group(1)):
        raise DataError(
            f"the file is for {coin.group(1)}, not for --symbol {symbol}",
            file=path,
            column="symbol",
        )
    return symbol


def read(
    path: Path,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
    series: str | None = None,
    keep_last: bool = False,
    as_of: str | pd.Timestamp | None = None,
) -> list[SourceFrame]:
    """One saved or served response as bars in canonical units, dated for revisions."""
    path = Path(path)
    require_utc(tz, path)
    kind = series_of(path, series)
    symbol = _symbol(path, symbol)
    table = _records(path)
    fields = SERIES[kind]
    missing = [f for c, f in fields.items() if f not in table.columns and c not in OPTIONAL_FIELDS]
    for name in ["time", *missing]:
        if name not in table.columns:
            found = ", ".join(map(str, table.columns))
            raise DataError(f"no field {shorten(name)} (found {found})", file=path, column=name)
    if table.empty:
        return []
    where = str(path)
    times = epoch_ms(table["time"], file=path, column="time")
    data = pd.DataFrame({"timestamp": times.to_numpy()}, index=table.index)
    for column, field in fields.items():
        if field in table.columns:
            data[column] = numbers(table[field], file=path, column=field).to_numpy()
    if "funding_rate" in data:
        data["funding_rate"] /= PERCENT
    data[LINE] = table.index.to_numpy()
    data = data.sort_values("timestamp", kind="stable")
    repeated = data["timestamp"].duplicated().to_numpy()
    if repeated.any():
        line = int(data[LINE].to_numpy()[repeated][0])
        raise DataError("a bar appears twice in one snapshot", file=path, row=line, column="time")
    last = data["timestamp"].iat[-1]
    dated = _as_of(as_of) if as_of is not None else last
    if not keep_last:
        data = data.iloc[:-1]  # still forming when the snapshot was saved
    bar = infer_bar(data["timestamp"], file=where) if len(data) > 1 else None
    return [
        SourceFrame(
            name=f"{path.name} (as of {dated:%Y-%m-%d %H:%M})",
            symbol=symbol,
            venue=venue or VENUE,
            data=data.reset_index(drop=True),
            bar=bar,
            file=where,
            series=f"coinglass-api/{kind}",
            as_of=dated,
        )
    ]


def _as_of(value: str | pd.Timestamp) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise DataError(f"--as-of {shorten(value)} is not a date or date-time") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
