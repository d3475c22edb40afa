"""Register snapshots: one `active` per region, replaced atomically.

Lifecycle of an import:
1. `begin_snapshot` adds a row with status `building` (committed at once, so a crash
   leaves a trace);
2. `write_units` appends units in batches, each batch its own short transaction, so
   memory and the write-ahead log stay small while the old snapshot is still `active`
   and readable by other commands;
3. `activate_snapshot` flips the new snapshot to `active` and the old one to
   `superseded` in ONE transaction, together with the audit entry;
4. `drop_units` then removes the superseded snapshot's units in batches.
If anything fails before step 3, `fail_snapshot` marks the new snapshot `failed` and
removes its units; the old active snapshot was never touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import sqlite_utils

from horeca.legal_gate import audit
from horeca.register.units import UNIT_COLUMNS
from horeca.store import transaction
from horeca.store.runs import now_iso

WRITE_BATCH = 5_000
DELETE_BATCH = 50_000
_INSERT = (f"INSERT INTO register_units (snapshot_id, {', '.join(UNIT_COLUMNS)}) "
           f"VALUES ({', '.join('?' * (len(UNIT_COLUMNS) + 1))})")


def begin_snapshot(db: sqlite_utils.Database, *, region: str, fmt: str,
                   source_path: str, sources: list[str], extract_type: str | None,
                   snapshot_date: str | None, extract_number: str | None,
                   filters: dict[str, Any], fingerprint: str, run_id: int | None) -> int:
    with transaction(db):
        cur = db.conn.execute(
            "INSERT INTO register_snapshots (region, format, source_path, snapshot_date, "
            "extract_number, imported_at, run_id, status, extract_type, sources, filters, "
            "fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (region, fmt, source_path, snapshot_date, extract_number, now_iso(), run_id,
             "building", extract_type, json.dumps(sources), json.dumps(filters, sort_keys=True),
             fingerprint))
    return int(cur.lastrowid)


def _batches(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_units(db: sqlite_utils.Database, snapshot_id: int, rows: Iterable[tuple],
                batch_size: int | None = None) -> int:
    """Append unit rows (tuples in UNIT_COLUMNS order); returns how many were written."""
    written = 0
    conn = db.conn
    # For the length of the import: fewer WAL checkpoints, and the postcode index's pages
    # kept in memory (a national snapshot has ~2 M rows); both restored afterwards.
    saved = {p: conn.execute(f"PRAGMA {p}").fetchone()[0]
             for p in ("wal_autocheckpoint", "cache_size")}
    conn.execute("PRAGMA wal_autocheckpoint = 25000")
    conn.execute("PRAGMA cache_size = -65536")
    try:
        for batch in _batches(rows, batch_size or WRITE_BATCH):
            with transaction(db):
                conn.executemany(_INSERT, [(snapshot_id, *row) for row in batch])
            written += len(batch)
    finally:
        for pragma, value in saved.items():
            conn.execute(f"PRAGMA {pragma} = {int(value)}")
    return written


def activate_snapshot(db: sqlite_utils.Database, snapshot_id: int, *, region: str,
                      counts: dict[str, Any], actor: str | None, purpose: str | None,
                      audit_details: dict[str, Any]) -> list[int]:
    """Make `snapshot_id` the region's active snapshot; returns the superseded ids."""
    with transaction(db):
        old = [row[0] for row in db.conn.execute(
            "SELECT id FROM register_snapshots WHERE region = ? AND status = 'active' "
            "AND id != ?", (region, snapshot_id))]
        db.conn.execute(
            "UPDATE register_snapshots SET status = 'superseded' WHERE region = ? "
            "AND status = 'active' AND id != ?", (region, snapshot_id))
        db.conn.execute(
            "UPDATE register_snapshots SET status = 'active', counts = ? WHERE id = ?",
            (json.dumps(counts, sort_keys=True, default=str), snapshot_id))
        audit.record(db, "register_import", actor=actor, source=audit_details.get("source"),
                     target=f"register_snapshots:{snapshot_id}", rows=counts.get("units"),
                     purpose=purpose,
                     details={**audit_details, "region": region, "snapshot_id": snapshot_id,
                              "superseded": old})
    return old


def drop_units(db: sqlite_utils.Database, snapshot_id: int) -> int:
    """Delete a snapshot's units in batches (a national snapshot has ~1.7 M rows)."""
    removed = 0
    while True:
        with transaction(db):
            cur = db.conn.execute(
                "DELETE FROM register_units WHERE rowid IN (SELECT rowid FROM register_units "
                "WHERE snapshot_id = ? LIMIT ?)", (snapshot_id, DELETE_BATCH))
        removed += cur.rowcount
        if cur.rowcount < DELETE_BATCH:
            return removed


def fail_snapshot(db: sqlite_utils.Database, snapshot_id: int, error: str) -> None:
    """Mark a snapshot that did not complete and remove its partial units."""
    with transaction(db):
        db.conn.execute(
            "UPDATE register_snapshots SET status = 'failed', error = ? WHERE id = ? "
            "AND status = 'building'", (error[:2000], snapshot_id))
    drop_units(db, snapshot_id)


def clear_leftovers(db: sqlite_utils.Database, region: str) -> list[int]:
    """Units of earlier imports of `region` that never finished (killed process) or were
    superseded but not yet emptied: remove them before building a new snapshot."""
    ids = [row[0] for row in db.conn.execute(
        "SELECT id FROM register_snapshots WHERE region = ? AND status IN "
        "('building', 'failed', 'superseded')", (region,))]
    for snapshot_id in ids:
        with transaction(db):
            db.conn.execute(
                "UPDATE register_snapshots SET status = 'failed', "
                "error = coalesce(error, 'interrupted before completion') "
                "WHERE id = ? AND status = 'building'", (snapshot_id,))
        drop_units(db, snapshot_id)
    return ids


def active_snapshot(db: sqlite_utils.Database, region: str) -> dict[str, Any] | None:
    """The region's active snapshot row, with JSON columns decoded, or None."""
    rows = list(db.query(
        "SELECT * FROM register_snapshots WHERE region = ? AND status = 'active' "
        "ORDER BY id DESC LIMIT 1", [region]))
    return _decoded(rows[0]) if rows else None


def list_snapshots(db: sqlite_utils.Database, region: str | None = None,
                   include_history: bool = False) -> list[dict[str, Any]]:
    where, params = [], []
    if region:
        where.append("region = ?")
        params.append(region)
    if not include_history:
        where.append("status IN ('active', 'building')")
    sql = "SELECT * FROM register_snapshots"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [_decoded(r) for r in db.query(sql + " ORDER BY region, id DESC", params)]


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    for column in ("counts", "sources", "filters"):
        if row.get(column):
            row[column] = json.loads(row[column])
    return row


def iter_units(db: sqlite_utils.Database, snapshot_id: int,
               horeca_only: bool = False) -> Iterator[dict[str, Any]]:
    """Units of a snapshot with the JSON columns decoded (names, phones, nace, ...)."""
    sql = "SELECT * FROM register_units WHERE snapshot_id = ?"
    if horeca_only:
        sql += " AND horeca = 1"
    for row in db.query(sql + " ORDER BY unit_id", [snapshot_id]):
        for column in ("names", "phones", "websites", "emails", "nace"):
            row[column] = json.loads(row[column]) if row.get(column) else []
        yield row
