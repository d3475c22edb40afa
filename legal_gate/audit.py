"""Append-only, tamper-evident audit log.

Each entry stores the SHA-256 of its own canonical content together with the hash of the
entry before it, so editing or deleting any entry breaks the chain from that point on;
`verify` finds the first break. Triggers in the schema also refuse UPDATE and DELETE.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from horeca.store.runs import now_iso, os_user

GENESIS = "0" * 64
ACTIONS = frozenset({
    "crawl", "crawl_refused", "import", "register_import", "geocode", "key", "export",
    "reveal", "approve", "suspend", "purge", "review_import", "listings_import",
})
_FIELDS = ("ts", "actor", "action", "source", "target", "rows", "purpose", "details")


def _entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    canonical = json.dumps([prev_hash, *[entry.get(f) for f in _FIELDS]], sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(db: sqlite_utils.Database, action: str, *, actor: str | None = None,
           source: str | None = None, target: str | None = None, rows: int | None = None,
           purpose: str | None = None, details: dict[str, Any] | None = None) -> int:
    """Append one entry and return its id. Runs inside the caller's transaction if any."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = {
        "ts": now_iso(), "actor": actor or os_user(), "action": action, "source": source,
        "target": target, "rows": rows, "purpose": purpose,
        "details": json.dumps(details or {}, sort_keys=True, default=str),
    }
    with db.conn:
        last = db.conn.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        prev = last[0] if last else GENESIS
        cur = db.conn.execute(
            "INSERT INTO audit_log (ts, actor, action, source, target, rows, purpose, details,"
            " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (*[entry[f] for f in _FIELDS], prev, _entry_hash(prev, entry)),
        )
    return int(cur.lastrowid)


@dataclass(frozen=True)
class Break:
    entry_id: int
    problem: str


def verify(db: sqlite_utils.Database) -> Break | None:
    """Walk the chain; return the first entry that was edited, deleted or inserted, or None."""
    prev = GENESIS
    expected_id: int | None = None
    for row in db.query("SELECT * FROM audit_log ORDER BY id"):
        if expected_id is not None and row["id"] != expected_id:
            return Break(expected_id, f"entries {expected_id}..{row['id'] - 1} are missing")
        if row["prev_hash"] != prev:
            return Break(row["id"], "the entry before it was changed or removed")
        if _entry_hash(prev, row) != row["hash"]:
            return Break(row["id"], "its content was changed after it was written")
        prev = row["hash"]
        expected_id = row["id"] + 1
    return None


MIN_ANCHOR_CHARS = 16


def check_anchor(db: sqlite_utils.Database, anchor: str) -> Break | None:
    """Whether the entry whose hash starts with `anchor` is still in the log.

    A chain cannot show that its newest entries were cut off; a head hash kept outside
    the database (an anchor) can: if the log was truncated or replaced, that hash is gone.
    Run it after `verify`, which guarantees everything up to the head is unchanged.
    """
    anchor = anchor.strip().lower()
    row = db.conn.execute("SELECT id FROM audit_log WHERE hash LIKE ? || '%' ORDER BY id LIMIT 1",
                          (anchor,)).fetchone()
    if row is None:
        last = db.conn.execute("SELECT max(id) FROM audit_log").fetchone()[0] or 0
        return Break(last + 1, f"the anchored entry {anchor[:MIN_ANCHOR_CHARS]} is gone: the "
                               "log was cut back or replaced after that head was noted")
    return None


def head(db: sqlite_utils.Database) -> tuple[int, str | None]:
    """(number of entries, hash of the newest entry) — the value to keep as an anchor."""
    count, newest = db.conn.execute(
        "SELECT count(*), (SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1) FROM audit_log"
    ).fetchone()
    return int(count), newest


def entries(db: sqlite_utils.Database, *, limit: int = 20, action: str | None = None,
            source: str | None = None) -> list[dict[str, Any]]:
    """The newest entries first, optionally only one action and/or source (for `audit show`)."""
    where, params = [], []
    if action:
        where.append("action = ?")
        params.append(action)
    if source:
        where.append("source = ?")
        params.append(source)
    sql = "SELECT * FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    return list(db.query(sql, [*params, limit]))
