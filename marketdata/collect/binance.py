"""Binance USD-M futures: REST history and the `forceOrder` liquidation stream.

REST (public, no key): `/fapi/v1/klines` (1 h), `/fapi/v1/fundingRate`,
`/futures/data/openInterestHist` (1 h snapshots, only the last 30 days are served) and
`/fapi/v1/time`. Stream: `<symbol>@forceOrder` on the combined endpoint
`/stream?streams=...`. In a forceOrder report `S` is the side of the liquidation ORDER: `SELL`
closes a long, so it marks a liquidated long (`marketdata.liquidations`). The notional is the
filled quantity `z` times the average price `ap`. Binance sends at most one order per second per
symbol (the latest in that second), so stored totals are lower bounds; the provenance of the
liquidation columns says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

import pandas as pd

from flushcast.marketdata.collect.book import HOUR_MS
from flushcast.marketdata.collect.events import Liquidation, MessageError, is_long, millis, number
from flushcast.marketdata.collect.rest import JsonClient, VenueError
from flushcast.marketdata.collect.venue import (
    MAX_PAGES,
    field,
    funding_frame,
    kline_frame,
    snapshot_frame,
)

OI_HISTORY_MS = 29 * 24 * HOUR_MS
"""`openInterestHist` serves the last 30 days; asking for older snapshots is an error."""


class BinanceUSDM:
    name = "binance"
    rest_url = "https://fapi.binance.com"
    ws_url = "wss://fstream.binance.com"
    keepalive_s = None  # the server pings; aiohttp answers
    sources: ClassVar[dict[str, str]] = {
        "klines": "binance REST /fapi/v1/klines",
        "funding": "binance REST /fapi/v1/fundingRate",
        "open_interest": "binance REST /futures/data/openInterestHist",
        "liquidations": "binance forceOrder stream (at most 1 order/s per symbol: totals are "
        "lower bounds)",
    }

    async def server_time(self, http: JsonClient) -> int:
        answer = await http.get("/fapi/v1/time", {})
        return field(answer, "serverTime", "/fapi/v1/time", int)

    async def klines(self, http: JsonClient, symbol: str, start: int, end: int) -> pd.DataFrame:
        rows: list[dict[str, Any]] = []
        url = "/fapi/v1/klines"
        first = start
        for _ in range(MAX_PAGES):
            if start > end:
                break
            params = {"symbol": symbol, "interval": "1h", "startTime": start, "endTime": end}
            page = await http.get(url, {**params, "limit": 1500})
            if not isinstance(page, list):
                raise VenueError(f"{url}: expected a list of klines, got {str(page)[:120]}")
            for k in page:
                rows.append(
                    {
                        "open_ms": field(k, 0, url, int),
                        "open": field(k, 1, url),
                        "high": field(k, 2, url),
                        "low": field(k, 3, url),
                        "close": field(k, 4, url),
                        "volume_usd": field(k, 7, url),
                        "taker_buy_volume_usd": field(k, 10, url),
                    }
                )
            if not page:
                break
            start = rows[-1]["open_ms"] + HOUR_MS
        return kline_frame(rows, first, end)

    async def funding(self, http: JsonClient, symbol: str, start: int, end: int) -> pd.DataFrame:
        times: list[int] = []
        rates: list[float] = []
        url = "/fapi/v1/fundingRate"
        for _ in range(MAX_PAGES):
            params = {"symbol": symbol, "startTime": start, "endTime": end, "limit": 1000}
            page = await http.get(url, params)
            if not isinstance(page, list):
                raise VenueError(f"{url}: expected a list of settlements, got {str(page)[:120]}")
            times += [field(r, "fundingTime", url, int) for r in page]
            rates += [field(r, "fundingRate", url) for r in page]
            if len(page) < 1000:
                break
            start = times[-1] + 1
        return funding_frame(times, rates)

    async def open_interest(
        self, http: JsonClient, symbol: str, start: int, end: int
    ) -> pd.DataFrame:
        start = max(start, end - OI_HISTORY_MS)
        times: list[int] = []
        values: list[float] = []
        url = "/futures/data/openInterestHist"
        for _ in range(MAX_PAGES):
            if start > end:
                break
            params = {"symbol": symbol, "period": "1h", "startTime": start, "endTime": end}
            page = await http.get(url, {**params, "limit": 500})
            if not isinstance(page, list):
                raise VenueError(f"{url}: expected a list of snapshots, got {str(page)[:120]}")
            times += [field(r, "timestamp", url, int) for r in page]
            values += [field(r, "sumOpenInterestValue", url) for r in page]
            if len(page) < 500:
                break
            start = times[-1] + 1
        return snapshot_frame(times, values, "oi_usd")

    def stream_url(self, base: str, symbols: Iterable[str]) -> str:
        streams = "/".join(f"{s.lower()}@forceOrder" for s in symbols)
        return f"{base.rstrip('/')}/stream?streams={streams}"

    def subscribe(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        return []  # the streams are named in the URL

    def keepalive(self) -> dict[str, Any] | None:
        return None

    def parse(self, text: str) -> list[Liquidation]:
        try:
            message = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raise MessageError("not JSON") from None
        if not isinstance(message, dict):
            raise MessageError("not a JSON object")
        data = message.get("data", message)
        if not isinstance(data, dict) or data.get("e") != "forceOrder":
            if "result" in message or "id" in message:
                return []  # an answer to a request, not an event
            raise MessageError("not a forceOrder event")
        order = data.get("o")
        if not isinstance(order, dict):
            raise MessageError("forceOrder without its order `o`")
        try:
            symbol, side = str(order["s"]), order["S"]
            time_ms = millis(order["T"], "o.T")
            quantity = number(order["z"], "o.z", positive=True)
            price = number(order.get("ap") or order["p"], "o.ap", positive=True)
        except KeyError as exc:
            raise MessageError(f"forceOrder order lacks field {exc}") from None
        key = ("binance", symbol, time_ms, side, order["z"], order.get("ap"))
        return [Liquidation(time_ms, symbol, is_long("binance", side), quantity * price, key)]
