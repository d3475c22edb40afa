"""Keying treats only house-number geocodes as positions of the premises."""

from __future__ import annotations

from pathlib import Path

from horeca.keying.store_io import load_listings
from horeca.store import open_db, upsert


def test_centroid_geocodes_are_not_used_as_positions(tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    listings = [{"id": f"s:{i}", "source": "s", "source_id": str(i), "name": f"Chez {i}",
                 "postcode": "1000", "first_seen": "2026-11-01", "last_seen": "2026-11-01"}
                for i in (1, 2)]
    upsert(db, "listings", listings, key="id")
    upsert(db, "entity_geocodes", [
        {"entity_kind": "listing", "entity_id": "s:1", "lat": 50.85, "lon": 4.35,
         "precision": "house_number", "updated_at": "t"},
        {"entity_kind": "listing", "entity_id": "s:2", "lat": 50.84, "lon": 4.36,
         "precision": "postcode", "updated_at": "t"},
    ], key=("entity_kind", "entity_id"))
    _, geocodes = load_listings(db)
    assert set(geocodes) == {"s:1"}
