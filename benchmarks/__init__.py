"""Speed and memory benchmarks; `python -m benchmarks` runs them all, each in its own process."""
