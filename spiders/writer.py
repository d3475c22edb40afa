"""Writing listings to the store: batched, transactional, idempotent.

Rows are upserted on `id = "<source>:<source_id>"`: a listing seen again keeps its
`first_seen` and gets a new `last_seen`, so re-crawling never duplicates a row. Writes go
in batches (one transaction each), so an interrupted crawl keeps everything up to the
last batch and a resumed one continues from there.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils

from horeca.spiders.model import LISTING_FIELDS, STORED_FIELDS, listing_id
from horeca.store import param_batches, transaction, upsert
from horeca.store.runs import now_iso

DEFAULT_BATCH = 500
DEFAULT_MAX_SECONDS = 5.0


def to_row(item: dict[str, Any], *, region: str | None, run_id: int | None,
           seen_at: str) -> dict[str, Any]:
    """A `listings` row with every stored column (upsert needs the same keys in each row)."""
    row: dict[str, Any] = {f: item.get(f) for f in LISTING_FIELDS}
    row["alt_names"] = json.dumps(item.get("alt_names") or [], ensure_ascii=False)
    row["natural_person"] = 1 if item.get("natural_person") else 0
    row["id"] = listing_id(item["source"], item["source_id"])
    row["region"] = region
    row["first_seen"] = seen_at
    row["last_seen"] = seen_at
    row["last_run_id"] = run_id
    return {f: row.get(f) for f in STORED_FIELDS}


class ListingWriter:
    """Buffers listings and upserts them in batches; `close()` writes the rest.

    Counts `new` (ids not in the store before) and `updated` rows.
    """

    def __init__(self, db: sqlite_utils.Database, *, region: str | None = None,
                 run_id: int | None = None, batch_size: int = DEFAULT_BATCH,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self.db = db
        self.region = region
        self.run_id = run_id
        self.batch_size = max(1, batch_size)
        self.max_seconds = max_seconds
        self.seen_at = now_iso()
        self.buffer: list[dict[str, Any]] = []
        self.new = 0
        self.updated = 0
        self._last_flush = time.monotonic()

    def add(self, item: dict[str, Any]) -> None:
        self.buffer.append(to_row(item, region=self.region, run_id=self.run_id,
                                  seen_at=self.seen_at))
        if (len(self.buffer) >= self.batch_size
                or time.monotonic() - self._last_flush >= self.max_seconds):
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self.buffer:
            return
        rows, self.buffer = self.buffer, []
        ids = [r["id"] for r in rows]
        # `transaction` takes the write lock first, so a batch waits for other crawls'
        # writes instead of failing (see store.SavepointConnection).
        with transaction(self.db):
            existing = set()
            for chunk in param_batches(ids):
                marks = ",".join("?" * len(chunk))
                existing.update(r[0] for r in self.db.conn.execute(
                    f"SELECT id FROM listings WHERE id IN ({marks})", chunk))
            upsert(self.db, "listings", rows, key="id", keep=("first_seen",))
        self.new += len(set(ids) - existing)
        self.updated += len(set(ids) & existing)

    def close(self) -> None:
        self.flush()
