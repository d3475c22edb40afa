"""Opening the database: path resolution, connection set-up, clear errors."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from horeca.errors import UserError
from horeca.store.schema import SCHEMA_VERSION, migrate

DEFAULT_DB = "horeca.db"
ENV_DB = "HORECA_DB"
BUSY_TIMEOUT_S = 5.0

T = TypeVar("T")


class SavepointConnection(sqlite3.Connection):
    """A connection whose `with conn:` blocks nest as savepoints.

    sqlite-utils wraps each write in `with db.conn:`; with the stock connection, leaving
    that block commits everything so far, which would break an outer transaction. Here
    the outermost block is the transaction and inner blocks are savepoints that roll back
    on their own error.

    The outermost block begins with BEGIN IMMEDIATE, taking the write lock at once: a
    transaction that first reads and then writes cannot wait for another writer in WAL
    mode (SQLite fails it with "database is locked" as soon as anything was committed
    since its read), whereas waiting for the lock up front honours the busy timeout.
    Parallel crawls and the parent process write to one store at the same time.
    """

    _began: list[bool]

    def __enter__(self) -> SavepointConnection:  # type: ignore[override]
        began = getattr(self, "_began", None)
        if began is None:
            began = self._began = []
        if not began and not self.in_transaction:
            self.execute("BEGIN IMMEDIATE")
            began.append(True)
        else:
            self.execute(f"SAVEPOINT horeca_sp{len(began)}")
            began.append(False)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:  # type: ignore[override]
        began = self._began.pop()
        if began:
            self.execute("COMMIT" if exc_type is None else "ROLLBACK")
            return False
        name = f"horeca_sp{len(self._began)}"
        if exc_type is None:
            self.execute(f"RELEASE {name}")
        else:
            self.execute(f"ROLLBACK TO {name}")
            self.execute(f"RELEASE {name}")
        return False


def resolve_db_path(db: str | Path | None = None) -> Path:
    """`--db` wins, then $HORECA_DB, then ./horeca.db."""
    return Path(db or os.environ.get(ENV_DB) or DEFAULT_DB)


def db_file(db: sqlite_utils.Database) -> str | None:
    """The file of an open store (None for one in memory): what another process opens to
    read the same store."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row and row[2] else None


def _is_locked(err: sqlite3.OperationalError) -> bool:
    return "locked" in str(err) or "busy" in str(err)


def open_db(db: str | Path | None = None, *, create: bool = True) -> sqlite_utils.Database:
    """Open (and if needed create and migrate) the store.

    Raises `UserError` for a missing directory, an unwritable path, a database written by
    a newer horeca, a file that is not a database, or a database locked by another process.
    """
    path = resolve_db_path(db)
    if not path.parent.exists():
        raise UserError("the folder for the database does not exist", path=path,
                        fix=f"create {path.parent} or pass --db with another path")
    if not path.exists() and not create:
        raise UserError("no database here yet", path=path,
                        fix="run a step that creates it (e.g. `horeca register import`) "
                            "or pass --db")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError("the database is not writable", path=path,
                        fix="change its permissions or pass --db with another path")
    if not path.exists() and not os.access(path.parent, os.W_OK):
        raise UserError("cannot create the database: the folder is not writable", path=path,
                        fix="pass --db with a writable path")
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               factory=SavepointConnection, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            conn.close()
            raise UserError(
                f"the database has schema version {version}, newer than this horeca "
                f"understands ({SCHEMA_VERSION})", path=path,
                fix="upgrade horeca, or use another --db")
        db_ = sqlite_utils.Database(conn)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        if version < SCHEMA_VERSION:
            migrate(db_, version)
        return db_
    except sqlite3.DatabaseError as err:
        if isinstance(err, sqlite3.OperationalError) and _is_locked(err):
            raise UserError("the database is locked by another process", path=path,
                            fix="wait for the other horeca command to finish, then retry") from None
        if "not a database" in str(err) or "malformed" in str(err):
            raise UserError("this file is not a horeca SQLite database", path=path,
                            fix="pass --db with another path") from None
        # What permission bits cannot tell beforehand (root, read-only mounts, /proc):
        if "unable to open" in str(err) or "readonly" in str(err):
            raise UserError(f"cannot open the database for writing ({err})", path=path,
                            fix="pass --db with a path on a writable disk") from None
        raise


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """All writes inside commit together or not at all; nested blocks are savepoints."""
    with db.conn:
        yield db


