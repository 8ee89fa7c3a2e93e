"""One error type for everything a user can fix.

The CLI prints a PlannerError as a single line (no traceback), so every message
must say which file, which row or key, what value, and what to do about it.
"""

from __future__ import annotations

from pathlib import Path


class PlannerError(Exception):
    """A problem with the user's inputs or environment, explained in one line."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | str | None = None,
        field: str | None = None,
        value: object = None,
        fix: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.row = row
        self.field = field
        self.value = value
        self.fix = fix
        self.detail = message
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field '{self.field}'")
        text = ": ".join([", ".join(where), self.detail]) if where else self.detail
        if self.value is not None:
            text += f" (value: {self.value!r})"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text
