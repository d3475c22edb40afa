"""The SQLite store: one database, one schema, opened through sqlite-utils.

`open_db` applies migrations and returns a `sqlite_utils.Database`. Writes go inside
`with transaction(db):` blocks; nested blocks become savepoints, so a step either writes
everything or nothing, even when it calls sqlite-utils helpers that open their own blocks.
"""

from horeca.store.db import (
    DEFAULT_DB,
    ENV_DB,
    db_file,
    insert_rows,
    open_db,
    param_batches,
    resolve_db_path,
    transaction,
    upsert,
)
from horeca.store.fingerprint import source_fingerprint
from horeca.store.schema import SCHEMA_VERSION

__all__ = [
    "DEFAULT_DB", "ENV_DB", "SCHEMA_VERSION", "db_file", "insert_rows", "open_db", "param_batches",
    "resolve_db_path", "source_fingerprint", "transaction", "upsert",
]
