"""Inspectors' verdicts and how they carry forward into later runs.

A verdict is stored with the ids of the listings its place had (`verdicts.listing_ids`), so
it survives place ids changing when a new listing joins a place or keying is re-run.

The rule, for keying and exports alike (`verdict_overrides` gives it per listing id):

| verdict            | later runs                                                       |
|--------------------|------------------------------------------------------------------|
| confirmed          | not proposed again (left out of exports and top targets)         |
| registered_under N | becomes a match to register number N (`apply_verdicts`), and is  |
|                    | not proposed again                                               |
| closed             | not proposed again                                               |
| false_positive     | not proposed again                                               |
| not_visited        | no effect: the place stays in the lists; the export shows it     |

When a listing has several verdicts the latest wins (by `reviewed_at`, then import time);
a `not_visited` never hides an earlier settling verdict. `horeca export --include-reviewed`
shows settled places again, with their previous verdict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlite_utils

from horeca.normalize.identifiers import is_valid_enterprise_number
from horeca.store import transaction

VERDICTS = ("confirmed", "registered_under", "closed", "false_positive", "not_visited")
SETTLING = frozenset(VERDICTS) - {"not_visited"}
_SEPARATORS = re.compile(r"[\s./-]")


@dataclass(frozen=True)
class Override:
    """The latest verdict that applies to a listing."""

    verdict: str
    register_number: str | None
    reviewer: str
    reviewed_at: str
    place_id: str
    listing_ids: tuple[str, ...]
    comment: str | None = None
    imported_at: str | None = None
    verdict_id: int = 0
    outcome: str | None = None      # what the reviewed row said (match | doubt | no-match)
    unit_id: str | None = None      # the unit that row was matched to, if any

    @property
    def settles(self) -> bool:
        return self.verdict in SETTLING

    @property
    def sort_key(self) -> tuple[str, str, int]:
        return (self.reviewed_at or "", self.imported_at or "", self.verdict_id)


def parse_register_number(text: str | None) -> str | None:
    """A KBO enterprise number (0/1 + 9 digits) or establishment number (2-9 + 9 digits)
    as 10 digits, with a valid mod-97 check, from "0123.456.749", "BE0123456749",
    "2.123.456.789" or the old 9-digit form; else None."""
    if not text:
        return None
    raw = str(text).strip().upper()
    raw = raw.removeprefix("BE").strip()
    digits = _SEPARATORS.sub("", raw)
    if not digits.isdigit():
        return None
    if len(digits) == 9:
        digits = "0" + digits
    if len(digits) != 10:
        return None
    if digits[0] in "01":
        return digits if is_valid_enterprise_number(digits) else None
    return digits if 97 - int(digits[:8]) % 97 == int(digits[8:]) else None


def format_register_number(digits: str) -> str:
    """10 digits -> "0123.456.749" (enterprise) or "2.123.456.789" (establishment)."""
    if digits[0] in "01":
        return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"
    return f"{digits[0]}.{digits[1:4]}.{digits[4:7]}.{digits[7:]}"


def _listing_ids(text: str | None) -> tuple[str, ...]:
    try:
        data = json.loads(text or "[]")
    except ValueError:
        return ()
    return tuple(str(x) for x in data) if isinstance(data, list) else ()


def latest_verdicts(db: sqlite_utils.Database, *, settling_only: bool = False
                    ) -> dict[str, Override]:
    """Per listing id, its latest verdict (of any kind, or settling ones only)."""
    out: dict[str, Override] = {}
    for row in db.query("SELECT * FROM verdicts"):
        o = Override(verdict=row["verdict"], register_number=row["register_number"],
                     reviewer=row["reviewer"] or "", reviewed_at=row["reviewed_at"] or "",
                     place_id=row["place_id"] or "", listing_ids=_listing_ids(row["listing_ids"]),
                     comment=row["comment"], imported_at=row["imported_at"],
                     verdict_id=int(row["id"]), outcome=row["outcome"], unit_id=row["unit_id"])
        if settling_only and not o.settles:
            continue
        for lid in o.listing_ids:
            if lid not in out or out[lid].sort_key < o.sort_key:
                out[lid] = o
    return out


def verdict_overrides(db: sqlite_utils.Database) -> dict[str, Override]:
    """Per listing id, the latest settling verdict (see the module docstring for the rule).

    For keying: a place is settled when any of its listing ids is in this dict; if the
    latest of its overrides is `registered_under`, `register_number` (10 digits) is the unit
    it is registered under.
    """
    return latest_verdicts(db, settling_only=True)


def place_override(listing_ids: list[str] | tuple[str, ...],
                   overrides: dict[str, Override]) -> Override | None:
    """The latest override among a place's listings, or None."""
    found = [overrides[i] for i in listing_ids if i in overrides]
    return max(found, key=lambda o: o.sort_key, default=None)


