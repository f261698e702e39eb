"""Simulator speed: one year x 3 symbols at 1-minute steps, target < 30 s and < 2 GB peak."""

from __future__ import annotations

import os

from benchmarks.measure import peak_rss_mb, timed

DAYS = 365
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def main() -> None:
    from flushcast.simulator.simulate import BURN_IN_DAYS, simulate

    # Numba compiles (or loads its cache) on first call; measured apart from the run itself.
    timed("simulator: compile / load cache (1 day, 1 symbol)", lambda: simulate(days=1))
    result = timed(
        f"simulator: {DAYS} d x {len(SYMBOLS)} symbols at 1-min steps",
        lambda: simulate("default", SYMBOLS, days=DAYS, seed=7),
        target_s=30,
    )
    steps = (DAYS + BURN_IN_DAYS) * 1440 * len(SYMBOLS)
    print(
        f"simulator: {steps:,} minute steps, {len(result.frame):,} hourly rows, "
        f"{len(result.cascades)} cascades; peak RSS {peak_rss_mb():.0f} MB (target 2048 MB); "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )


if __name__ == "__main__":
    main()
