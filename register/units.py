"""Register units: the `register_units` row shape shared by the KBO and CSV importers.

A unit is an establishment unit, or an enterprise without any unit, kept through its seat.
Names, contacts and NACE codes come from both levels (unit and enterprise), each entry
saying which level it came from, so keying can weigh a unit's own commercial name above
its enterprise's legal name. (For KBO the JSON columns are built in SQL: see kbo.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

HORECA_PREFIXES = ("55", "56")

# Column order of register_units rows written by `unit_row`.
UNIT_COLUMNS: tuple[str, ...] = (
    "unit_id", "enterprise_number", "establishment_number", "names",
    "street_fr", "street_nl", "house_number", "box", "postcode", "municipality_fr",
    "municipality_nl", "address_extra",
    "seat_street_fr", "seat_street_nl", "seat_house_number", "seat_box", "seat_postcode",
    "seat_municipality_fr", "seat_municipality_nl",
    "phones", "websites", "emails", "nace", "horeca", "juridical_form", "natural_person",
    "start_date", "lat", "lon", "declared_workers", "declared_turnover", "declared_level",
)


def unique(values: Iterable[str | None]) -> list[str]:
    """Values in first-seen order without blanks or repeats."""
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return list(seen)


def is_horeca(codes: Iterable[str], prefixes: Sequence[str] = HORECA_PREFIXES) -> bool:
    """Any NACE code (dots ignored, any version) starting with one of `prefixes`."""
    return any(code.replace(".", "").startswith(tuple(prefixes)) for code in codes)


def matches_nace(codes: Iterable[str], prefixes: Sequence[str]) -> bool:
    """True when no prefixes are asked for, else like `is_horeca` with those prefixes."""
    return not prefixes or is_horeca(codes, prefixes)


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                           check_circular=False).encode


def to_json(value: Any) -> str | None:
    """Compact JSON for list columns; None for an empty list so the column stays NULL."""
    if not value:
        return None
    return _ENCODE(value)


def unit_row(unit: dict[str, Any]) -> tuple:
    """A unit dict -> a tuple in UNIT_COLUMNS order, lists as JSON."""
    out = []
    for column in UNIT_COLUMNS:
        value = unit.get(column)
        if isinstance(value, list):
            value = to_json(value)
        out.append(value)
    return tuple(out)
