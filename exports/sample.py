"""A small synthetic keyed store, to try the export formats and to test them.

`create_sample_store(db)` writes listings, register units, places and keying results for
nine invented places covering every case an export must handle: each outcome, a sole
trader (natural person), hostile names (a formula, a script tag), a place without
coordinates, a geocoded one, several platforms, rooms and prices. All names, numbers and
domains are made up (`.example` domains, RFC 2606).
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from horeca.store import transaction, upsert

LATEST = "2026-10-01T08:00:00+00:00"
SNAPSHOT = 1


def place_id_for(listing_ids: list[str]) -> str:
    """The id keying gives a place made of these listings."""
    from horeca.keying.consolidate import place_id

    return place_id(listing_ids)


def _listing(source: str, source_id: str, name: str, **extra: Any) -> dict[str, Any]:
    row = {"id": f"{source}:{source_id}", "source": source, "source_id": source_id,
           "url": f"http://{source}.example/{source_id}", "name": name, "alt_names": "[]",
           "street": None, "house_number": None, "box": None, "postcode": None,
           "locality": None, "phone": None, "phone_raw": None, "website": None, "lat": None,
           "lon": None, "category": "restaurant", "review_count": None, "rating": None,
           "price_range": None, "rooms": None, "natural_person": 0, "region": "brussels",
           "first_seen": "2026-06-01T08:00:00+00:00", "last_seen": LATEST}
    row.update(extra)
    return row


def _unit(unit_id: str, enterprise: str, name: str, **extra: Any) -> dict[str, Any]:
    row = {"snapshot_id": SNAPSHOT, "unit_id": unit_id, "enterprise_number": enterprise,
           "establishment_number": unit_id if unit_id.startswith("2.") else None,
           "names": json.dumps([{"name": name, "type": "commercial", "lang": "fr",
                                 "level": "establishment"}]),
           "street_fr": None, "house_number": None, "postcode": None, "natural_person": 0,
           "horeca": 1, "declared_workers": None, "declared_turnover": None}
    row.update(extra)
    return row


LISTINGS = [
    _listing("gustoreviews", "parc", "Brasserie du Parc", street="Rue du Parc",
             house_number="12", postcode="1000", locality="Bruxelles", phone="+3225110000",
             website="brasserieduparc.example", lat=50.8466, lon=4.3621, review_count=800,
             rating=4.4, price_range="€€"),
    _listing("tablefinder", "parc-1", "Brasserie Du Parc", street="Parkstraat",
             house_number="12", postcode="1000", locality="Brussel", lat=50.8467, lon=4.3620,
             review_count=300, rating=4.2),
    _listing("gustoreviews", "frituur-jan-peeters", "Frituur Jan Peeters",
             street="Rue des Bouchers", house_number="7", box="2", postcode="1000",
             locality="Bruxelles", phone="+32470123456", phone_raw="0470 12 34 56",
             website="janpeeters.example", lat=50.84789, lon=4.35412, review_count=120,
             natural_person=1),
    _listing("gustoreviews", "formula", '=HYPERLINK("http://evil.example","x")',
             street="-Avenue Louise", house_number="@5", postcode="1050",
             locality="Ixelles", lat=50.8270, lon=4.3650, review_count=40,
             phone="+3226400000", last_seen="2026-07-03T08:00:00+00:00"),
    _listing("gustoreviews", "script", "<script>alert('x')</script> Bar",
             street="Rue Haute", house_number="100", postcode="1000", locality="Bruxelles",
             lat=50.8380, lon=4.3480, review_count=500, price_range="€€€"),
    _listing("osm", "node-42", "Café Sans Adresse", category="cafe"),
    _listing("gustoreviews", "geocoded", "\tCafé Tab", street="Chaussée de Wavre",
             house_number="200", postcode="1050", locality="Ixelles", review_count=5,
             last_seen="2026-04-01T08:00:00+00:00"),
    _listing("stayfinder", "grand", "Hôtel Grand Sablon", category="hotel",
             street="Place du Grand Sablon", house_number="1", postcode="1000",
             locality="Bruxelles", lat=50.8405, lon=4.3560, review_count=900, rating=4.6,
             rooms=40, price_range="€€€€"),
    _listing("gustoreviews", "tiny", "Snack Mini", street="Rue Neuve", house_number="3",
             postcode="1000", locality="Bruxelles", lat=50.8520, lon=4.3560, review_count=2),
]

UNITS = [
    _unit("2.100.000.015", "0200.000.142", "Brasserie du Parc", declared_workers=1,
          declared_turnover=90_000),
    _unit("2.100.000.114", "0700.000.104", "Peeters Jan", natural_person=1,
          declared_workers=0),
    _unit("2.100.000.213", "0300.000.115", "Hôtel Grand Sablon", declared_workers=35,
          declared_turnover=4_000_000),
    _unit("2.100.000.312", "0400.000.185", "Frituur De Hoek"),
    _unit("2.100.000.411", "0500.000.158", "Mini Snack"),
]

# (listing ids, outcome, unit, score, grades, candidates, reason)
PLACES: list[tuple[list[str], str, str | None, float, str, list[dict[str, Any]], str]] = [
    (["gustoreviews:parc", "tablefinder:parc-1"], "match", "2.100.000.015", 0.999,
     "name A, street A, number A, postcode A, phone A, web Z, distance A",
     [{"unit_id": "2.100.000.015", "score": 0.999,
       "grades": "name A, street A, number A, postcode A, phone A, web Z, distance A"}],
     "name, address and phone agree"),
    (["gustoreviews:frituur-jan-peeters"], "doubt", None, 0.4,
     "name B, street A, number A, postcode A, phone F, web Z, distance A",
     [{"unit_id": "2.100.000.114", "score": 0.4,
       "grades": "name B, street A, number A, postcode A, phone F, web Z, distance A"},
      {"unit_id": "2.100.000.312", "score": 0.12,
       "grades": "name F, street A, number B, postcode A, phone Z, web Z, distance A"}],
     "address agrees but the name 'Frituur Jan Peeters' is only similar and the phone "
     "0470 12 34 56 differs"),
    (["gustoreviews:formula"], "no-match", None, 0.001, "", [],
     "no register unit shares the name, the address or the phone"),
    (["gustoreviews:script"], "no-match", None, 0.002, "", [],
     "no register unit shares the name, the address or the phone"),
    (["osm:node-42"], "no-match", None, 0.0, "", [], "no candidate: no address, no phone"),
    (["gustoreviews:geocoded"], "doubt", None, 0.9,
     "name F, street A, number A, postcode A, phone Z, web Z, distance A",
     [{"unit_id": "2.100.000.411", "score": 0.9,
       "grades": "name F, street A, number A, postcode A, phone Z, web Z, distance A"}],
     "same address, different name"),
    (["stayfinder:grand"], "match", "2.100.000.213", 0.998,
     "name A, street A, number A, postcode A, phone Z, web Z, distance A",
     [{"unit_id": "2.100.000.213", "score": 0.998,
       "grades": "name A, street A, number A, postcode A, phone Z, web Z, distance A"}],
     "name and address agree"),
    (["gustoreviews:tiny"], "no-match", None, 0.01,
     "", [{"unit_id": "2.100.000.411", "score": 0.01,
           "grades": "name B, street F, number F, postcode A, phone Z, web Z, distance F"}],
     "the only candidate is in another street"),
]


def create_sample_store(db: sqlite_utils.Database) -> dict[str, str]:
    """Write the sample; returns {short name: place id} for the places above."""
    ids: dict[str, str] = {}
    with transaction(db):
        upsert(db, "sources", [
            {"name": "osm", "spider": "overpass", "status": "approved"},
            {"name": "gustoreviews", "spider": "structured", "status": "approved"}],
            key="name")
        upsert(db, "listings", LISTINGS, key="id")
        db.conn.execute("INSERT OR REPLACE INTO register_snapshots (id, region, format, status) "
                        "VALUES (?, 'brussels', 'kbo', 'active')", (SNAPSHOT,))
        upsert(db, "register_units", UNITS, key=("snapshot_id", "unit_id"))
        upsert(db, "entity_geocodes", [{
            "entity_kind": "listing", "entity_id": "gustoreviews:geocoded", "lat": 50.8330,
            "lon": 4.3790, "precision": "house_number", "provider": "nominatim",
            "updated_at": LATEST}], key=("entity_kind", "entity_id"))
        for listing_ids, outcome, unit, score, grades, candidates, reason in PLACES:
            pid = place_id_for(listing_ids)
            ids[listing_ids[0].split(":", 1)[1]] = pid
            first = next(row for row in LISTINGS if row["id"] == listing_ids[0])
            upsert(db, "places", [{"id": pid, "run_id": None, "listing_ids": json.dumps(
                listing_ids), "name": first["name"], "evidence": "{}"}], key="id")
            upsert(db, "keying_results", [{
                "place_id": pid, "run_id": None, "snapshot_id": SNAPSHOT, "outcome": outcome,
                "unit_id": unit, "score": score, "grades": grades or None,
                "candidates": json.dumps(candidates), "reason": reason}], key="place_id")
    return ids
