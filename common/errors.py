"""One error type for bad market data, so the CLI can report it in one line and exit 2."""

from __future__ import annotations

from pathlib import Path


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
