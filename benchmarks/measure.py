"""Timing and peak-memory measurement shared by the benchmarks."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_child_rss_mb() -> float:
    """Peak resident memory of the largest finished child process (worker pools)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def timed(label: str, fn: Callable[[], T], target_s: float | None = None) -> T:
    """Run `fn` once, print its wall time and the process's peak memory, return its result."""
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    verdict = ""
    if target_s is not None:
        verdict = f"  (target {target_s:g} s: {'met' if elapsed <= target_s else 'MISSED'})"
    children = peak_child_rss_mb()
    workers = f", largest worker {children:.0f} MB" if children else ""
    print(
        f"{label}: {elapsed:.3f} s, peak RSS {peak_rss_mb():.0f} MB{workers}{verdict}", flush=True
    )
    return result


def worker_peaks_mb(runner: object) -> list[float]:
    """Peak resident memory of each worker of a Dask engine (none in process), sorted."""
    client = getattr(runner, "client", None)
    return sorted(client.run(peak_rss_mb).values()) if client is not None else []


def cpu_s() -> float:
    """CPU seconds (user + system, every thread) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_cpu_s(runner: object) -> dict[str, float]:
    """CPU seconds each worker of a Dask engine has used so far, by address (none in process)."""
    client = getattr(runner, "client", None)
    return dict(client.run(cpu_s)) if client is not None else {}


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each worker spent between two readings, by address: on a loaded machine
    these compare across runs where wall time does not. A worker that joined in between counts
    all its seconds; one that left is missing from `after` and cannot be counted."""
    return {worker: after[worker] - before.get(worker, 0.0) for worker in sorted(after)}


class LoadSampler:
    """The 1-minute load average, sampled every `every_s` seconds while in a `with` block
    (other work on a shared machine stretches wall time; this says how much there was)."""

    def __init__(self, every_s: float = 15.0) -> None:
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> str:
        """`min-max (mean m)` of the samples."""
        low, high = min(self.samples), max(self.samples)
        mean = sum(self.samples) / len(self.samples)
        return f"{low:.1f}-{high:.1f} (mean {mean:.1f})"