def find_unit(db: sqlite_utils.Database, number: str, snapshot_id: int | None = None
              ) -> dict | None:
    """The register unit behind an enterprise or establishment number, in one snapshot
    (default: any active one). An establishment number wins over an enterprise number;
    an enterprise with several units gives its first unit by id."""
    digits = parse_register_number(number)
    if digits is None:
        return None
    if snapshot_id is None:
        snaps = [r[0] for r in db.execute(
            "SELECT id FROM register_snapshots WHERE status = 'active' ORDER BY id DESC")]
    else:
        snaps = [snapshot_id]
    clean = "replace(replace({c}, '.', ''), ' ', '')"
    for snap in snaps:
        for column in ("establishment_number", "unit_id", "enterprise_number"):
            rows = list(db.query(
                f"SELECT * FROM register_units WHERE snapshot_id = ? AND "
                f"{clean.format(c=column)} = ? ORDER BY unit_id LIMIT 1", [snap, digits]))
            if rows:
                return rows[0]
    return None


def apply_verdicts(db: sqlite_utils.Database) -> int:
    """Turn places reviewed as "registered under N" into matches to N in keying_results.

    Idempotent; call it after keying (the pipeline does) and after each review import.
    Returns the number of keying results changed. Other settling verdicts change nothing
    here: exports and top targets leave those places out.
    """
    overrides = verdict_overrides(db)
    if not overrides:
        return 0
    changed = 0
    with transaction(db):
        rows = list(db.query(
            "SELECT k.place_id, k.outcome, k.unit_id, k.snapshot_id, k.reason, p.listing_ids "
            "FROM keying_results k JOIN places p ON p.id = k.place_id"))
        for row in rows:
            o = place_override(_listing_ids(row["listing_ids"]), overrides)
            if o is None or o.verdict != "registered_under" or not o.register_number:
                continue
            unit = find_unit(db, o.register_number, row["snapshot_id"])
            unit_id = unit["unit_id"] if unit else o.register_number
            reason = (f"registered under {o.register_number} according to {o.reviewer} "
                      f"({o.reviewed_at})")
            if unit is None:
                reason += "; that number is not in this register snapshot"
            if (row["outcome"], row["unit_id"], row["reason"]) == ("match", unit_id, reason):
                continue
            db.conn.execute("UPDATE keying_results SET outcome = 'match', unit_id = ?, "
                            "reason = ? WHERE place_id = ?", (unit_id, reason, row["place_id"]))
            changed += 1
    return changed


@dataclass
class ReviewLabels:
    """What verdicts teach keying, keyed by the current run's place ids. Same fields as
    `horeca.keying.engine.Labels`: `Labels(r.pairs, r.registered_under, frozenset(r.absent))`.

    * registered_under N -> `registered_under[place] = unit id` (a forced match);
    * confirmed on a match -> `pairs[(place, unit)] = 1`; on a doubt or no-match (the
      inspector found it is not in the register) -> `absent`;
    * false_positive on a match (the unit is not this business) -> `pairs[(place, unit)] = 0`;
    * closed, false_positive on a doubt or no-match, not_visited -> nothing to learn.
    """

    pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    registered_under: dict[str, str] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)


def review_labels(db: sqlite_utils.Database,
                  places: Iterable[tuple[str, Sequence[str]]]) -> ReviewLabels:
    """Labels for the places of a keying run, given as (place id, member listing ids)."""
    overrides = verdict_overrides(db)
    labels = ReviewLabels()
    if not overrides:
        return labels
    for place_id, listing_ids in places:
        o = place_override(tuple(listing_ids), overrides)
        if o is None:
            continue
        if o.verdict == "registered_under" and o.register_number:
            unit = find_unit(db, o.register_number)
            labels.registered_under[place_id] = unit["unit_id"] if unit else o.register_number
        elif o.verdict == "confirmed" and o.outcome == "match" and o.unit_id:
            labels.pairs[(place_id, o.unit_id)] = 1
        elif o.verdict == "confirmed" and o.outcome in ("doubt", "no-match"):
            labels.absent.add(place_id)
        elif o.verdict == "false_positive" and o.outcome == "match" and o.unit_id:
            labels.pairs[(place_id, o.unit_id)] = 0
    return labels
