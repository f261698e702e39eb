"""Run every `benchmarks/bench_*.py` in a fresh process, so each reports its own peak memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    failed = 0
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        print(f"== {path.stem}", flush=True)
        failed += (
            subprocess.call([sys.executable, "-m", f"benchmarks.{path.stem}", *sys.argv[1:]]) != 0
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
