"""The audit log is append-only and tamper-evident."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from horeca.legal_gate import audit
from horeca.store import open_db


def _db_with_entries(tmp_path: Path, n: int = 3):
    db = open_db(tmp_path / "h.db")
    for i in range(n):
        audit.record(db, "crawl", actor="tester", source=f"s{i}", rows=i, purpose="test")
    return db


def test_untouched_chain_verifies(tmp_path: Path) -> None:
    assert audit.verify(_db_with_entries(tmp_path)) is None


def test_update_and_delete_are_refused_by_the_database(tmp_path: Path) -> None:
    db = _db_with_entries(tmp_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.conn.execute("UPDATE audit_log SET rows = 99 WHERE id = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.conn.execute("DELETE FROM audit_log WHERE id = 1")


def _without_triggers(db) -> None:
    db.conn.execute("DROP TRIGGER audit_log_no_update")
    db.conn.execute("DROP TRIGGER audit_log_no_delete")


def test_edited_entry_is_detected(tmp_path: Path) -> None:
    db = _db_with_entries(tmp_path)
    _without_triggers(db)
    db.conn.execute("UPDATE audit_log SET rows = 99 WHERE id = 2")
    found = audit.verify(db)
    assert found is not None and found.entry_id == 2


def test_deleted_entry_is_detected(tmp_path: Path) -> None:
    db = _db_with_entries(tmp_path)
    _without_triggers(db)
    db.conn.execute("DELETE FROM audit_log WHERE id = 2")
    found = audit.verify(db)
    assert found is not None and found.entry_id == 2


def test_deleted_last_entry_is_not_detectable_by_chain_alone(tmp_path: Path) -> None:
    # Documents the known limit of a hash chain: truncating the tail leaves a valid chain.
    # Only a head hash kept outside the database (an anchor) reveals it.
    db = _db_with_entries(tmp_path)
    _without_triggers(db)
    db.conn.execute("DELETE FROM audit_log WHERE id = 3")
    assert audit.verify(db) is None


def test_unknown_action_is_refused(tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    with pytest.raises(ValueError):
        audit.record(db, "teleport")
