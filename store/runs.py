"""The runs table: one row per command, with who, what, when, arguments, outcome, counts."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Any

import sqlite_utils


def now_iso() -> str:
    """UTC timestamp used everywhere in the store (sortable text)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def start_run(db: sqlite_utils.Database, command: str, args: dict[str, Any], *,
              analyst: str | None = None, purpose: str | None = None) -> int:
    with db.conn:
        cur = db.conn.execute(
            "INSERT INTO runs (command, args, os_user, analyst, purpose, started_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, 'running')",
            (command, json.dumps(args, default=str, sort_keys=True), os_user(), analyst,
             purpose, now_iso()),
        )
    return int(cur.lastrowid)


def finish_run(db: sqlite_utils.Database, run_id: int, status: str,
               counts: dict[str, Any] | None = None, error: str | None = None) -> None:
    with db.conn:
        db.conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, counts = ?, error = ? WHERE id = ?",
            (now_iso(), status, json.dumps(counts or {}, default=str, sort_keys=True), error,
             run_id),
        )
