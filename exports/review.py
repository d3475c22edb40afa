"""`horeca review import`: read a filled CSV or XLSX export back, validate, store verdicts.

Every row is checked before anything is written: an unknown verdict, `registered_under`
without a valid enterprise or establishment number, a place id that is neither in the
store nor traceable through its listing ids, an unreadable date. With problems, nothing is
stored (unless `skip_invalid`, which stores the valid rows and reports the others).

A verdict's natural key is (place, reviewer, reviewed_at): importing the same file again
adds nothing, and a corrected file updates the verdicts it changes. `reviewed_at` is the
`reviewed_on` cell, or the export's own `exported_at` when the inspector left it empty.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from horeca.errors import UserError
from horeca.exports.pseudonyms import pseudonym, pseudonym_key
from horeca.exports.safety import strip_neutralising_quote
from horeca.exports.verdicts import (
    VERDICTS,
    apply_verdicts,
    format_register_number,
    parse_register_number,
)
from horeca.exports.writers import XLSX_SHEET
from horeca.legal_gate import audit
from horeca.store import transaction, upsert
from horeca.store.runs import now_iso

REQUIRED = ("place_id", "verdict")
_VERDICT_ALIASES = {"registered": "registered_under", "false_pos": "false_positive",
                    "fp": "false_positive", "not_seen": "not_visited"}
_DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d")


@dataclass(frozen=True)
class Problem:
    line: int
    message: str
    fix: str

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.message} (fix: {self.fix})"


@dataclass
class ReviewSummary:
    file: str
    reviewer: str
    rows_read: int = 0
    with_verdict: int = 0
    without_verdict: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    skipped_invalid: int = 0
    problems: list[Problem] = field(default_factory=list)
    keying_results_changed: int = 0
    audit_id: int | None = None


class ReviewImportError(UserError):
    """Invalid rows; `problems` lists every one (the message names the first)."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        more = (f"; {len(problems) - 1} more row(s) have problems" if len(problems) > 1
                else "")
        super().__init__(first.message + more, path=path, line=first.line,
                         fix=first.fix + ("; nothing was stored (--skip-invalid stores the "
                                          "valid rows)"))


# --- reading ---------------------------------------------------------------------------

