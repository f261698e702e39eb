"""Binance Vision archives (data.binance.vision), read from the downloaded `.zip` files as they are.

Four kinds, each recognised from the file name (`BTCUSDT-1h-2024-01.zip`,
`BTCUSDT-metrics-2024-01-01.zip`, `BTCUSDT-fundingRate-2024-01.zip`,
`BTCUSD_PERP-liquidationSnapshot-2023-01-01.zip`) or, failing that, from the CSV header:

- klines: OHLC, `quote_volume` -> `volume_usd`, `taker_buy_quote_volume` -> `taker_buy_volume_usd`
  (USDT counted as USD). `open_time` is epoch ms; newer archives use µs, told apart by magnitude.
- metrics: 5-minute snapshots. A row stamped T is the state at the CLOSE of the 5-minute bar ending
  at T, so the 1 h bar [H-1h, H) takes the snapshot at H: its OI at close, never a later one (nor
  an earlier one, which would not be the close). Emitted directly at the canonical bar because a
  daily file's last hour closes with the NEXT day's 00:00 snapshot; per-file 5-minute rows would
  leave that hour incomplete in both files. No snapshot at H (or an empty cell) leaves it unknown.
  `sum_open_interest_value` -> `oi_usd`, `count_long_short_ratio` (accounts) -> `long_short_ratio`.
  Two rows with the same time: the later one in the file is kept (a rewrite).
- fundingRate: settlements (kind "funding"), `last_funding_rate` is a fraction per
  `funding_interval_hours`, rescaled to per 8 h.
- liquidationSnapshot (COIN-M): liquidation orders, each written more than once; exact duplicate
  rows are dropped. `SELL` closes a long (see `marketdata.liquidations`). The filled quantity
  (`accumulated_fill_quantity`) is what was liquidated.

COIN-M symbols (`BTCUSD_PERP`, `ETHUSD_240628`) count quantities in contracts of fixed USD face
value: 100 USD for BTC, 10 USD for every other coin. Their USD notional is contracts x face value,
independent of price. USD-M quantities are coin units, so their notional is quantity x price.

Errors name the zip member (`file.zip:member.csv`), the line in that CSV (1 = first line, the
header when there is one) and the column (cells are read with `marketdata.adapters.textcsv`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError, shorten
from flushcast.marketdata.adapters.textcsv import check_header, drop_repeated, numbers
from flushcast.marketdata.compressed import read_bytes, zip_member
from flushcast.marketdata.liquidations import events_to_bars, side_is_long
from flushcast.marketdata.resample import LINE
from flushcast.marketdata.schema import BAR, FUNDING_INTERVAL_HOURS
from flushcast.marketdata.sources import SourceFrame
from flushcast.marketdata.timezones import require_utc

VENUE = "binance"

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
METRICS_COLUMNS = (
    "create_time",
    "symbol",
    "sum_open_interest",
    "sum_open_interest_value",
    "count_toptrader_long_short_ratio",
    "sum_toptrader_long_short_ratio",
    "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
)
FUNDING_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")
LIQUIDATION_COLUMNS = (
    "time",
    "side",
    "order_type",
    "time_in_force",
    "original_quantity",
    "price",
    "average_price",
    "order_status",
    "last_fill_quantity",
    "accumulated_fill_quantity",
)
HEADERS: dict[str, tuple[str, ...]] = {
    "klines": KLINE_COLUMNS,
    "metrics": METRICS_COLUMNS,
    "fundingRate": FUNDING_COLUMNS,
    "liquidationSnapshot": LIQUIDATION_COLUMNS,
}

_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+(?:_[A-Z0-9]+)?)-"
    r"(?P<kind>metrics|fundingRate|liquidationSnapshot|\d+(?:m|h|d|w|mo))-"
    r"(?P<period>\d{4}-\d{2}(?:-\d{2})?)$"
)
_COIN_M = re.compile(r"^(?P<coin>[A-Z0-9]+)USD_(?:PERP|\d{6})$")

SNAPSHOT_EVERY = pd.Timedelta("5min")
"""Metrics rows are snapshots at the close of each 5-minute bar."""

_MICROS_FROM = 10**14
"""Epoch values at or above this are microseconds: in milliseconds it would be the year 5138."""


def contract_usd(symbol: str) -> float | None:
    """USD face value of one COIN-M contract of `symbol`, or None for a USD-M (coin-unit) symbol."""
    match = _COIN_M.match(symbol)
    if match is None:
        return None
    return 100.0 if match["coin"] == "BTC" else 10.0


def epoch_to_utc(values: pd.Series, *, file: str, column: str) -> pd.Series:
    """Epoch milliseconds (or microseconds, told apart per value by magnitude) -> UTC timestamps.

    `values` is indexed by file line, as `textcsv.numbers` returns it.
    """
    v = values.to_numpy(dtype="float64")
    if (bad := (v < 10**11) | (v >= 10**17)).any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{v[pos]:.0f} is not an epoch time in milliseconds or microseconds",
            file=file,
            row=int(values.index[pos]),
            column=column,
        )
    micros = np.where(v >= _MICROS_FROM, v, v * 1000).astype("int64")
    times = pd.to_datetime(micros, unit="us", utc=True).astype("datetime64[us, UTC]")
    return pd.Series(times, index=values.index)


def _open_csv(path: Path) -> tuple[str, bytes]:
    """The one CSV of a zip (or a bare CSV file): its display name and bytes."""
    if path.suffix.lower() == ".csv":
        return str(path), read_bytes(path)
    return zip_member(path)


def _is_number(cell: object) -> bool:
    try:
        float(str(cell))
    except ValueError:
        return False
    return True


def _cells(where: str, data: bytes) -> tuple[pd.DataFrame, list[str] | None]:
    """Cells (empty = NaN) indexed by 1-based file line, and the header row if any.

    Columns are parsed natively: clean numeric columns arrive as numbers (a year of 1-minute
    klines parses in a fraction of the time text takes), while a column with a bad cell stays
    text, so `numbers` still finds that cell and names its line.
    """
    first_line = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    first = [c.strip() for c in first_line.split(",")]
    header = None if _is_number(first[0]) else first
    try:
        raw = pd.read_csv(
            io.BytesIO(data),
            header=None,
            skiprows=0 if header is None else 1,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError:
        if header is not None:
            return pd.DataFrame(columns=range(len(header))), header
        raise DataError("the CSV is empty", file=where) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"not a readable CSV ({exc})", file=where) from None
    raw.index = raw.index + (1 if header is None else 2)
    return raw[raw.notna().any(axis=1)], header


def _kind_from_header(header: list[str] | None, width: int, where: str) -> str:
    if header is None:
        # Only klines are ever published without a header row.
        if width == len(KLINE_COLUMNS):
            return "klines"
        raise DataError(f"cannot tell the archive kind: no header and {width} columns", file=where)
    for kind, columns in HEADERS.items():
        if tuple(header) == columns:
            return kind
    raise DataError(
        f"unrecognised header {shorten(','.join(header))}: expected a klines, metrics, "
        "fundingRate or "
        "liquidationSnapshot archive",
        file=where,
    )


def _check_header(header: list[str] | None, kind: str, width: int, where: str) -> None:
    expected = HEADERS[kind]
    if header is None:
        if width != len(expected):
            raise DataError(f"{kind} rows have {len(expected)} columns, found {width}", file=where)
        return
    check_header(header, expected, file=where, what=f"bad {kind} header")


def _klines(raw: pd.DataFrame, where: str, symbol: str) -> pd.DataFrame:
    raw = drop_repeated(raw, "open_time", file=where)
    num = {c: numbers(raw[c], file=where, column=c) for c in KLINE_COLUMNS[:11]}
    face = contract_usd(symbol)
    if face is None:
        volume, taker = num["quote_volume"], num["taker_buy_quote_volume"]
    else:
        # COIN-M `volume` and `taker_buy_volume` are contracts.
        volume, taker = num["volume"] * face, num["taker_buy_volume"] * face
    frame = pd.DataFrame(
        {
            "timestamp": epoch_to_utc(num["open_time"], file=where, column="open_time"),
            "open": num["open"],
            "high": num["high"],
            "low": num["low"],
            "close": num["close"],
            "volume_usd": volume,
            "taker_buy_volume_usd": taker,
            LINE: raw.index,
        }
    )
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _metrics(raw: pd.DataFrame, where: str, symbol: str) -> pd.DataFrame:
    text = raw["create_time"].astype("str").str.strip()
    if text.map(_is_number).all():
        times = epoch_to_utc(
            numbers(text, file=where, column="create_time"), file=where, column="create_time"
        )
    else:
        # "YYYY-MM-DD HH:MM:SS", UTC.
        times = pd.to_datetime(text, format="%Y-%m-%d %H:%M:%S", errors="coerce")
        if (bad := times.isna().to_numpy()).any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"not a time: {shorten(text.iloc[pos])}",
                file=where,
                row=int(raw.index[pos]),
                column="create_time",
            )
        times = times.dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    named = raw["symbol"].astype("str").str.strip()
    if (other := (named != symbol).to_numpy()).any():
        pos = int(np.flatnonzero(other)[0])
        raise DataError(
            f"row is for {shorten(named.iloc[pos])}, the archive for {shorten(symbol)}",
            file=where,
            row=int(raw.index[pos]),
            column="symbol",
        )
    face = contract_usd(symbol)
    if face is None:
        column, scale = "sum_open_interest_value", 1.0
    else:
        # COIN-M `sum_open_interest` is contracts (and `..._value` is in coin).
        column, scale = "sum_open_interest", face
    snaps = pd.DataFrame(
        {
            "time": times,
            "oi_usd": numbers(raw[column], file=where, column=column, required=False) * scale,
            "long_short_ratio": numbers(
                raw["count_long_short_ratio"],
                file=where,
                column="count_long_short_ratio",
                required=False,
            ),
        }
    )
    # Stable sort keeps file order among equal times, so `last` takes the later row (a rewrite).
    snaps = snaps.sort_values("time", kind="stable")
    close = snaps["time"].dt.ceil(BAR)
    # Leakage guard: snapshot T describes the bar closing at T, so it goes to the bar whose close
    # is the next boundary at or after T. Only the last 5-minute snapshot counts: an earlier one
    # is not the OI at close, and would disagree with the next day's file, which holds the true
    # close of its first bar.
    at_close = (close - snaps["time"] < SNAPSHOT_EVERY).to_numpy()
    snaps, close = snaps[at_close], close[at_close]
    bars = snaps.drop(columns="time").groupby(close.to_numpy(), sort=True).last()
    bars.index = pd.DatetimeIndex(bars.index) - BAR
    return bars.rename_axis("timestamp").reset_index()


def _funding(raw: pd.DataFrame, where: str) -> pd.DataFrame:
    raw = drop_repeated(raw, "calc_time", file=where)
    when = numbers(raw["calc_time"], file=where, column="calc_time")
    hours = numbers(raw["funding_interval_hours"], file=where, column="funding_interval_hours")
    rate = numbers(raw["last_funding_rate"], file=where, column="last_funding_rate")
    if (bad := ~(hours.to_numpy() > 0)).any():
        raise DataError(
            "funding interval must be > 0 hours",
            file=where,
            row=int(raw.index[np.flatnonzero(bad)[0]]),
            column="funding_interval_hours",
        )
    frame = pd.DataFrame(
        {
            "timestamp": epoch_to_utc(when, file=where, column="calc_time"),
            "funding_rate": rate * (FUNDING_INTERVAL_HOURS / hours),
            LINE: raw.index,
        }
    )
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _liquidations(
    raw: pd.DataFrame, where: str, symbol: str, day: pd.Timestamp | None
) -> pd.DataFrame:
    # The archive writes each order more than once: identical rows are one order.
    raw = raw[~raw.duplicated().to_numpy()]
    filled = numbers(
        raw["accumulated_fill_quantity"], file=where, column="accumulated_fill_quantity"
    )
    face = contract_usd(symbol)
    if face is None:
        usd = filled * numbers(raw["average_price"], file=where, column="average_price")
    else:
        usd = filled * face
    try:
        is_long = side_is_long(raw["side"].astype("str").str.strip(), VENUE, file=where)
    except DataError as exc:
        row = None if exc.row is None else int(raw.index[exc.row - 1])
        raise DataError(exc.problem, file=where, row=row, column="side") from None
    events = pd.DataFrame(
        {
            "timestamp": epoch_to_utc(
                numbers(raw["time"], file=where, column="time"), file=where, column="time"
            ),
            "is_long": is_long,
            "usd": usd,
        }
    ).reset_index(drop=True)
    if events.empty and day is None:
        return events.iloc[:0, :1]
    # The archive is one day of the exchange's feed: hours of that day without a row had no
    # (published) liquidation, which is 0, not unknown.
    days = [day] if day is not None else []
    if not events.empty:
        days += [events["timestamp"].min().floor("1D"), events["timestamp"].max().floor("1D")]
    coverage = (min(days), max(days) + pd.Timedelta("1D"))
    return events_to_bars(events, BAR, coverage=[coverage])


def read(
    path: Path,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
) -> list[SourceFrame]:
    """One Binance Vision archive in canonical units; `symbol`/`venue` override the name's."""
    path = Path(path)
    require_utc(tz, path)
    where, data = _open_csv(path)
    raw, header = _cells(where, data)
    width = raw.shape[1]
    match = _NAME.match(path.name.removesuffix(".zip").removesuffix(".csv"))
    if match is not None:
        kind = match["kind"] if match["kind"] in HEADERS else "klines"
        _check_header(header, kind, width, where)
    else:
        kind = _kind_from_header(header, width, where)
    raw.columns = list(HEADERS[kind])
    file_symbol = match["symbol"] if match is not None else None
    if file_symbol is None and kind == "metrics" and len(raw):
        file_symbol = str(raw["symbol"].iat[0]).strip()
    if file_symbol is None and symbol is None:
        raise DataError(
            "cannot tell the symbol from the file name: pass symbol (e.g. BTCUSDT)", file=path
        )
    # Units (contracts vs coins) follow the archive's own symbol, not the name it is stored as.
    units_symbol = file_symbol or symbol
    day = None
    if match is not None and len(match["period"]) == len("2024-01-01"):
        day = pd.Timestamp(match["period"], tz="UTC")

    if kind == "klines":
        frame, frame_kind = _klines(raw, where, units_symbol), "bars"
    elif kind == "metrics":
        frame, frame_kind = _metrics(raw, where, units_symbol), "bars"
    elif kind == "fundingRate":
        frame, frame_kind = _funding(raw, where), "funding"
    else:
        frame, frame_kind = _liquidations(raw, where, units_symbol, day), "bars"
    if frame.empty:
        return []
    return [
        SourceFrame(
            name=path.name,
            symbol=symbol or units_symbol,
            venue=venue or VENUE,
            data=frame,
            kind=frame_kind,
        )
    ]
