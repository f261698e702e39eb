"""`flushcast collect bybit` replaying real recorded liquidations through the fake exchange.

The recorded Bybit BTCUSDT tape of ../shared (30,630 orders, 2024-02 → 06) is served by the
loopback fake exchange (tests/exchange) and collected by a real `flushcast collect` process:

1. throughput: the busiest recorded day (2024-03-05, 1,660 orders) at 100x, i.e. a day in
   14.4 minutes: orders counted, the collector's CPU time and share of a core, peak memory;
   beside it the in-process floor, parsing the same day's messages and adding them to the book
   on one thread as fast as possible;
2. memory: a week (2024-03-05 → 03-12) at 3,600x (a day in 24 s), the collector's resident
   memory sampled once a replayed day: it stays flat, since only open bars are held.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.conftest import REAL_DATA

FLUSHCAST = str(Path(sys.executable).with_name("flushcast"))
DAY_START = "2024-03-05T00:00:30Z"


def _floor(recording) -> tuple[int, float]:
    """Messages of the busiest day parsed and booked on one thread: (events, events/s)."""
    from flushcast.marketdata.collect.book import LiquidationBook
    from flushcast.marketdata.collect.bybit import Bybit
    from tests.exchange.server import FakeExchange

    messages = FakeExchange(recording, DAY_START).stream("BTCUSDT")
    start_ms = 1_709_596_800_000  # 2024-03-05 00:00 UTC
    day = [text for at, text in messages if start_ms <= at < start_ms + 86_400_000]
    venue = Bybit()
    began = time.perf_counter()
    events = 0
    for _ in range(20):
        book = LiquidationBook()
        for text in day:
            for event in venue.parse(text):
                book.add(event)
                events += 1
    return events // 20, events / (time.perf_counter() - began)


def _collect(recording, start: str, speed: float, bars: int, sample_every_s: float):
    """Run the collector for `bars` live bars; its summary, CPU s, peak and sampled RSS (MB)."""
    from tests.exchange.server import FakeExchange, in_thread

    with (
        tempfile.TemporaryDirectory(prefix="bench-collect-") as store,
        in_thread(FakeExchange(recording, start, speed)) as exchange,
    ):
        command = [FLUSHCAST, "collect", "bybit", "--symbols", "BTCUSDT", "--store", store]
        command += ["--base-url", exchange.url, "--max-bars", str(bars), "--settle", "20"]
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        watched = psutil.Process(process.pid)
        samples, peak, cpu = [], 0.0, 0.0
        next_sample = time.perf_counter()
        while process.poll() is None:
            try:
                rss = watched.memory_info().rss / 2**20
                times = watched.cpu_times()
            except psutil.NoSuchProcess:
                break
            peak, cpu = max(peak, rss), times.user + times.system
            if time.perf_counter() >= next_sample:
                samples.append(rss)
                next_sample += sample_every_s
            time.sleep(0.2)
        summary = process.communicate()[0].decode().strip()
        elapsed = time.perf_counter() - began
    return summary, elapsed, cpu, peak, samples


def main() -> None:
    if not (REAL_DATA / "MANIFEST.json").is_file():
        print(f"skipped: the real data is not at {REAL_DATA}")
        return
    from tests.exchange.recording import bybit_2024

    recording = bybit_2024(REAL_DATA)
    events, rate = _floor(recording)
    print(f"in-process floor: {events} orders of 2024-03-05 parsed and booked at {rate:,.0f}/s")

    summary, elapsed, cpu, peak, _ = _collect(recording, DAY_START, 100, 24, 60)
    print(
        f"a day at 100x: {elapsed:.0f} s, collector CPU {cpu:.1f} s ({100 * cpu / elapsed:.1f} % "
        f"of a core), peak RSS {peak:.0f} MB\n  {summary}"
    )

    summary, elapsed, cpu, peak, samples = _collect(recording, DAY_START, 3600, 7 * 24, 24)
    days = ", ".join(f"{rss:.0f}" for rss in samples[1:8])
    print(
        f"a week at 3,600x: {elapsed:.0f} s, collector CPU {cpu:.1f} s, peak RSS {peak:.0f} MB; "
        f"RSS once a replayed day (MB): {days}\n  {summary}"
    )


if __name__ == "__main__":
    main()
