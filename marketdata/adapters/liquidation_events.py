"""Individual liquidation events -> hourly long/short liquidation USD (kind "bars").

Layouts, recognised by their columns:

    Bybit parquet        ts_ms, symbol, side, qty, price[, ts]   qty in coin; venue bybit
    event parquet        timestamp, venue, coin, side, size_usd, price   (e.g. Hyperliquid)
    plain CSV            time,side,qty,price   `venue` and `symbol` required: the side label
                         means different things on different venues (see
                         marketdata.liquidations.LONG_LIQUIDATED_SIDE). `time` is epoch ms or
                         ISO-8601; naive times need `tz`.

Coverage: a UTC day with at least one event is taken as recorded in full, so its hours without
events are 0; days without any event are unknown (absent), since these feeds have multi-day
holes (the Bybit file covers 72 of 111 days). Only liquidation columns are returned; the ingest
pipeline puts them on the price bars of the same symbol and venue.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError, shorten
from flushcast.marketdata.adapters.textcsv import epoch_ms, naive_times, numbers, read_fields
from flushcast.marketdata.liquidations import events_to_bars, side_is_long
from flushcast.marketdata.schema import BAR
from flushcast.marketdata.sources import SourceFrame
from flushcast.marketdata.timezones import naive_to_utc, require_utc

BYBIT_COLUMNS = ("ts_ms", "symbol", "side", "qty", "price")
EVENT_COLUMNS = ("timestamp", "venue", "coin", "side", "size_usd")
CSV_COLUMNS = ("time", "side", "qty", "price")


def _check_numbers(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    for column in columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise DataError(
                f"expected numbers, found {frame[column].dtype}", file=path, column=column
            )
        values = frame[column].to_numpy(dtype="float64")
        bad = ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"expected a number >= 0, found {values[pos]}",
                file=path,
                row=pos + 1,
                column=column,
            )


def _from_parquet(path: Path, venue: str | None) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise DataError(f"not a readable parquet file: {err}", file=path) from None
    columns = set(frame.columns)
    if columns.issuperset(BYBIT_COLUMNS):
        _check_numbers(frame, ("ts_ms", "qty", "price"), path)
        return pd.DataFrame(
            {
                "timestamp": pd.to_datetime(frame["ts_ms"], unit="ms", utc=True),
                "symbol": frame["symbol"].astype(str),
                "venue": venue or "bybit",
                "side": frame["side"],
                "usd": frame["qty"] * frame["price"],  # linear contracts: qty in coin
            }
        )
    if columns.issuperset(EVENT_COLUMNS):
        _check_numbers(frame, ("size_usd",), path)
        if not isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype):
            raise DataError("expected timezone-aware UTC times", file=path, column="timestamp")
        return pd.DataFrame(
            {
                "timestamp": frame["timestamp"],
                "symbol": frame["coin"].astype(str),
                "venue": venue or frame["venue"].astype(str),
                "side": frame["side"],
                "usd": frame["size_usd"],
            }
        )
    raise DataError(
        f"unrecognised liquidation columns {sorted(columns)}; expected {', '.join(BYBIT_COLUMNS)} "
        f"or {', '.join(EVENT_COLUMNS)}",
        file=path,
    )


def _csv_times(raw: pd.Series, path: Path, tz: str | None) -> pd.Series:
    """Epoch ms, or ISO-8601 with an offset, or naive ISO-8601 read in `tz`."""
    if raw.str.fullmatch(r"\d+").all():
        require_utc(tz, path)
        return epoch_ms(raw, file=path, column="time")
    try:
        parsed = pd.to_datetime(raw, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):
        raise DataError(
            "times mix offsets and naive times; use one form", file=path, column="time"
        ) from None
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        times = naive_times(raw, file=path, column="time")
        return naive_to_utc(times, tz, file=path, column="time", first_line=0)
    require_utc(tz, path)
    bad = parsed.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"cannot parse {shorten(raw.iloc[pos])} as a date-time",
            file=path,
            row=int(raw.index[pos]),
            column="time",
        )
    return parsed.dt.tz_convert("UTC")


def _from_csv(path: Path, symbol: str | None, tz: str | None, venue: str | None) -> pd.DataFrame:
    if venue is None or symbol is None:
        raise DataError(
            "a plain liquidation CSV says neither venue nor symbol: pass both (the venue decides "
            "what the side label means)",
            file=path,
        )
    header = tuple(pd.read_csv(path, nrows=0, compression="infer").columns)
    if header != CSV_COLUMNS:
        raise DataError(
            f"expected header {','.join(CSV_COLUMNS)}, found {','.join(header)}", file=path, row=1
        )
    raw = read_fields(path, CSV_COLUMNS, header_lines=1)
    qty = numbers(raw["qty"], file=path, column="qty")
    price = numbers(raw["price"], file=path, column="price")
    return pd.DataFrame(
        {
            "timestamp": _csv_times(raw["time"], path, tz),
            "symbol": symbol,
            "venue": venue,
            "side": raw["side"],
            "usd": qty * price,
        }
    )


def read(
    path: Path,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
) -> list[SourceFrame]:
    """One file of liquidation events as hourly `liq_long_usd` / `liq_short_usd` per market."""
    path = Path(path)
    if path.suffix == ".parquet":
        require_utc(tz, path)
        events = _from_parquet(path, venue)
    else:
        events = _from_csv(path, symbol, tz, venue)
    if path.suffix == ".parquet":
        events.index = pd.RangeIndex(1, len(events) + 1)  # record numbers; CSV keeps file lines
    frames = []
    for (market, place), rows in events.groupby(["symbol", "venue"], sort=True):
        try:
            is_long = side_is_long(rows["side"], str(place), file=str(path))
        except DataError as err:  # report the file line / record, not the position in the group
            row = None if err.row is None else int(rows.index[err.row - 1])
            raise DataError(err.problem, file=path, row=row, column="side") from None
        rows = rows.assign(is_long=is_long)
        days = rows["timestamp"].dt.floor("1D").unique()
        coverage = [(day, day + pd.Timedelta("1D")) for day in days]
        data = events_to_bars(rows, BAR, coverage=coverage)
        frames.append(
            SourceFrame(name=path.name, symbol=symbol or str(market), venue=str(place), data=data)
        )
    return frames
