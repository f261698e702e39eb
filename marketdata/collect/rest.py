"""JSON over HTTP GET with bounded retries: what every REST call of a collector goes through.

Transient failures (connection errors, timeouts, 429 and 5xx) are retried with exponential
backoff; anything else, or running out of attempts, is a `VenueError` naming the URL, so a
collector reports it and tries again at the next bar instead of crashing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from flushcast.common.errors import shorten

TIMEOUT_S = 15.0
RETRYABLE = frozenset({408, 418, 429, 500, 502, 503, 504})
"""418: Binance's answer to an IP that kept calling after a 429."""


class VenueError(RuntimeError):
    """A REST call that failed for good (after retries, or with a non-retryable answer)."""


@dataclass(frozen=True)
class Backoff:
    """Delays of 0.5, 1, 2, ... seconds (capped), for REST retries and websocket reconnects."""

    first_s: float = 0.5
    cap_s: float = 30.0
    attempts: int = 5

    def delay(self, attempt: int) -> float:
        return min(self.first_s * 2**attempt, self.cap_s)


class JsonClient:
    """GET `base_url + path?params` and decode JSON."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, backoff: Backoff | None = None
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.backoff = backoff or Backoff()
        self.retries = 0
        """Retried calls so far (reported by the collector)."""

    async def get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}?{urlencode(params)}"
        problem = ""
        for attempt in range(self.backoff.attempts):
            if attempt:
                self.retries += 1
                await asyncio.sleep(self.backoff.delay(attempt - 1))
            try:
                timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
                async with self.session.get(url, timeout=timeout) as response:
                    text = await response.text()
                    if response.status in RETRYABLE:
                        problem = f"HTTP {response.status}"
                        continue
                    if response.status != 200:
                        raise VenueError(f"{url}: HTTP {response.status}: {text[:200]}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise VenueError(f"{url}: not JSON: {shorten(text[:200])}") from None
        raise VenueError(f"{url}: failed {self.backoff.attempts} times, last: {problem}")
