"""`GET /risk/BTCUSDT` under load: a real `flushcast serve --live` (2 workers) over loopback.

The sandbox champion (tests/serving/sandbox.py) serves its simulated store with live operation
on; the risk of the latest bar is computed once at start and cached, so a call is a lookup.
Driven as the serving benchmark drives /predict (threads with one keep-alive connection each, a
fixed number of requests), at concurrency 1, 8 and 32; beside it the in-process floor:
the same lookup (`RiskBook.answer`, staleness included) on one thread, without HTTP.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.bench_serving import CONCURRENCY, Figures, Workload, _figures, _timed, drive

REQUESTS = 2000
TARGET = "c=8: p50 <= 2 ms"


def floor(book, n: int = 20_000) -> Figures:
    """The lookup alone, staleness included, on one thread."""
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        book.answer("BTCUSDT")
        latencies.append(time.perf_counter() - t)
    return _figures(latencies, time.perf_counter() - start)


def main() -> None:
    from flushcast.live.risk import Limits, RiskBook, compute, utc_now
    from flushcast.marketdata.store import MarketStore
    from tests.serving.sandbox import build, running_server

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        box = _timed(
            "sandbox champion (simulate, train, register, import)", lambda: build(Path(tmp))
        )
        os.environ.update(box.env())
        from flushcast.serving.service import Flushcast

        predictor = Flushcast().predictor
        snapshot, _ = compute(predictor, MarketStore(box.store).read(), utc_now())
        never = timedelta(days=3650)  # the sandbox market is of 2024: never stale here
        book = RiskBook(Limits(never, never), utc_now)
        book.load(snapshot)
        in_process = floor(book)
        command = [sys.executable, "-m", "flushcast.serve_cli", "serve", "--model", box.tag]
        command += ["--store", str(box.store), "--live", str(Path(tmp) / "live")]
        command += ["--stale-after", "1e6", "--stale-limit", "1e6"]
        workload = Workload("GET /risk/BTCUSDT", "/risk/BTCUSDT", b"", REQUESTS, TARGET, "GET")
        with running_server(command, box.env(), Path(tmp) / "serve.log") as (port, ready_s):
            print(f"process start to ready (2 workers, live, warm-up included): {ready_s:.1f} s")
            print(
                f"load average before driving: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
            )
            header = f"{'workload':26} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}"
            print(f"{header} | in-process floor: p50 ms, p99 ms, req/s (1 thread) | target")
            drive(port, dataclasses.replace(workload, requests=50), 2)  # both workers warm
            for concurrency in CONCURRENCY:
                figures = drive(port, workload, concurrency)
                ratio = figures.p50_ms / in_process.p50_ms
                print(
                    f"{workload.name:26} {concurrency:4d} {figures} | {in_process} | "
                    f"p50 {ratio:,.0f}x the floor | {TARGET}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
