"""Download Binance Vision USD-M archives (1 h klines, metrics, fundingRate) and ingest them.

What is fetched for a date range [start, end] (inclusive, UTC days):

- klines 1h: the monthly zip for every calendar month wholly inside the range, daily zips for the
  days of partial months (fewest requests without fetching days outside the range);
- metrics: daily zips, the only form Binance publishes;
- fundingRate: monthly zips, the only form Binance publishes, for every month the range touches
  (settlements outside the range land on no price bar and are dropped by the ingest).

A day or month that answers 404 is "not published" (the current day or month, days before a
listing) and is reported, not fatal. Every zip comes with `<zip>.CHECKSUM` (`<sha256>  <name>`)
and is accepted only when its SHA-256 matches; a mismatch stops the run before anything is
ingested. Downloads go to `<name>.part` and are renamed into the cache only once verified, so the
cache holds only verified zips; a rerun skips them without touching the network, and resumes a
`.part` left by an interrupted run with an HTTP Range request (or restarts it when the server
ignores the range). The last hour of `end` gets no OI: its closing snapshot is in the next day's
metrics file, which is not fetched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flushcast.common.atomic import write_atomic
from flushcast.common.errors import DataError, shorten
from flushcast.common.progress import progress
from flushcast.marketdata.ingest import IngestReport, ingest
from flushcast.marketdata.store import MarketStore

DEFAULT_BASE_URL = "https://data.binance.vision/data/futures/um/"
INTERVAL = "1h"
TIMEOUT_S = 60.0
ATTEMPTS = 3
"""Tries per zip within one run; each retry resumes from the bytes already on disk."""

_CHUNK = 1 << 16
_CHECKSUM = re.compile(r"^\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")


class FetchError(RuntimeError):
    """The download itself failed (network, HTTP error other than 404); rerun to resume."""


class _NotPublished(Exception):
    pass


@dataclass(frozen=True)
class Archive:
    """One zip of the archive: its place under the base URL is also its place in the cache."""

    symbol: str
    kind: str  # "klines", "metrics" or "fundingRate"
    period: str  # "daily" or "monthly"
    label: str  # "2024-01-31" or "2024-01"

    @property
    def filename(self) -> str:
        middle = INTERVAL if self.kind == "klines" else self.kind
        return f"{self.symbol}-{middle}-{self.label}.zip"

    @property
    def path(self) -> str:
        folder = f"{self.period}/{self.kind}/{self.symbol}"
        if self.kind == "klines":
            folder += f"/{INTERVAL}"
        return f"{folder}/{self.filename}"


@dataclass
class FetchReport:
    downloaded: list[Path] = field(default_factory=list)
    cached: list[Path] = field(default_factory=list)
    missing: list[Archive] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return self.downloaded + self.cached


def _days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    for n in range((end - start).days + 1):
        yield start + dt.timedelta(days=n)


def _month_end(day: dt.date) -> dt.date:
    first_next = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first_next - dt.timedelta(days=1)


def plan(symbol: str, start: dt.date, end: dt.date) -> list[Archive]:
    """Every archive needed for `symbol` over [start, end]; klines first (they carry the prices)."""
    if end < start:
        raise DataError(f"end {end} is before start {start}")
    klines: list[Archive] = []
    months: list[str] = []
    for day in _days(start, end):
        month = f"{day:%Y-%m}"
        if month not in months:
            months.append(month)
        whole = day.replace(day=1) >= start and _month_end(day) <= end
        if not whole:
            klines.append(Archive(symbol, "klines", "daily", f"{day:%Y-%m-%d}"))
        elif day.day == 1:
            klines.append(Archive(symbol, "klines", "monthly", month))
    metrics = [Archive(symbol, "metrics", "daily", f"{d:%Y-%m-%d}") for d in _days(start, end)]
    funding = [Archive(symbol, "fundingRate", "monthly", m) for m in months]
    return klines + metrics + funding


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _NotPublished from None
        raise
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"cannot reach {url}: {exc}") from None


def _expected_sha(url: str, filename: str) -> str:
    try:
        with _open(url) as response:
            text = response.read().decode("ascii", errors="replace")
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    match = _CHECKSUM.match(text)
    if match is None or match.group(2) != filename:
        raise DataError(f"not a checksum for {filename}: {shorten(text[:120])}", file=url)
    return match.group(1).lower()


def _download(url: str, part: Path) -> None:
    """Fetch `url` into `part`, continuing from the bytes `part` already has."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = _open(url, headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the .part is not a prefix of this file: start over
            part.unlink()
            return _download(url, part)
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    with response:
        resumed = response.status == 206 and (
            response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")
        )
        expected = response.headers.get("Content-Length")
        received = 0
        with part.open("ab" if resumed else "wb") as handle:
            while block := response.read(_CHUNK):
                handle.write(block)
                received += len(block)
    # urllib returns a short body without complaint when the connection drops; the bytes kept
    # in `part` are resumed by the caller.
    if expected is not None and received < int(expected):
        raise http.client.IncompleteRead(b"", int(expected) - received)
    return None


