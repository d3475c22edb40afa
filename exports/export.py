"""Ranked, explained exports: the library behind `horeca export` and the run summary.

`export_places` writes one file and audits it; `build_rows` is the same without the file
(for tests and other formats); `top_targets` gives the first rows for a closing summary.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from horeca.errors import UserError
from horeca.exports.html_page import render_page
from horeca.exports.priority import DEFAULT_WEIGHTS, PriorityWeights, rank_key
from horeca.exports.pseudonyms import pseudonym_key
from horeca.exports.rows import PlaceRecord, doubt_band_of, load_places, score_records, to_row
from horeca.exports.writers import csv_bytes, write_geojson, write_xlsx
from horeca.legal_gate import audit
from horeca.store import transaction
from horeca.store.runs import now_iso

KINDS = ("no-match", "doubt", "match", "all")
FORMATS = ("csv", "xlsx", "geojson", "html")
SUFFIXES = {".csv": "csv", ".xlsx": "xlsx", ".geojson": "geojson", ".json": "geojson",
            ".html": "html", ".htm": "html"}
STDOUT = "-"
OSM_DATA = "Contains data © OpenStreetMap contributors, ODbL (openstreetmap.org/copyright)."
OSM_GEOCODING = ("Geocoding by Nominatim; © OpenStreetMap contributors, ODbL "
                 "(openstreetmap.org/copyright).")


@dataclass
class ExportSummary:
    kind: str
    fmt: str
    path: str
    rows: int
    by_outcome: dict[str, int] = field(default_factory=dict)
    pseudonymised: int = 0          # rows whose natural-person fields were replaced
    revealed: int = 0               # natural-person rows written in clear (--reveal)
    left_out_reviewed: int = 0      # settled by a verdict and not proposed again
    without_coordinates: int = 0
    attribution: str | None = None
    exported_at: str = ""
    audit_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """One line of a run's closing summary (pseudonymised like a default export)."""

    rank: int
    place_id: str
    outcome: str
    name: str | None
    address: str
    priority: float
    priority_reason: str
    reason: str | None


