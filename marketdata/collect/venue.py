"""What a collector needs from a venue: REST history as frames, and its liquidation stream.

`binance` and `bybit` implement it. REST answers become small frames in canonical units:
klines (`timestamp` = bar open, OHLC, `volume_usd`, `taker_buy_volume_usd`), funding settlements
(`timestamp`, `funding_rate` per 8 h) and open-interest snapshots (`timestamp` = the snapshot
time, `oi_usd` or, where the venue counts coins, `oi_coin`). A malformed answer is a VenueError
naming the URL and field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from flushcast.common.errors import shorten
from flushcast.marketdata.collect.events import Liquidation
from flushcast.marketdata.collect.rest import JsonClient, VenueError
from flushcast.marketdata.schema import FUNDING_INTERVAL_HOURS

MAX_PAGES = 200
"""Upper bound on pages per REST history call (a year of hourly klines is 6 to 9 pages)."""

KLINE_COLUMNS = ("open", "high", "low", "close", "volume_usd", "taker_buy_volume_usd")


class Venue(Protocol):
    name: str
    """Venue name in the store (the same as the archive adapters use)."""
    rest_url: str
    ws_url: str
    sources: dict[str, str]
    """Provenance name per kind ("klines", "funding", "open_interest", "liquidations")."""
    keepalive_s: float | None
    """Seconds between application-level pings the venue requires (None: none)."""

    async def server_time(self, http: JsonClient) -> int: ...

    async def klines(self, http: JsonClient, symbol: str, start: int, end: int) -> pd.DataFrame:
        """Bars opening in [start, end] ms."""
        ...

    async def funding(self, http: JsonClient, symbol: str, start: int, end: int) -> pd.DataFrame:
        """Settlements in [start, end] ms."""
        ...

    async def open_interest(
        self, http: JsonClient, symbol: str, start: int, end: int
    ) -> pd.DataFrame:
        """Snapshots in [start, end] ms."""
        ...

    def stream_url(self, base: str, symbols: Iterable[str]) -> str: ...

    def subscribe(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        """Messages to send once connected."""
        ...

    def keepalive(self) -> dict[str, Any] | None: ...

    def parse(self, text: str) -> list[Liquidation]:
        """Liquidations in one message ([] for acks and pongs); MessageError if malformed."""
        ...


def field(row: Any, key: str | int, url: str, convert: Callable[[Any], Any] = float) -> Any:
    """`row[key]` converted, or a VenueError naming the URL and the field."""
    try:
        return convert(row[key])
    except (KeyError, IndexError, TypeError, ValueError):
        raise VenueError(
            f"{url}: field {shorten(key)} missing or malformed in {shorten(row, 120)}"
        ) from None


def stamps(ms: Iterable[int]) -> pd.Series:
    """Epoch milliseconds as canonical timestamps (UTC, microsecond resolution)."""
    values = pd.to_datetime(np.asarray(list(ms), dtype="int64"), unit="ms", utc=True)
    return pd.Series(values.astype("datetime64[us, UTC]"))


def millis_of(times: pd.Series | pd.DatetimeIndex) -> list[int]:
    """Timestamps as epoch milliseconds, whatever their resolution."""
    epoch = pd.Timestamp(0, tz="UTC")
    return [int(x) for x in (pd.Series(times) - epoch) // pd.Timedelta(1, "ms")]


def kline_frame(rows: list[dict[str, Any]], start: int, end: int) -> pd.DataFrame:
    """Klines opening in [start, end] ms as a frame sorted by open time, one row per bar (a
    repeated bar keeps its last)."""
    frame = pd.DataFrame(rows, columns=["open_ms", *KLINE_COLUMNS])
    frame = frame.drop_duplicates("open_ms", keep="last").sort_values("open_ms")
    frame = frame[(frame["open_ms"] >= start) & (frame["open_ms"] <= end)]
    values = {c: frame[c].to_numpy(dtype="float64") for c in KLINE_COLUMNS}
    return pd.DataFrame({"timestamp": stamps(frame["open_ms"]), **values})


def funding_frame(times: list[int], rates: list[float]) -> pd.DataFrame:
    """Settlements rescaled to a fraction per 8 h, the interval read from their spacing."""
    frame = pd.DataFrame({"ms": times, "rate": rates}).drop_duplicates("ms").sort_values("ms")
    spacing = np.diff(frame["ms"].to_numpy()) / 3_600_000
    hours = float(np.median(spacing)) if len(spacing) else float(FUNDING_INTERVAL_HOURS)
    hours = hours if hours > 0 else float(FUNDING_INTERVAL_HOURS)
    return pd.DataFrame(
        {
            "timestamp": stamps(frame["ms"]),
            "funding_rate": frame["rate"].to_numpy(dtype="float64")
            * FUNDING_INTERVAL_HOURS
            / hours,
        }
    )


def snapshot_frame(times: list[int], values: list[float], column: str) -> pd.DataFrame:
    frame = pd.DataFrame({"ms": times, column: values}).drop_duplicates("ms").sort_values("ms")
    return pd.DataFrame(
        {"timestamp": stamps(frame["ms"]), column: frame[column].to_numpy(dtype="float64")}
    )