def upsert(db: sqlite_utils.Database, table: str, rows: Sequence[Any], *,
           key: str | tuple[str, ...], keep: tuple[str, ...] = (),
           columns: Sequence[str] | None = None) -> int:
    """Insert rows, or update them in place when their natural key exists.

    Columns named in `keep` are written on insert but never overwritten (e.g. `first_seen`).
    All rows must have the same keys. Uses `INSERT ... ON CONFLICT DO UPDATE`, so NOT NULL
    columns and defaults behave as on a plain insert. Returns the number of rows given.
    With `columns`, rows are tuples of values in that order (bulk writers that build
    tuples anyway save a dict per row).
    """
    if not rows:
        return 0
    names = list(columns) if columns is not None else list(rows[0])
    keys = (key,) if isinstance(key, str) else tuple(key)
    updates = [c for c in names if c not in keys and c not in keep]
    quoted = ", ".join(f"[{c}]" for c in names)
    placeholders = ", ".join("?" for _ in names)
    conflict = ", ".join(f"[{k}]" for k in keys)
    action = ("DO UPDATE SET " + ", ".join(f"[{c}] = excluded.[{c}]" for c in updates)
              if updates else "DO NOTHING")
    values = rows if columns is not None else list(map(_row_values(names), rows))
    # Many rows per statement: SQLite then steps once per batch instead of once per row,
    # about a third less time for a bulk write. Rows with one key in a batch are applied
    # in order, as one statement per row would (the later one updates the earlier).
    per = max(1, MAX_PARAMS // len(names))
    full = len(values) // per * per if len(values) >= 2 * per else 0
    with db.conn:
        if full:
            batch_sql = (f"INSERT INTO [{table}] ({quoted}) VALUES "
                         + ", ".join([f"({placeholders})"] * per)
                         + f" ON CONFLICT ({conflict}) {action}")
            db.conn.executemany(batch_sql, (tuple(chain.from_iterable(values[i:i + per]))
                                            for i in range(0, full, per)))
        sql = (f"INSERT INTO [{table}] ({quoted}) VALUES ({placeholders}) "
               f"ON CONFLICT ({conflict}) {action}")
        db.conn.executemany(sql, values[full:])
    return len(rows)


def insert_rows(db: sqlite_utils.Database, table: str,
                rows: Sequence[Mapping[str, Any]]) -> int:
    """Plain INSERT of rows that all have the same keys, in one statement (no type
    conversion, no upsert: for tables the caller has just emptied). Returns the count."""
    if not rows:
        return 0
    columns = list(rows[0])
    sql = (f"INSERT INTO [{table}] ({', '.join(f'[{c}]' for c in columns)}) "
           f"VALUES ({', '.join('?' for _ in columns)})")
    with db.conn:
        db.conn.executemany(sql, map(_row_values(columns), rows))
    return len(rows)


def _row_values(columns: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A row's values in `columns` order; itemgetter builds each tuple in C, which is a
    sizeable share of a bulk write's time."""
    if len(columns) == 1:
        only = columns[0]
        return lambda row: (row[only],)
    return itemgetter(*columns)


# Older SQLite builds cap host parameters at 999 per statement, so IN (...) lists of
# arbitrary length are sent in slices of this size, and bulk writes bind at most
# MAX_PARAMS values per statement.
IN_LIST_BATCH = 500
MAX_PARAMS = 999


def param_batches(values: Sequence[T], size: int = IN_LIST_BATCH) -> Iterator[Sequence[T]]:
    """Slices of `values` small enough for one `IN (?, ?, ...)` list each."""
    for start in range(0, len(values), size):
        yield values[start:start + size]
