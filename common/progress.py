"""Progress for long work: a bar in a terminal; elsewhere (CI, pipes, logs) plain lines.

A bar redrawn in a log is noise, but minutes of silence look like a hang: off a terminal, a
stage that has run for `QUIET_S` seconds prints one line per tenth of its work (at most `LINES`
lines) with the count and the time taken, on stderr. Quick stages print nothing, so a command
that fails fast still says so in one line.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")
_COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
)
LINES = 10
"""Progress lines per stage off a terminal, at most."""
QUIET_S = 5.0
"""Seconds a stage runs before it reports progress off a terminal."""


class _Lines:
    """Plain progress lines on stderr for one stage of `total` steps (None: unknown)."""

    def __init__(self, description: str, total: int | None) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self.every = max(1, -(-total // LINES)) if total else 1
        self.start = time.monotonic()

    def advance(self) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.start
        due = self.done % self.every == 0 or self.done == self.total
        if due and elapsed >= QUIET_S:
            of = f"/{self.total}" if self.total else ""
            self._say(f"{self.description}: {self.done}{of} done ({elapsed:.0f} s)")

    @staticmethod
    def _say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over `items`, with a progress bar on stderr in a terminal, lines elsewhere."""
    if not sys.stderr.isatty():
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        lines = _Lines(description, total)
        for item in items:
            yield item
            lines.advance()
        return
    with Progress(*_COLUMNS, transient=True) as bar:
        yield from bar.track(items, total=total, description=description)


@contextlib.contextmanager
def ticker(description: str, total: int) -> Iterator[Callable[[], None]]:
    """Progress advanced by calling the yielded function (for work driven elsewhere)."""
    if not sys.stderr.isatty():
        yield _Lines(description, total).advance
        return
    with Progress(*_COLUMNS, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
