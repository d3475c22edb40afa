"""Retention: delete listings kept longer than their source allows, and what derives from them.

A listing expires when its `last_seen` (or `first_seen` if it was never re-seen) is older
than its source's `retention_days`; a listing with neither date is expired too, since
nothing shows it is recent. A source that is no longer configured gets the `[defaults]`
retention. Deleted with each expired listing:

* its geocode (`entity_geocodes` row of kind "listing");
* every consolidated place containing it, and that place's keying result: a place built
  from a deleted listing would keep its data alive. The next `horeca key` re-consolidates
  the listings that remain.

Kept: the geocoder's query cache (`geocodes`: addresses and coordinates, no link to a
listing), crawl reports (counts only), inspectors' verdicts (the authority's own case
records, under the inspection file's retention, not the source's), and the audit log.

A dry run counts the same rows and writes nothing, not even an audit entry (it changes no
data; the `runs` table still records that it was run). A real purge writes one audit
entry per source, also when nothing expired, so the log shows every purge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from horeca.legal_gate import audit
from horeca.legal_gate.config import SourcesConfig
from horeca.store import transaction


@dataclass
class PurgeCounts:
    source: str
    retention_days: int
    cutoff: str
    listings: int = 0
    entity_geocodes: int = 0
    places: int = 0
    keying_results: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def cutoff_iso(retention_days: int, now: datetime | None = None) -> str:
    """Timestamps before this are expired (same text format as `store.runs.now_iso`)."""
    now = now or datetime.now(UTC)
    return (now - timedelta(days=retention_days)).isoformat(timespec="seconds")


_EXPIRED = ("source = ? AND (COALESCE(last_seen, first_seen) IS NULL "
            "OR COALESCE(last_seen, first_seen) < ?)")


def _count(db: sqlite_utils.Database, sql: str, params: tuple = ()) -> int:
    return int(db.execute(sql, params).fetchone()[0])


def _purge_source(db: sqlite_utils.Database, counts: PurgeCounts, dry_run: bool) -> None:
    conn = db.conn
    conn.execute("DROP TABLE IF EXISTS temp.purge_listings")
    conn.execute("DROP TABLE IF EXISTS temp.purge_places")
    conn.execute("CREATE TEMP TABLE purge_listings (id TEXT PRIMARY KEY)")
    conn.execute(f"INSERT INTO purge_listings SELECT id FROM listings WHERE {_EXPIRED}",
                 (counts.source, counts.cutoff))
    conn.execute("CREATE TEMP TABLE purge_places (id TEXT PRIMARY KEY)")
    conn.execute(
        "INSERT OR IGNORE INTO purge_places SELECT p.id FROM places p, json_each(p.listing_ids) j"
        " WHERE json_valid(p.listing_ids) AND j.value IN (SELECT id FROM purge_listings)")
    counts.listings = _count(db, "SELECT count(*) FROM purge_listings")
    counts.entity_geocodes = _count(
        db, "SELECT count(*) FROM entity_geocodes WHERE entity_kind = 'listing' "
            "AND entity_id IN (SELECT id FROM purge_listings)")
    counts.places = _count(db, "SELECT count(*) FROM purge_places")
    counts.keying_results = _count(
        db, "SELECT count(*) FROM keying_results WHERE place_id IN (SELECT id FROM purge_places)")
    if not dry_run:
        conn.execute("DELETE FROM keying_results WHERE place_id IN "
                     "(SELECT id FROM purge_places)")
        conn.execute("DELETE FROM places WHERE id IN (SELECT id FROM purge_places)")
        conn.execute("DELETE FROM entity_geocodes WHERE entity_kind = 'listing' "
                     "AND entity_id IN (SELECT id FROM purge_listings)")
        conn.execute("DELETE FROM listings WHERE id IN (SELECT id FROM purge_listings)")
    conn.execute("DROP TABLE temp.purge_listings")
    conn.execute("DROP TABLE temp.purge_places")


def purge(db: sqlite_utils.Database, sources: SourcesConfig, dry_run: bool = False, *,
          actor: str | None = None, purpose: str | None = None,
          now: datetime | None = None) -> list[PurgeCounts]:
    """Delete (or with `dry_run` only count) expired listings and what derives from them.

    One transaction: either every source is purged or none. Returns counts per source.
    """
    names = list(sources.names())
    names += [row["source"] for row in db.query(
        "SELECT DISTINCT source FROM listings WHERE source IS NOT NULL ORDER BY source")
        if row["source"] not in sources.sources]
    results: list[PurgeCounts] = []
    with transaction(db):
        for name in names:
            days = sources.retention_days_for(name)
            counts = PurgeCounts(name, days, cutoff_iso(days, now))
            _purge_source(db, counts, dry_run)
            results.append(counts)
            if not dry_run:
                audit.record(db, "purge", actor=actor, source=name, target="listings",
                             rows=counts.listings, purpose=purpose,
                             details={k: v for k, v in counts.as_dict().items()
                                      if k not in ("source", "listings")})
    return results
