"""Progress bars for long work that stay quiet when output is not a terminal (CI, pipes, logs)."""

from __future__ import annotations

import contextlib
import sys
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


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over `items`, drawing a progress bar on stderr only when it is a terminal."""
    if not sys.stderr.isatty():
        yield from items
        return
    with Progress(*_COLUMNS, transient=True) as bar:
        yield from bar.track(items, total=total, description=description)


@contextlib.contextmanager
def ticker(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar advanced by calling the yielded function (for work driven elsewhere)."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    with Progress(*_COLUMNS, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
