"""geocode_pending end to end (offline): scope, chain, cache, dedup, gaps, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from typer.testing import CliRunner

from horeca.cli import app
from horeca.geocode.config import GeocodeConfig
from horeca.geocode.geo import haversine_m
from horeca.geocode.loaders import SEGMENT_COLUMNS, import_segments
from horeca.geocode.run import geocode_pending
from horeca.region import resolve_region
from horeca.store import open_db, upsert

GAZETTEER = ",".join(SEGMENT_COLUMNS) + """
Rue de la Loi,Wetstraat,1000,Bruxelles,Brussel,1,101,50.8460,4.3600,50.8420,4.3800
Avenue Louise,Louizalaan,1050,Ixelles,Elsene,1,201,50.8400,4.3600,50.8200,4.3700
"""
LOI_51 = (50.8440, 4.3700)   # half-way along 1..101


def listing(lid: str, **fields: Any) -> dict[str, Any]:
    row = {"id": f"gusto:{lid}", "source": "gusto", "source_id": lid, "street": None,
           "house_number": None, "postcode": None, "locality": None, "address_raw": None,
           "lat": None, "lon": None, "region": None}
    row.update(fields)
    return row


def add_listings(db: sqlite_utils.Database, *rows: dict[str, Any]) -> None:
    upsert(db, "listings", list(rows), key="id")


def add_snapshot(db: sqlite_utils.Database, snapshot_id: int, status: str,
                 units: list[dict[str, Any]]) -> None:
    db["register_snapshots"].insert({"id": snapshot_id, "region": "brussels", "format": "kbo",
                                     "status": status})
    for unit in units:
        row = {"snapshot_id": snapshot_id, "street_fr": None, "street_nl": None,
               "house_number": None, "postcode": None, "municipality_fr": None,
               "municipality_nl": None, **unit}
        db["register_units"].insert(row)


@pytest.fixture()
def db(tmp_path: Path) -> sqlite_utils.Database:
    database = open_db(tmp_path / "h.db")
    path = tmp_path / "gazetteer.csv"
    path.write_text(GAZETTEER)
    import_segments(database, path)
    return database


def entity(db: sqlite_utils.Database, kind: str, eid: str) -> dict[str, Any]:
    return db["entity_geocodes"].get((kind, eid))


def test_listings_and_units_of_the_active_snapshot_are_geocoded_with_provenance(
        db: sqlite_utils.Database) -> None:
    add_listings(db, listing("1", street="Wetstraat", house_number="51", postcode="1000"))
    add_snapshot(db, 1, "superseded", [{"unit_id": "2.000.000.001", "street_fr": "Rue de la Loi",
                                        "house_number": "1", "postcode": "1000"}])
    add_snapshot(db, 2, "active", [{"unit_id": "2.000.000.002", "street_fr": "Rue de la Loi",
                                    "street_nl": "Wetstraat", "house_number": "51 bte 2",
                                    "postcode": "1000", "municipality_fr": "Bruxelles"}])
    summary = geocode_pending(db)
    assert summary.entities == 2 and summary.pending == 2
    assert summary.by_precision == {"house_number": 2}
    assert summary.by_provider == {"gazetteer": 2}
    unit = entity(db, "unit", "2.000.000.002")
    assert unit["snapshot_id"] == 2 and unit["status"] == "ok"
    assert (unit["lat"], unit["lon"]) == pytest.approx(LOI_51)
    assert db.conn.execute("SELECT count(*) FROM entity_geocodes WHERE entity_id = ?",
                           ("2.000.000.001",)).fetchone()[0] == 0
    cached = db["geocodes"].get(unit["geocode_key"])
    assert cached["provider"] == "gazetteer" and cached["precision"] == "house_number"
    assert cached["method"] == "segment"
    assert cached["query"] == "rue de la loi|51|1000||be|alt=wetstraat"
    assert db.conn.execute("SELECT count(*) FROM audit_log WHERE action = 'geocode'"
                           ).fetchone()[0] == 1


def test_spelling_variants_of_one_address_are_geocoded_once(db: sqlite_utils.Database) -> None:
    add_listings(db,
                 listing("1", street="Av. Louise", house_number="17", postcode="1050"),
                 listing("2", street="AVENUE LOUISE", house_number="17 bte 4", postcode="1050",
                         locality="Elsene"),
                 listing("3", address_raw="Avenue Louise 17, 1050 Ixelles"))
    summary = geocode_pending(db)
    assert summary.pending == 3 and summary.queries == 1
    keys = {entity(db, "listing", f"gusto:{i}")["geocode_key"] for i in "123"}
    assert len(keys) == 1
    assert db["geocodes"].count == 1


def test_second_run_has_nothing_pending_and_a_forced_run_reads_the_cache(
        db: sqlite_utils.Database) -> None:
    add_listings(db, listing("1", street="Wetstraat", house_number="51", postcode="1000"))
    geocode_pending(db)
    again = geocode_pending(db)
    assert again.pending == 0 and again.up_to_date == 1
    assert again.by_precision == {"house_number": 1}
    # With the gazetteer's rows gone, only the cache can still answer (the import is not
    # re-run, so the cached answers are not invalidated).
    db.conn.execute("DELETE FROM gazetteer_streets")
    forced = geocode_pending(db, redo_all=True)
    assert forced.pending == 1 and forced.cache_hits == 1
    assert entity(db, "listing", "gusto:1")["precision"] == "house_number"


def test_a_changed_address_is_geocoded_again(db: sqlite_utils.Database) -> None:
    add_listings(db, listing("1", street="Wetstraat", house_number="51", postcode="1000"))
    geocode_pending(db)
    add_listings(db, listing("1", street="Avenue Louise", house_number="101", postcode="1050"))
    summary = geocode_pending(db)
    assert summary.pending == 1
    assert entity(db, "listing", "gusto:1")["lat"] == pytest.approx(50.8300)


def test_reimporting_the_gazetteer_makes_its_answers_pending(db: sqlite_utils.Database,
                                                             tmp_path: Path) -> None:
    add_listings(db, listing("1", street="Wetstraat", house_number="51", postcode="1000"))
    geocode_pending(db)
    moved = tmp_path / "moved.csv"
    moved.write_text(GAZETTEER.replace("50.8460,4.3600,50.8420,4.3800",
                                       "50.8500,4.3600,50.8500,4.3800"))
    import_segments(db, moved, source="gazetteer")
    summary = geocode_pending(db)
    assert summary.pending == 1 and summary.cache_hits == 0
    assert entity(db, "listing", "gusto:1")["lat"] == pytest.approx(50.8500)


def test_gap_between_own_coordinates_and_address_is_stored_and_large_ones_counted(
        db: sqlite_utils.Database) -> None:
    far = (LOI_51[0] + 0.0036, LOI_51[1])            # about 400 m north
    near = (LOI_51[0] + 0.0001, LOI_51[1])           # about 11 m
    add_listings(db,
                 listing("far", street="Wetstraat", house_number="51", postcode="1000",
                         lat=far[0], lon=far[1]),
                 listing("near", street="Wetstraat", house_number="51", postcode="1000",
                         lat=near[0], lon=near[1]),
                 listing("zero", street="Wetstraat", house_number="51", postcode="1000",
                         lat=0.0, lon=0.0))
    summary = geocode_pending(db)
    far_row = entity(db, "listing", "gusto:far")
    assert far_row["gap_m"] == pytest.approx(haversine_m(*far, *LOI_51), abs=0.1)
    assert 390 < far_row["gap_m"] < 410
    assert entity(db, "listing", "gusto:near")["gap_m"] < 20
    assert entity(db, "listing", "gusto:zero")["gap_m"] is None
    assert summary.gaps_checked == 2 and summary.large_gaps == 1
    assert summary.bad_coordinates == 1
    strict = geocode_pending(db, config=GeocodeConfig(gap_threshold_m=5))
    assert strict.large_gaps == 2


def test_moved_own_coordinates_recompute_the_gap(db: sqlite_utils.Database) -> None:
    add_listings(db, listing("1", street="Wetstraat", house_number="51", postcode="1000",
                             lat=LOI_51[0], lon=LOI_51[1]))
    geocode_pending(db)
    assert entity(db, "listing", "gusto:1")["gap_m"] == 0
    add_listings(db, listing("1", street="Wetstraat", house_number="51", postcode="1000",
                             lat=LOI_51[0] + 0.01, lon=LOI_51[1]))
    summary = geocode_pending(db)
    assert summary.pending == 1 and summary.large_gaps == 1
    assert entity(db, "listing", "gusto:1")["gap_m"] > 1000


def test_unparsable_and_unknown_addresses_are_recorded_and_the_run_goes_on(
        db: sqlite_utils.Database) -> None:
    add_listings(db,
                 listing("empty", address_raw="see website"),
                 listing("nothing", lat=50.85, lon=4.35),
                 listing("elsewhere", street="Meir", house_number="1", postcode="2000",
                         locality="Antwerpen"),
                 listing("ok", street="Wetstraat", house_number="51", postcode="1000"))
    summary = geocode_pending(db)
    assert summary.failures == {"unparsable": 1, "not_found": 1, "no_address": 1}
    assert summary.by_precision == {"house_number": 1, "none": 3}
    assert entity(db, "listing", "gusto:nothing")["error"].startswith("no_address")
    empty = entity(db, "listing", "gusto:empty")
    assert empty["status"] == "error" and empty["error"].startswith("unparsable")
    assert empty["lat"] is None and empty["geocode_key"] is None
    elsewhere = entity(db, "listing", "gusto:elsewhere")
    assert elsewhere["status"] == "not_found" and "not in the gazetteer" in elsewhere["error"]
    # Unchanged failures are not pending again: offline, the same answers would come back.
    assert geocode_pending(db).pending == 0
    assert geocode_pending(db, redo_all=True).pending == 4


def test_region_limits_the_scope(db: sqlite_utils.Database) -> None:
    add_listings(db,
                 listing("bxl", street="Wetstraat", house_number="51", postcode="1000"),
                 listing("antwerp", street="Meir", house_number="1", postcode="2000"),
                 listing("tagged", address_raw="Wetstraat", region="brussels"))
    summary = geocode_pending(db, resolve_region("brussels"))
    assert summary.entities == 2
    assert db.conn.execute("SELECT count(*) FROM entity_geocodes WHERE entity_id = ?",
                           ("gusto:antwerp",)).fetchone()[0] == 0


def test_a_cached_online_answer_is_used_without_going_online(db: sqlite_utils.Database) -> None:
    add_listings(db, listing("1", street="Rue Neuve", house_number="2", postcode="1000"))
    db["geocodes"].insert({"key": "nominatim#rue neuve|2|1000||be", "provider": "nominatim",
                           "query": "{}", "lat": 50.851, "lon": 4.356,
                           "precision": "house_number", "status": "ok", "method": "online"})
    summary = geocode_pending(db)
    row = entity(db, "listing", "gusto:1")
    assert row["provider"] == "nominatim" and row["precision"] == "house_number"
    assert summary.online_requests == 0 and summary.online_skipped == 0
    assert summary.attribution and "OpenStreetMap" in summary.attribution


def test_what_online_could_refine_is_counted_when_online_is_off(
        db: sqlite_utils.Database) -> None:
    add_listings(db, listing("1", street="Rue Neuve", house_number="2", postcode="1000"))
    summary = geocode_pending(db)
    assert summary.online_skipped == 1 and summary.online_requests == 0
    assert entity(db, "listing", "gusto:1")["precision"] == "postcode"


def test_without_any_gazetteer_every_address_is_not_found(tmp_path: Path) -> None:
    empty = open_db(tmp_path / "empty.db")
    add_listings(empty, listing("1", street="Wetstraat", house_number="51", postcode="1000"))
    summary = geocode_pending(empty)
    assert summary.failures == {"not_found": 1}
    assert "no gazetteer imported" in entity(empty, "listing", "gusto:1")["error"]


def test_cli_geocodes_and_prints_counts(tmp_path: Path) -> None:
    db_path = tmp_path / "cli.db"
    database = open_db(db_path)
    gaz = tmp_path / "gazetteer.csv"
    gaz.write_text(GAZETTEER)
    add_listings(database, listing("1", street="Wetstraat", house_number="51", postcode="1000"),
                 listing("2", address_raw="nothing here", region="brussels"))
    runner = CliRunner()
    imported = runner.invoke(app, ["--db", str(db_path), "geocode", "import-gazetteer",
                                   str(gaz)])
    assert imported.exit_code == 0, imported.output
    result = runner.invoke(app, ["--db", str(db_path), "geocode", "--region", "brussels",
                                 "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout.splitlines()[0])
    assert counts["by_precision"] == {"house_number": 1, "none": 1}
    assert counts["failures"] == {"unparsable": 1}
    run = database.conn.execute("SELECT command, status, counts FROM runs ORDER BY id DESC"
                                ).fetchone()
    assert run[0] == "geocode" and run[1] == "ok" and json.loads(run[2])["pending"] == 2