def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return strip_neutralising_quote(str(value).strip())


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel's plain "CSV" (not "CSV UTF-8") saves in the Windows code page.
        return data.decode("cp1252", errors="replace")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    text = _decode(path)
    first_line = text.split("\n", 1)[0]
    # Excel in a Belgian locale saves with ';'; pick the separator the header uses most.
    delimiter = max([",", ";", "\t"], key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    for record in reader:
        if header is None:
            header = [h.strip().lower() for h in record]
            yield 1, {"__header__": "\x00".join(header)}
            continue
        if not any(v.strip() for v in record):
            continue
        yield reader.line_num, {h: _cell(v) for h, v in zip(header, record, strict=False)}


def _xlsx_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for a damaged file
        raise UserError(f"cannot read this XLSX file ({type(err).__name__})", path=path,
                        fix="open it in a spreadsheet and save it again as .xlsx") from None
    try:
        ws = wb[XLSX_SHEET] if XLSX_SHEET in wb.sheetnames else wb.worksheets[0]
        header: list[str] | None = None
        for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
            if header is None:
                header = [_cell(h).lower() for h in values]
                yield 1, {"__header__": "\x00".join(header)}
                continue
            if not any(_cell(v) for v in values):
                continue
            yield number, {h: _cell(v) for h, v in zip(header, values, strict=False) if h}
    finally:
        wb.close()


def read_review_file(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line or sheet row number, {column: text}) for each non-empty row after the header."""
    if not path.exists():
        raise UserError("review file not found", path=path, fix="check the file name")
    suffix = path.suffix.lower()
    rows = _xlsx_rows(path) if suffix == ".xlsx" else _csv_rows(path) if suffix in (
        ".csv", ".txt") else None
    if rows is None:
        raise UserError(f"cannot import {suffix or 'this'} files", path=path,
                        fix="import the filled .csv or .xlsx export")
    first = next(rows, None)
    header = first[1]["__header__"].split("\x00") if first else []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UserError("missing column(s) " + ", ".join(missing), path=path, line=1,
                        fix="import a file exported by `horeca export` (keep its header row)")
    yield from rows


# --- validating ------------------------------------------------------------------------

def normalise_verdict(text: str) -> str | None:
    """'Registered under' -> 'registered_under'; None for an unknown verdict."""
    key = re.sub(r"[\s-]+", "_", text.strip().lower())
    key = _VERDICT_ALIASES.get(key, key)
    return key if key in VERDICTS else None


def parse_review_date(text: str) -> str | None:
    """YYYY-MM-DD from ISO or day-first dates (2/10/2026, 02-10-2026, 02.10.2026); an ISO
    timestamp (an export's `exported_at`) is kept as it is; None if unreadable."""
    text = text.strip()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return None


class _Resolver:
    """Maps a row's place id / listing ids / unit (real or pseudonymised) to the store."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.key = pseudonym_key(db)
        self.places: dict[str, list[str]] = {}
        self.listing_place: dict[str, str] = {}
        self.alias: dict[str, str] = {}          # pseudonym -> real id (places, listings)
        self.results = {r["place_id"]: (r["outcome"], r["unit_id"]) for r in db.query(
            "SELECT place_id, outcome, unit_id FROM keying_results")}
        self._unit_alias: dict[str, str] | None = None
        for row in db.query("SELECT id, listing_ids FROM places"):
            ids = [str(x) for x in json.loads(row["listing_ids"] or "[]")]
            self.places[row["id"]] = ids
            self.alias[pseudonym(self.key, "place", row["id"]) or ""] = row["id"]
            for lid in ids:
                self.listing_place[lid] = row["id"]
        for (lid,) in db.execute("SELECT id FROM listings"):
            self.alias[pseudonym(self.key, "listing", lid) or ""] = lid

    def unit(self, cell: str) -> str | None:
        """A register unit id from an export cell; only natural persons' are pseudonymised."""
        if not cell.startswith("unit-"):
            return cell or None
        if self._unit_alias is None:
            self._unit_alias = {pseudonym(self.key, "unit", u) or "": u for (u,) in
                                self.db.execute("SELECT DISTINCT unit_id FROM register_units "
                                                "WHERE natural_person = 1")}
        return self._unit_alias.get(cell)

    def reviewed(self, place_id: str, cells: dict[str, str]) -> tuple[str | None, str | None]:
        """The outcome and unit of the row the inspector reviewed: as the file shows them,
        else as keying has them now."""
        db_outcome, db_unit = self.results.get(place_id, (None, None))
        outcome = cells.get("outcome") if cells.get("outcome") in (
            "match", "doubt", "no-match") else db_outcome
        unit = None
        if outcome == "match":
            unit = self.unit(cells.get("register_unit", "")) or (
                db_unit if db_outcome == "match" else None)
        return outcome, unit

    def resolve(self, place_cell: str, listings_cell: str
                ) -> tuple[str | None, list[str]]:
        listing_ids = [self.alias.get(x, x) for x in
                       (s.strip() for s in re.split(r"[;,]", listings_cell)) if x]
        place = self.alias.get(place_cell, place_cell)
        if place in self.places:
            return place, listing_ids or self.places[place]
        known = [lid for lid in listing_ids if lid in self.listing_place]
        if known:
            # The place was re-keyed since the export: follow its listings.
            counts: dict[str, int] = {}
            for lid in known:
                counts[self.listing_place[lid]] = counts.get(self.listing_place[lid], 0) + 1
            return max(sorted(counts), key=counts.__getitem__), listing_ids
        return None, listing_ids


@dataclass(frozen=True)
class _Valid:
    line: int
    place_id: str
    listing_ids: list[str]
    verdict: str
    register_number: str | None
    comment: str | None
    reviewed_at: str
    outcome: str | None
    unit_id: str | None


def _validate(line: int, cells: dict[str, str], resolver: _Resolver
              ) -> _Valid | Problem | None:
    verdict_text = cells.get("verdict", "")
    if not verdict_text:
        if cells.get("register_number") or cells.get("comment"):
            return Problem(line, "a register number or comment but no verdict",
                           "choose a verdict (not_visited if you did not go)")
        return None
    verdict = normalise_verdict(verdict_text)
    if verdict is None:
        return Problem(line, f"unknown verdict {verdict_text!r}",
                       "use one of: " + ", ".join(VERDICTS))
    number: str | None = None
    if verdict == "registered_under":
        digits = parse_register_number(cells.get("register_number", ""))
        if digits is None:
            given = cells.get("register_number", "")
            return Problem(line, ("registered_under needs a register number" if not given else
                                  f"{given!r} is not a valid enterprise or establishment "
                                  "number"),
                           "write it in register_number, e.g. 0123.456.749 or "
                           "2.123.456.789 (the check digits must be right)")
        number = format_register_number(digits)
    elif cells.get("register_number"):
        return Problem(line, f"a register number with verdict {verdict!r}",
                       "use verdict registered_under, or empty register_number")
    place_cell = cells.get("place_id", "")
    place_id, listing_ids = resolver.resolve(place_cell, cells.get("listing_ids", ""))
    if place_id is None:
        return Problem(line, f"unknown place id {place_cell!r}" if place_cell
                       else "no place id",
                       "keep the place_id and listing_ids columns as exported, or import "
                       "into the database the export came from (--db)")
    reviewed_text = cells.get("reviewed_on") or cells.get("exported_at") or ""
    reviewed_at = parse_review_date(reviewed_text) if reviewed_text else None
    if reviewed_at is None:
        return Problem(line, (f"unreadable date {reviewed_text!r}" if reviewed_text
                              else "no reviewed_on date (and no exported_at column)"),
                       "write reviewed_on as YYYY-MM-DD")
    if reviewed_at[:10] > date.today().isoformat():
        return Problem(line, f"reviewed_on {reviewed_text!r} is in the future",
                       "write the day of the visit as YYYY-MM-DD")
    outcome, unit_id = resolver.reviewed(place_id, cells)
    return _Valid(line, place_id, listing_ids, verdict, number,
                  cells.get("comment") or None, reviewed_at, outcome, unit_id)


# --- storing ---------------------------------------------------------------------------

def _existing(db: sqlite_utils.Database, reviewer: str) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM verdicts WHERE reviewer = ?", [reviewer]))


def _same_verdict_key(existing: list[dict[str, Any]], v: _Valid) -> dict[str, Any] | None:
    """An earlier import of this verdict, even under an older place id (same listings)."""
    wanted = set(v.listing_ids)
    for row in existing:
        if row["reviewed_at"] != v.reviewed_at:
            continue
        if row["place_id"] == v.place_id or wanted & set(json.loads(row["listing_ids"] or "[]")):
            return row
    return None


def import_review(db: sqlite_utils.Database, path: str | Path, reviewer: str, actor: str | None,
                  purpose: str | None, *, skip_invalid: bool = False,
                  run_id: int | None = None) -> ReviewSummary:
    """Validate every row of a filled export, then store its verdicts in one transaction."""
    path = Path(path)
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise UserError("no reviewer given", path="--reviewer",
                        fix="pass --reviewer with the inspector's name")
    summary = ReviewSummary(file=str(path), reviewer=reviewer)
    resolver = _Resolver(db)
    valid: list[_Valid] = []
    seen: dict[str, _Valid] = {}
    for line, cells in read_review_file(path):
        summary.rows_read += 1
        result = _validate(line, cells, resolver)
        if result is None:
            summary.without_verdict += 1
            continue
        if isinstance(result, Problem):
            summary.problems.append(result)
            continue
        key = f"{result.place_id}\x00{result.reviewed_at}"
        if key in seen:
            earlier = seen[key]
            if (earlier.verdict, earlier.register_number, earlier.comment) != (
                    result.verdict, result.register_number, result.comment):
                summary.problems.append(Problem(
                    line, f"place {result.place_id} already has another verdict for "
                          f"{result.reviewed_at} on line {earlier.line}",
                    "keep one row per place and date"))
            continue
        seen[key] = result
        valid.append(result)
    summary.with_verdict = len(valid)
    if summary.problems and not skip_invalid:
        raise ReviewImportError(str(path), summary.problems)
    summary.skipped_invalid = len(summary.problems)

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    imported_at = now_iso()
    with transaction(db):
        existing = _existing(db, reviewer)
        rows = []
        for v in valid:
            old = _same_verdict_key(existing, v)
            place_id = old["place_id"] if old else v.place_id
            listing_ids = json.dumps(sorted(set(v.listing_ids)))
            new = {"place_id": place_id, "listing_ids": listing_ids, "verdict": v.verdict,
                   "register_number": v.register_number, "comment": v.comment,
                   "outcome": v.outcome, "unit_id": v.unit_id, "reviewer": reviewer,
                   "reviewed_at": v.reviewed_at, "file": str(path),
                   "imported_at": imported_at, "run_id": run_id}
            if old is None:
                summary.added += 1
            elif (old["verdict"], old["register_number"], old["comment"], old["listing_ids"],
                  old["outcome"], old["unit_id"]) == (v.verdict, v.register_number, v.comment,
                                                      listing_ids, v.outcome, v.unit_id):
                summary.unchanged += 1
                continue
            else:
                summary.changed += 1
            rows.append(new)
        upsert(db, "verdicts", rows, key=("place_id", "reviewer", "reviewed_at"),
               keep=("imported_at",))
        summary.audit_id = audit.record(
            db, "review_import", actor=actor, source=str(path), target="verdicts",
            rows=len(rows), purpose=purpose,
            details={"reviewer": reviewer, "sha256": digest, "added": summary.added,
                     "changed": summary.changed, "unchanged": summary.unchanged,
                     "skipped_invalid": summary.skipped_invalid})
        summary.keying_results_changed = apply_verdicts(db)
    return summary


def render_problems(summary_or_error: ReviewSummary | ReviewImportError, path: str) -> list[str]:
    return [p.render(path) for p in summary_or_error.problems]

