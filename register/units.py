"""Register units: pure functions that turn register facts into `register_units` rows.

A unit is an establishment unit, or an enterprise without any unit, kept through its seat.
Names, contacts and NACE codes come from both levels (unit and enterprise), each entry
saying which level it came from, so keying can weigh a unit's own commercial name above
its enterprise's legal name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

LANGUAGES = {"0": "", "1": "fr", "2": "nl", "3": "de", "4": "en"}
DENOMINATION_TYPES = {"001": "legal", "002": "abbreviation", "003": "commercial",
                      "004": "branch"}
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
ADDRESS_FIELDS = ("street_fr", "street_nl", "house_number", "box", "postcode",
                  "municipality_fr", "municipality_nl")


def name_entries(denominations: Iterable[Sequence[str]], level: str) -> list[dict[str, str]]:
    """KBO (type code, language code, name) triples -> names entries of one level."""
    entries = []
    for type_code, lang_code, name in denominations:
        name = (name or "").strip()
        if not name:
            continue
        entries.append({"name": name,
                        "type": DENOMINATION_TYPES.get(type_code, type_code or ""),
                        "lang": LANGUAGES.get(lang_code, lang_code or ""),
                        "level": level})
    return entries


_TYPE_ORDER = {"commercial": 0, "branch": 1, "legal": 2, "abbreviation": 3}


def merge_names(*levels: list[dict[str, str]]) -> list[dict[str, str]]:
    """Unit names first, then enterprise names; within a level commercial before legal.

    The same text at two levels is kept twice (the level is evidence), but the same
    (name, type, lang, level) only once.
    """
    seen: set[tuple[str, str, str, str]] = set()
    merged: list[dict[str, str]] = []
    for entries in levels:
        for entry in sorted(entries, key=lambda e: (_TYPE_ORDER.get(e["type"], 9), e["lang"],
                                                    e["name"])):
            key = (entry["name"], entry["type"], entry["lang"], entry["level"])
            if key not in seen:
                seen.add(key)
                merged.append(entry)
    return merged


def unique(values: Iterable[str | None]) -> list[str]:
    """Values in first-seen order without blanks or repeats."""
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return list(seen)


def nace_entries(rows: Iterable[Sequence[str]], level: str) -> list[dict[str, str]]:
    """KBO (version, code, classification) triples -> nace entries, repeats removed
    (the same code appears once per activity group: VAT, social security, ...)."""
    seen: set[tuple[str, str, str]] = set()
    entries = []
    for version, code, classification in rows:
        code = (code or "").replace(".", "").strip()
        if not code:
            continue
        key = (code, version or "", classification or "")
        if key in seen:
            continue
        seen.add(key)
        entries.append({"code": code, "version": version or "",
                        "classification": classification or "", "level": level})
    entries.sort(key=lambda e: ({"MAIN": 0, "SECO": 1, "ANCI": 2}.get(e["classification"], 3),
                                e["version"], e["code"]))
    return entries


def is_horeca(codes: Iterable[str], prefixes: Sequence[str] = HORECA_PREFIXES) -> bool:
    """Any NACE code (dots ignored, any version) starting with one of `prefixes`."""
    return any(code.replace(".", "").startswith(tuple(prefixes)) for code in codes)


def matches_nace(codes: Iterable[str], prefixes: Sequence[str]) -> bool:
    """True when no prefixes are asked for, else like `is_horeca` with those prefixes."""
    return not prefixes or is_horeca(codes, prefixes)


def to_json(value: Any) -> str | None:
    """Compact JSON for list columns; None for an empty list so the column stays NULL."""
    if not value:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def unit_row(unit: dict[str, Any]) -> tuple:
    """A unit dict -> a tuple in UNIT_COLUMNS order, lists as JSON."""
    out = []
    for column in UNIT_COLUMNS:
        value = unit.get(column)
        if isinstance(value, list):
            value = to_json(value)
        out.append(value)
    return tuple(out)
