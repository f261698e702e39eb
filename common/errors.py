"""One error type for bad market data, so the CLI can report it in one line and exit 2."""

from __future__ import annotations

import reprlib
from pathlib import Path

ECHO_CHARS = 80
"""The most an error message shows of a value it quotes."""
_ECHO = reprlib.Repr()
_ECHO.maxlevel, _ECHO.maxstring, _ECHO.maxlong, _ECHO.maxother = 2, ECHO_CHARS, 40, ECHO_CHARS
_ECHO.maxdict = _ECHO.maxlist = _ECHO.maxtuple = _ECHO.maxset = 4


def shorten(value: object, limit: int = ECHO_CHARS) -> str:
    """`repr(value)`, bounded: every value an error message echoes goes through here.

    Nested containers are shown to two levels and four items each, strings and numbers cut, so
    a huge or self-multiplying input (YAML aliases that expand to billions of nodes) never makes
    a huge message or a long wait.
    """
    try:
        text = _ECHO.repr(value)
    except ValueError:  # an int of more digits than Python converts to text
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DataError(ValueError):
    """Input data that cannot become a canonical frame.

    The message always names where the problem is (file, row, column) so the user can open the
    file and look; the store is never touched when this is raised.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.problem}" if where else self.problem
