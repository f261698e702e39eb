"""How every command reports bad input: one line on stderr and exit code 2."""

from __future__ import annotations

import typer
from rich.console import Console

from flushcast.common.errors import DataError


def fail(exc: DataError) -> typer.Exit:
    """Report bad data in one line on stderr and exit 2 (the store is unchanged)."""
    Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)
