"""Row-level problems met while reading a register: counted, a few examples kept.

A user's file with a handful of broken rows should still import (the rows are skipped and
reported with file and line); `--strict` turns the first problem into a `UserError`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from horeca.errors import UserError

MAX_EXAMPLES = 5

# Reason -> what the user can do about it (used in strict-mode errors and summaries).
FIXES: dict[str, str] = {
    "wrong_column_count": "repair the row, or drop --strict to skip such rows",
    "invalid_enterprise_number": "check the number (mod 97), or drop --strict to skip it",
    "duplicate_key": "remove the repeated row, or drop --strict to keep the first one",
    "struck_off_address": "nothing: struck-off addresses are ignored",
    "bad_date": "write dates as dd-mm-yyyy, or drop --strict to import the row without it",
    "missing_id": "give every row an id, or drop --strict to skip such rows",
    "bad_number": "write numbers with digits (e.g. 12 or 1250.5), or drop --strict",
    "bad_coordinates": "give latitude/longitude in decimal degrees, or drop --strict",
}

# Reasons that only inform: they never stop a --strict import.
NOT_FATAL = frozenset({"struck_off_address"})


@dataclass
class RowIssues:
    """Counts of skipped or repaired rows by reason, with the first few locations."""

    strict: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, path: str, line: int | None, detail: str = "") -> None:
        where = f"{path}:{line}" if line else path
        if self.strict and reason not in NOT_FATAL:
            message = f"{detail} ({reason.replace('_', ' ')})" if detail else reason
            raise UserError(message, path=path, line=line, fix=FIXES.get(reason))
        self.counts[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(f"{where}: {detail}" if detail else where)

    def add_many(self, reason: str, n: int, examples: list[str]) -> None:
        """Problems found in bulk (e.g. duplicate keys found by a query)."""
        if n <= 0:
            return
        if self.strict and reason not in NOT_FATAL:
            first = examples[0] if examples else ""
            raise UserError(f"{n} rows with {reason.replace('_', ' ')}, first: {first}",
                            fix=FIXES.get(reason))
        self.counts[reason] += n
        shown = self.examples.setdefault(reason, [])
        shown.extend(examples[: MAX_EXAMPLES - len(shown)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, dict]:
        return {reason: {"count": n, "examples": self.examples.get(reason, [])}
                for reason, n in sorted(self.counts.items())}
