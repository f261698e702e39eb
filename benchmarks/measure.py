"""Timing and peak-memory measurement shared by the benchmarks."""

from __future__ import annotations

import resource
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
