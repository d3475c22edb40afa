"""The store: migrations, transactions, idempotent upserts, and clear errors for bad paths."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horeca.errors import UserError
from horeca.store import (
    SCHEMA_VERSION,
    insert_rows,
    open_db,
    param_batches,
    transaction,
    upsert,
)
from horeca.store.schema import MIGRATIONS


def test_new_database_gets_current_schema_and_wal(tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for table in ("runs", "sources", "listings", "register_units", "geocodes",
                  "keying_results", "verdicts", "audit_log"):
        assert table in db.table_names()


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    open_db(path)["runs"].insert({"command": "x", "started_at": "t", "status": "ok"})
    db = open_db(path)
    assert db["runs"].count == 1


def test_forward_migration_applies_only_missing_steps(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.db"
    open_db(path)
    applied: list[str] = []

    def v_next(db) -> None:
        applied.append("next")
        db.conn.execute("CREATE TABLE extra (id INTEGER PRIMARY KEY)")

    import horeca.store.db as store_db
    import horeca.store.schema as schema
    monkeypatch.setattr(schema, "MIGRATIONS", [*MIGRATIONS, v_next])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    db = open_db(path)
    assert applied == ["next"]
    assert "extra" in db.table_names()
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_failed_migration_leaves_database_untouched(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.db"
    open_db(path)

    def broken(db) -> None:
        db.conn.execute("CREATE TABLE half (id INTEGER)")
        raise RuntimeError("boom")

    import horeca.store.db as store_db
    import horeca.store.schema as schema
    monkeypatch.setattr(schema, "MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError):
        open_db(path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "half" not in {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}


def test_upsert_on_natural_key_never_duplicates(tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    row = {"id": "s:1", "source": "s", "source_id": "1", "name": "Chez A",
           "first_seen": "2026-01-01", "last_seen": "2026-01-01"}
    for last_seen in ("2026-01-01", "2026-02-01"):
        with transaction(db):
            db["listings"].upsert({**row, "last_seen": last_seen}, pk="id")
    rows = list(db["listings"].rows)
    assert len(rows) == 1 and rows[0]["last_seen"] == "2026-02-01"


def test_store_upsert_keeps_first_seen_and_updates_the_rest(tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    base = {"id": "s:1", "source": "s", "source_id": "1", "name": "Chez A",
            "first_seen": "2026-01-01", "last_seen": "2026-01-01"}
    upsert(db, "listings", [base], key="id", keep=("first_seen",))
    upsert(db, "listings", [{**base, "name": "Chez B", "first_seen": "2026-03-01",
                             "last_seen": "2026-03-01"}], key="id", keep=("first_seen",))
    rows = list(db["listings"].rows)
    assert len(rows) == 1
    assert (rows[0]["name"], rows[0]["first_seen"], rows[0]["last_seen"]) == (
        "Chez B", "2026-01-01", "2026-03-01")


def test_store_upsert_of_tuples_in_named_columns_inserts_then_updates_in_place(
        tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    columns = ("id", "source", "source_id", "name", "first_seen", "last_seen")
    upsert(db, "listings", [("s:1", "s", "1", "Chez A", "2026-01-01", "2026-01-01"),
                            ("s:2", "s", "2", "Chez Z", "2026-01-01", "2026-01-01")],
           key="id", keep=("first_seen",), columns=columns)
    upsert(db, "listings", [("s:1", "s", "1", "Chez B", "2026-03-01", "2026-03-01")],
           key="id", keep=("first_seen",), columns=columns)
    rows = db.conn.execute("SELECT id, name, first_seen, last_seen FROM listings "
                           "ORDER BY id").fetchall()
    assert rows == [("s:1", "Chez B", "2026-01-01", "2026-03-01"),
                    ("s:2", "Chez Z", "2026-01-01", "2026-01-01")]


def test_store_upsert_in_batches_applies_rows_in_order_as_one_row_per_statement_would(
        tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")

    def row(i: int, name: str, seen: str) -> dict[str, str]:
        return {"id": f"s:{i}", "source": "s", "source_id": str(i), "name": name,
                "first_seen": seen, "last_seen": seen}

    upsert(db, "listings", [row(1, "old", "2026-01-01")], key="id", keep=("first_seen",))
    # Several batches of rows and a remainder; one key three times, in one batch and
    # across batches: the last one given wins, first_seen stays the stored one.
    rows = [row(i, f"n{i}", "2026-02-01") for i in range(1000)]
    rows[10] = row(1, "second", "2026-02-02")
    rows[990] = row(1, "last", "2026-02-03")
    rows[20] = row(7, "seven-a", "2026-02-01")
    rows[21] = row(7, "seven-b", "2026-02-01")
    assert upsert(db, "listings", rows, key="id", keep=("first_seen",)) == 1000
    stored = {r[0]: r[1:] for r in db.conn.execute(
        "SELECT id, name, first_seen, last_seen FROM listings")}
    assert len(stored) == 1000 - 4   # ids 10, 20, 21 and 990 were replaced
    assert stored["s:1"] == ("last", "2026-01-01", "2026-02-03")
    assert stored["s:7"] == ("seven-b", "2026-02-01", "2026-02-01")
    assert stored["s:999"] == ("n999", "2026-02-01", "2026-02-01")


def test_error_inside_transaction_rolls_back_sqlite_utils_writes(tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    with pytest.raises(ZeroDivisionError), transaction(db):
        db["sources"].insert_all([{"name": "a"}, {"name": "b"}])  # commits its own block
        db["sources"].upsert({"name": "c"}, pk="name")
        raise ZeroDivisionError
    assert db["sources"].count == 0


def test_nested_block_error_rolls_back_only_the_inner_block(tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    with transaction(db):
        db["sources"].insert({"name": "kept"})
        with pytest.raises(ValueError), transaction(db):
            db["sources"].insert({"name": "dropped"})
            raise ValueError
    assert [r["name"] for r in db["sources"].rows] == ["kept"]


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="folder for the database does not exist"):
        open_db(tmp_path / "nope" / "h.db")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    open_db(path)
    path.chmod(0o444)
    with pytest.raises(UserError, match="not writable"):
        open_db(path)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_place_no_one_can_write_is_a_clear_error_even_for_root() -> None:
    # /proc refuses new files whatever the permissions say, so this runs in CI as root too.
    with pytest.raises(UserError, match="cannot open the database for writing"):
        open_db("/proc/horeca-test.db")


def test_database_from_newer_horeca_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    raw.close()
    before = path.read_bytes()
    with pytest.raises(UserError, match="newer than this horeca"):
        open_db(path)
    assert path.read_bytes() == before


def test_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.write_text("hello, I am a text file" * 100)
    with pytest.raises(UserError, match="not a horeca SQLite database"):
        open_db(path)


def test_locked_database_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "h.db"
    monkeypatch.setattr("horeca.store.db.BUSY_TIMEOUT_S", 0.1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a fresh database is locked before migration
    try:
        with pytest.raises(UserError, match="locked by another process"):
            open_db(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_cli_reports_bad_db_path_in_one_line_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "horeca", "--db", str(tmp_path / "nope" / "h.db"),
         "audit", "verify"],
        capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "nope" in lines[0] and "fix:" in lines[0]


@given(st.lists(st.integers(), max_size=2000), st.integers(min_value=1, max_value=999))
def test_param_batches_cover_every_value_once_within_the_parameter_cap(
        values: list[int], size: int) -> None:
    batches = list(param_batches(values, size))
    assert [v for batch in batches for v in batch] == values
    assert all(0 < len(batch) <= size for batch in batches)


def test_read_then_write_transaction_waits_for_a_concurrent_writer(tmp_path: Path) -> None:
    # In WAL mode a deferred transaction that read before another connection committed
    # cannot write at all ("database is locked"); the store takes the write lock first.
    import threading

    path = tmp_path / "h.db"
    first, second = open_db(path), open_db(path)
    started = threading.Event()
    errors: list[BaseException] = []

    def other_writer() -> None:
        started.wait()
        try:
            with transaction(second):
                second["sources"].insert({"name": "other"})
        except BaseException as err:  # reported to the test below
            errors.append(err)

    thread = threading.Thread(target=other_writer)
    thread.start()
    with transaction(first):
        first.conn.execute("SELECT count(*) FROM sources").fetchone()
        started.set()
        thread.join(0.3)  # the other writer is waiting for our lock meanwhile
        first["sources"].insert({"name": "mine"})
    thread.join()
    assert errors == []
    assert sorted(r["name"] for r in first["sources"].rows) == ["mine", "other"]


def test_insert_rows_writes_every_row_inside_the_callers_transaction(tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    with pytest.raises(ValueError), transaction(db):
        assert insert_rows(db, "sources", [{"name": "a"}, {"name": "b"}]) == 2
        raise ValueError  # the caller's error takes the rows back with it
    assert db["sources"].count == 0
    insert_rows(db, "sources", [{"name": "a", "status": "approved"},
                                {"name": "b", "status": "pending"}])
    assert [(r["name"], r["status"]) for r in db["sources"].rows] == [
        ("a", "approved"), ("b", "pending")]
    assert insert_rows(db, "sources", []) == 0