def fetch_archive(archive: Archive, cache: Path, base_url: str = DEFAULT_BASE_URL) -> str:
    """Make `cache/<archive.path>` a verified copy; returns "cached", "downloaded" or "missing".

    Raises DataError on a checksum mismatch (the bad download is deleted) and FetchError when the
    network fails `ATTEMPTS` times in a row (the `.part` is kept for the next run to resume).
    """
    target = cache / archive.path
    checksum = target.with_name(target.name + ".CHECKSUM")
    url = base_url.rstrip("/") + "/" + archive.path
    if target.is_file() and checksum.is_file():
        match = _CHECKSUM.match(checksum.read_text(encoding="ascii", errors="replace"))
        if match is not None and match.group(1).lower() == _sha256(target):
            return "cached"
    try:
        expected = _expected_sha(url + ".CHECKSUM", archive.filename)
        part = target.with_name(target.name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        fresh = False
        while True:
            resumed = part.exists() and part.stat().st_size > 0
            _download_with_retries(url, part)
            actual = _sha256(part)
            if actual == expected:
                break
            part.unlink()
            if not resumed or fresh:
                raise DataError(
                    f"checksum mismatch: the published SHA-256 is {expected}, the download's is "
                    f"{actual}; the download was deleted and nothing was ingested",
                    file=url,
                )
            fresh = True  # a resumed .part may be stale: one clean download before giving up
    except _NotPublished:
        return "missing"
    os.replace(part, target)
    write_atomic(checksum, lambda tmp: tmp.write_text(f"{expected}  {archive.filename}\n"))
    return "downloaded"


def _download_with_retries(url: str, part: Path) -> None:
    problem: Exception | None = None
    for _ in range(ATTEMPTS):
        try:
            _download(url, part)
            return
        except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            problem = exc
    raise FetchError(
        f"download of {url} was interrupted {ATTEMPTS} times ({shorten(problem)}); "
        f"run again to resume from the {part.stat().st_size if part.exists() else 0} bytes kept"
    )


def download(
    archives: Sequence[Archive], cache: Path, base_url: str = DEFAULT_BASE_URL
) -> FetchReport:
    """Fetch every archive into `cache` (see `fetch_archive`), with a progress bar."""
    report = FetchReport()
    for archive in progress(archives, f"downloading {len(archives)} archives"):
        status = fetch_archive(archive, cache, base_url)
        if status == "missing":
            report.missing.append(archive)
        else:
            getattr(report, status).append(cache / archive.path)
    return report


def fetch_binance(
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
    store: MarketStore,
    cache: Path,
    base_url: str = DEFAULT_BASE_URL,
) -> tuple[FetchReport, IngestReport]:
    """Download (or reuse) every archive for `symbols` over [start, end], then ingest them all.

    Nothing is ingested unless every published archive downloaded and verified.
    """
    archives = [a for symbol in symbols for a in plan(symbol, start, end)]
    report = download(archives, Path(cache), base_url)
    if not report.files:
        raise DataError(
            f"no archive is published for {', '.join(symbols)} between {start} and {end}",
            file=base_url,
        )
    return report, ingest("binance-vision", report.files, store)
