"""User-facing errors.

A `UserError` is a mistake in what the user gave us (a file, a config, an option). The CLI
prints it as one line, without a traceback, and exits with status 2. Its message names the
file (and line, when there is one) and says how to fix it.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem with the user's input, reported as one clear line."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 fix: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.fix = fix
        self.bare_message = message
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{where}{self.bare_message}{fix}"
