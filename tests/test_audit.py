"""The audit log is append-only and tamper-evident."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from horeca.cli import app
from horeca.legal_gate import audit
from horeca.store import open_db

RUNNER = CliRunner()


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
    # The known limit of a hash chain: truncating the tail leaves a valid chain.
    db = _db_with_entries(tmp_path)
    _without_triggers(db)
    db.conn.execute("DELETE FROM audit_log WHERE id = 3")
    assert audit.verify(db) is None


def test_a_head_hash_kept_outside_reveals_a_cut_tail(tmp_path: Path) -> None:
    db = _db_with_entries(tmp_path)
    _, anchored_head = audit.head(db)
    assert anchored_head is not None
    assert audit.check_anchor(db, anchored_head[:16]) is None
    audit.record(db, "export", actor="tester", rows=1, purpose="test")
    assert audit.check_anchor(db, anchored_head) is None  # later entries are fine
    _without_triggers(db)
    db.conn.execute("DELETE FROM audit_log WHERE id >= 3")
    assert audit.verify(db) is None
    found = audit.check_anchor(db, anchored_head)
    assert found is not None and "gone" in found.problem


def test_audit_verify_command_checks_the_anchor(tmp_path: Path) -> None:
    db = _db_with_entries(tmp_path)
    _, anchored_head = audit.head(db)
    assert anchored_head is not None
    args = ["--db", str(tmp_path / "h.db"), "audit", "verify"]
    ok = RUNNER.invoke(app, [*args, "--anchor", anchored_head])
    assert ok.exit_code == 0 and f"head {anchored_head}" in ok.output
    _without_triggers(db)
    db.conn.execute("DELETE FROM audit_log WHERE id = 3")
    db.conn.commit()
    cut = RUNNER.invoke(app, [*args, "--anchor", anchored_head[:20]])
    assert cut.exit_code == 1 and "gone" in cut.output
    bad = RUNNER.invoke(app, [*args, "--anchor", "xyz"])
    assert bad.exit_code == 2 and "not a head hash" in bad.output


def test_unknown_action_is_refused(tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    with pytest.raises(ValueError):
        audit.record(db, "teleport")