def infer_format(path: str | Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise UserError(f"unknown format {fmt!r}", path="--format",
                            fix="use one of: " + ", ".join(FORMATS))
        return fmt
    if str(path) == STDOUT:
        return "csv"
    suffix = Path(str(path)).suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    raise UserError(f"cannot tell the format of {path!s}", path="--format",
                    fix="pass --format csv|xlsx|geojson|html or end the file name with it")


def _outcomes(kind: str) -> tuple[str, ...] | None:
    if kind not in KINDS:
        raise UserError(f"unknown export kind {kind!r}", path="KIND",
                        fix="use one of: " + ", ".join(KINDS))
    return None if kind == "all" else (kind,)


def ranked_records(db: sqlite_utils.Database, kind: str = "all", *,
                   weights: PriorityWeights = DEFAULT_WEIGHTS, include_reviewed: bool = False
                   ) -> tuple[list[PlaceRecord], int]:
    """Records of one kind, scored and ranked (rank 1 first); and how many settled places
    were left out."""
    outcomes = _outcomes(kind)
    if db.execute("SELECT count(*) FROM keying_results").fetchone()[0] == 0:
        raise UserError("no keying results in this database yet", path="--db",
                        fix="run `horeca key` (or `horeca run`) first, or pass the right --db")
    records = load_places(db, outcomes)
    score_records(records, doubt_band_of(db, weights), weights)
    left_out = 0
    if not include_reviewed:
        left_out = sum(r.settled for r in records)
        records = [r for r in records if not r.settled]
    records.sort(key=lambda r: rank_key(r.priority, r.outcome, r.place_id))
    for i, rec in enumerate(records, start=1):
        rec.rank = i
    return records, left_out


def build_rows(db: sqlite_utils.Database, kind: str = "all", *, reveal: bool = False,
               weights: PriorityWeights = DEFAULT_WEIGHTS, limit: int | None = None,
               include_reviewed: bool = False, exported_at: str | None = None
               ) -> tuple[list[dict[str, Any]], list[PlaceRecord], int]:
    """Flat rows in rank order (pseudonymised unless `reveal`), their records, left-out count."""
    records, left_out = ranked_records(db, kind, weights=weights,
                                       include_reviewed=include_reviewed)
    if limit is not None:
        if limit < 1:
            raise UserError(f"--limit {limit} must be at least 1", path="--limit",
                            fix="pass a positive number of rows, or leave --limit out")
        records = records[:limit]
    key = None if reveal else pseudonym_key(db)
    stamp = exported_at or now_iso()
    rows = [to_row(rec, exported_at=stamp, pseudonymise_key=key) for rec in records]
    return rows, records, left_out


def _attribution(db: sqlite_utils.Database, records: Sequence[PlaceRecord]) -> str | None:
    overpass = {r[0] for r in db.execute("SELECT name FROM sources WHERE spider = 'overpass'")}
    sources = {str(row.get("source")) for rec in records for row in rec.listings}
    osm_data = bool(sources & overpass) or any(s.lower() in {"osm", "openstreetmap"}
                                               for s in sources)
    nominatim = any("nominatim" in (rec.geocode_provider or "").lower() for rec in records)
    parts = ([OSM_DATA] if osm_data else []) + ([OSM_GEOCODING] if nominatim else [])
    return " ".join(parts) or None


def _region_bbox(db: sqlite_utils.Database) -> tuple[float, float, float, float] | None:
    from horeca.region import load_regions

    row = db.execute("SELECT region FROM listings WHERE region IS NOT NULL "
                     "GROUP BY region ORDER BY count(*) DESC LIMIT 1").fetchone()
    if not row:
        return None
    with contextlib.suppress(UserError):
        region = load_regions().get(row[0])
        return region.bbox if region else None
    return None


def _notes(summary: ExportSummary) -> list[str]:
    notes = []
    if summary.pseudonymised:
        notes.append(f"{summary.pseudonymised} rows concern natural persons (sole traders): "
                     "their names, phones and websites are pseudonyms and their address stops "
                     "at the street.")
    if summary.revealed:
        notes.append(f"{summary.revealed} rows show natural persons' data in clear (--reveal); "
                     "this export is recorded in the audit log.")
    if summary.left_out_reviewed:
        notes.append(f"{summary.left_out_reviewed} places already reviewed by an inspector are "
                     "left out (export with --include-reviewed to see them).")
    return notes


def _render(fmt: str, rows: list[dict[str, Any]], summary: ExportSummary,
            bbox: tuple[float, float, float, float] | None) -> bytes | None:
    """The file's bytes (XLSX is written by openpyxl to a path instead: returns None)."""
    title = f"horeca: {summary.kind} places"
    if fmt == "csv":
        return csv_bytes(rows)
    if fmt == "geojson":
        buf = io.StringIO()
        write_geojson(rows, buf, name=f"horeca-{summary.kind}", attribution=summary.attribution)
        return buf.getvalue().encode("utf-8")
    if fmt == "html":
        return render_page(rows, title=title, generated=summary.exported_at, bbox=bbox,
                           attribution=summary.attribution, notes=_notes(summary)
                           ).encode("utf-8")
    return None


def export_places(db: sqlite_utils.Database, kind: str, fmt: str | None, path: str | Path, *,
                  reveal: bool = False, actor: str | None, purpose: str | None,
                  limit: int | None = None, weights: PriorityWeights | None = None,
                  include_reviewed: bool = False) -> ExportSummary:
    """Write the ranked places of one kind to `path` ("-" = stdout, not for xlsx); audit it.

    The file appears only once its audit entries are committed (written to a temporary file
    beside it, then renamed inside the audit transaction).
    """
    fmt = infer_format(path, fmt)
    to_stdout = str(path) == STDOUT
    if to_stdout and fmt == "xlsx":
        raise UserError("an XLSX export cannot go to standard output", path="-o",
                        fix="give a file name ending in .xlsx")
    target = Path(str(path))
    if not to_stdout and not target.parent.exists():
        raise UserError("the folder for the export does not exist", path=target,
                        fix=f"create {target.parent} or choose another -o path")
    exported_at = now_iso()
    rows, records, left_out = build_rows(
        db, kind, reveal=reveal, weights=weights or DEFAULT_WEIGHTS, limit=limit,
        include_reviewed=include_reviewed, exported_at=exported_at)
    natural = [rec for rec in records if rec.natural_person]
    summary = ExportSummary(
        kind=kind, fmt=fmt, path="<stdout>" if to_stdout else str(target), rows=len(rows),
        by_outcome=dict(Counter(rec.outcome for rec in records)),
        pseudonymised=0 if reveal else len(natural), revealed=len(natural) if reveal else 0,
        left_out_reviewed=left_out,
        without_coordinates=sum(rec.lat is None or rec.lon is None for rec in records),
        attribution=_attribution(db, records), exported_at=exported_at)
    data = _render(fmt, rows, summary, _region_bbox(db) if fmt == "html" else None)

    tmp: Path | None = None
    if not to_stdout:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                    dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        if tmp is not None:
            if data is None:
                write_xlsx(rows, tmp, notes=_notes(summary))
            else:
                tmp.write_bytes(data)
        details = {"kind": kind, "format": fmt, "reveal": reveal, "limit": limit,
                   "include_reviewed": include_reviewed, "by_outcome": summary.by_outcome,
                   "pseudonymised_rows": summary.pseudonymised,
                   "weights": None if weights in (None, DEFAULT_WEIGHTS) else vars(weights)}
        with transaction(db):
            summary.audit_ids.append(audit.record(
                db, "export", actor=actor, target=summary.path, rows=len(rows),
                purpose=purpose, details=details))
            if reveal:
                summary.audit_ids.append(audit.record(
                    db, "reveal", actor=actor, target=summary.path, rows=len(natural),
                    purpose=purpose,
                    details={"place_ids": [rec.place_id for rec in natural], "kind": kind,
                             "format": fmt}))
            if tmp is not None:
                os.replace(tmp, target)
                tmp = None
            else:
                sys.stdout.buffer.write(data or b"")
                sys.stdout.flush()
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return summary


def top_targets(db: sqlite_utils.Database, n: int = 10, *,
                weights: PriorityWeights | None = None) -> list[Target]:
    """The `n` highest-priority places of any outcome not yet settled by a verdict,
    pseudonymised like a default export (for a run's closing summary; not audited because
    nothing leaves the terminal)."""
    if db.execute("SELECT count(*) FROM keying_results").fetchone()[0] == 0:
        return []
    rows, _, _ = build_rows(db, "all", weights=weights or DEFAULT_WEIGHTS, limit=max(n, 1))
    out = []
    for row in rows[:n]:
        street = " ".join(str(row[k]) for k in ("street", "house_number") if row.get(k))
        town = " ".join(str(row[k]) for k in ("postcode", "locality") if row.get(k))
        out.append(Target(rank=row["rank"], place_id=row["place_id"], outcome=row["outcome"],
                          name=row["name"], address=", ".join(p for p in (street, town) if p),
                          priority=row["priority"], priority_reason=row["priority_reason"],
                          reason=row["reason"]))
    return out
