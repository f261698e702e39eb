"""Bybit linear (USDT) perpetuals: v5 REST history and the `allLiquidation` stream.

REST (public): `/v5/market/kline` (interval 60, newest first, 1,000 a page),
`/v5/market/funding/history`, `/v5/market/open-interest` (1 h snapshots in coins, converted
to USD with the bar's close) and `/v5/market/time`; answers are `{"retCode": 0, "result": ...}`.
Stream: `allLiquidation.<symbol>` on `/v5/public/linear`, which must be pinged every 20 s.
Bybit's `S` is the side of the liquidated POSITION: "When you receive a Buy update, this means
that a long position has been liquidated" (Bybit v5 docs, All Liquidation), which is also what
the recorded Bybit events in the shared data show (`marketdata.liquidations`). The notional is
the executed size `v` (coins) times the bankruptcy price `p`. The stream pushes every
liquidation (in batches every 500 ms), unlike the older one-per-second `liquidation` topic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

import pandas as pd

from flushcast.common.errors import shorten
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

SUBSCRIBE_ARGS = 10
"""Topics per subscribe request."""


async def _result(http: JsonClient, path: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await http.get(path, {"category": "linear", **params})
    if not isinstance(answer, dict) or answer.get("retCode") != 0:
        message = answer.get("retMsg") if isinstance(answer, dict) else str(answer)[:120]
        raise VenueError(f"{path}: Bybit refused {params}: {message}")
    result = answer.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("list"), list):
        raise VenueError(f"{path}: answer without result.list: {str(answer)[:120]}")
    return result


class Bybit:
    name = "bybit"
    rest_url = "https://api.bybit.com"
    ws_url = "wss://stream.bybit.com"
    keepalive_s = 20.0
    sources: ClassVar[dict[str, str]] = {
        "klines": "bybit REST /v5/market/kline",
        "funding": "bybit REST /v5/market/funding/history",
        "open_interest": "bybit REST /v5/market/open-interest (coins x bar close)",
        "liquidations": "bybit allLiquidation stream",
    }

    async def server_time(self, http: JsonClient) -> int:
        answer = await http.get("/v5/market/time", {})
        return field(answer, "time", "/v5/market/time", int)

    async def klines(self, http: JsonClient, symbol: str, start: int, end: int) -> pd.DataFrame:
        rows: list[dict[str, Any]] = []
        path = "/v5/market/kline"
        window = 999 * HOUR_MS  # 1,000 bars per page, both ends inclusive
        for page_start in range(start, end + 1, window + HOUR_MS)[:MAX_PAGES]:
            params = {
                "symbol": symbol,
                "interval": "60",
                "start": page_start,
                "end": min(page_start + window, end),
                "limit": 1000,
            }
            for k in (await _result(http, path, params))["list"]:
                rows.append(
                    {
                        "open_ms": field(k, 0, path, int),
                        "open": field(k, 1, path),
                        "high": field(k, 2, path),
                        "low": field(k, 3, path),
                        "close": field(k, 4, path),
                        "volume_usd": field(k, 6, path),  # turnover, in USDT
                        "taker_buy_volume_usd": float("nan"),
                    }
                )
        return kline_frame(rows, start, end)

    async def funding(self, http: JsonClient, symbol: str, start: int, end: int) -> pd.DataFrame:
        times: list[int] = []
        rates: list[float] = []
        path = "/v5/market/funding/history"
        for _ in range(MAX_PAGES):
            params = {"symbol": symbol, "startTime": start, "endTime": end, "limit": 200}
            page = (await _result(http, path, params))["list"]
            times += [field(r, "fundingRateTimestamp", path, int) for r in page]
            rates += [field(r, "fundingRate", path) for r in page]
            if len(page) < 200:
                break
            end = min(times) - 1  # newest first: continue below the oldest
        return funding_frame(times, rates)

    async def open_interest(
        self, http: JsonClient, symbol: str, start: int, end: int
    ) -> pd.DataFrame:
        times: list[int] = []
        values: list[float] = []
        path = "/v5/market/open-interest"
        window = 198 * HOUR_MS  # at most 199 snapshots, under the 200 a page
        for page_start in range(start, end + 1, window + HOUR_MS)[:MAX_PAGES]:
            params = {
                "symbol": symbol,
                "intervalTime": "1h",
                "startTime": page_start,
                "endTime": min(page_start + window, end),
                "limit": 200,
            }
            for r in (await _result(http, path, params))["list"]:
                times.append(field(r, "timestamp", path, int))
                # One side's contracts, as every other venue counts open interest; newer answers
                # also carry both sides summed in `openInterest`.
                values.append(
                    field(
                        r,
                        "singleOpenInterest" if "singleOpenInterest" in r else "openInterest",
                        path,
                    )
                )
        return snapshot_frame(times, values, "oi_coin")

    def stream_url(self, base: str, symbols: Iterable[str]) -> str:
        return f"{base.rstrip('/')}/v5/public/linear"

    def subscribe(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        topics = [f"allLiquidation.{s}" for s in symbols]
        return [
            {"op": "subscribe", "args": topics[i : i + SUBSCRIBE_ARGS]}
            for i in range(0, len(topics), SUBSCRIBE_ARGS)
        ]

    def keepalive(self) -> dict[str, Any] | None:
        return {"op": "ping"}

    def parse(self, text: str) -> list[Liquidation]:
        try:
            message = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raise MessageError("not JSON") from None
        if not isinstance(message, dict):
            raise MessageError("not a JSON object")
        if "topic" not in message:
            if message.get("success") is False:
                raise MessageError(f"Bybit refused {message.get('op')}: {message.get('ret_msg')}")
            if "op" in message or "success" in message:
                return []  # subscribe acks and pongs
            raise MessageError("neither an event nor an answer")
        if not str(message["topic"]).startswith("allLiquidation."):
            raise MessageError(f"unexpected topic {shorten(message['topic'])}")
        data = message.get("data")
        items = data if isinstance(data, list) else [data]
        events = []
        for item in items:
            if not isinstance(item, dict):
                raise MessageError("allLiquidation data is not an object")
            try:
                symbol, side = str(item["s"]), item["S"]
                time_ms = millis(item["T"], "data.T")
                size = number(item["v"], "data.v", positive=True)
                price = number(item["p"], "data.p", positive=True)
            except KeyError as exc:
                raise MessageError(f"allLiquidation data lacks field {exc}") from None
            key = ("bybit", symbol, time_ms, side, item["v"], item["p"])
            events.append(Liquidation(time_ms, symbol, is_long("bybit", side), size * price, key))
        return events
