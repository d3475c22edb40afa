"""Offline matching in batches, in a second process and from the index stored at import:
the same answers as one matcher built from the tables for every query at once, written
to the same rows."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from horeca.errors import UserError
from horeca.geocode import offline
from horeca.geocode.config import GeocodeConfig, config_from_dict
from horeca.geocode.gazetteer import (
    AreaLoader,
    ensure_index,
    index_fingerprint,
    load_areas,
    load_gazetteer,
    needed_postcodes,
)
from horeca.geocode.loaders import SEGMENT_COLUMNS, import_best, import_segments
from horeca.geocode.offline import OfflineMatching
from horeca.geocode.query import build_query
from horeca.geocode.run import geocode_pending
from horeca.store import open_db, upsert

SEGMENTS = ",".join(SEGMENT_COLUMNS) + """
Rue de la Loi,Wetstraat,1000,Bruxelles,Brussel,1,101,50.8460,4.3600,50.8420,4.3800
Rue Neuve,Nieuwstraat,1000,Bruxelles,Brussel,1,99,50.8500,4.3550,50.8540,4.3580
Avenue Louise,Louizalaan,1050,Ixelles,Elsene,1,201,50.8400,4.3600,50.8200,4.3700
Chaussée de Wavre,Waversesteenweg,1050,Ixelles,Elsene,2,300,50.8350,4.3800,50.8300,4.4000
Rue de la Loi,Wetstraat,1040,Etterbeek,Etterbeek,103,250,50.8420,4.3800,50.8400,4.3900
"""
BEST_HEADER = ("EPSG:31370_x,EPSG:31370_y,EPSG:4326_lat,EPSG:4326_lon,address_id,box_number,"
               "house_number,municipality_id,municipality_name_de,municipality_name_fr,"
               "municipality_name_nl,postcode,postname_fr,postname_nl,street_id,streetname_de,"
               "streetname_fr,streetname_nl,region_code,status")


def best_row(lat: float, lon: float, number: str, street_fr: str, street_nl: str,
             postcode: str, mun_fr: str, mun_nl: str, mun_de: str = "") -> str:
    return (f"0,0,{lat:.6f},{lon:.6f},1,,{number},21000,{mun_de},{mun_fr},{mun_nl},"
            f"{postcode},,,1,,{street_fr},{street_nl},BE-BRU,current")


def write_store(path: Path, tmp: Path) -> sqlite_utils.Database:
    db = open_db(path)
    segments = tmp / "segments.csv"
    segments.write_text(SEGMENTS)
    import_segments(db, segments)
    rows = [best_row(50.85 + n * 1e-4, 4.35 + n * 1e-4, str(n), "Rue Haute", "Hoogstraat",
                     "1000", "Bruxelles", "Brussel", "Brüssel") for n in range(1, 60, 3)]
    rows += [best_row(50.80 + n * 1e-4, 4.30 + n * 1e-4, str(n), "Rue du Bois", "Bosstraat",
                      "1180", "Uccle", "Ukkel", "Uckel") for n in range(2, 40, 2)]
    best = tmp / "best.csv"
    best.write_text("\n".join([BEST_HEADER, *rows]) + "\n")
    import_best(db, best)
    return db


def listing(i: int, street: str | None, number: str | None, postcode: str | None,
            locality: str | None = None) -> dict[str, Any]:
    return {"id": f"t:{i}", "source": "t", "source_id": str(i), "street": street,
            "house_number": number, "postcode": postcode, "locality": locality,
            "lat": None, "lon": None}


def many_listings() -> list[dict[str, Any]]:
    """Every kind of address the matcher tells apart, each several times over."""
    kinds = [
        ("Wetstraat", "51", "1000", None), ("Rue de la Loi", "120", "1000", None),  # sibling
        ("RUE NEUVE", "7 bte 2", "1000", None), ("R. Neuve", "7-9", "1000", None),
        ("Avenue Loiuse", "33", "1050", None),                                   # typo
        ("Chau. de Wavre", "40", None, "Elsene"),                                 # no postcode
        ("Rue Haute", "10", "1000", None), ("Bosstraat", "12", None, "Uckel"),    # German
        ("Rue Haute", "500", "1000", None), ("Rue Haute", None, "1000", None),
        ("Rue du Bois", "7", "1180", None), ("Meir", "1", "2000", "Antwerpen"),   # elsewhere
        ("Rue Inconnue", "3", "1050", None), (None, None, None, None),
        ("Nowhere Street", "4", None, None),
    ]
    rows = []
    for i in range(300):
        street, number, postcode, locality = kinds[i % len(kinds)]
        if number and number.isdigit():
            number = str(int(number) + 2 * (i // len(kinds)))
        rows.append(listing(i, street, number, postcode, locality))
    return rows


def table(db: sqlite_utils.Database, sql: str) -> list[tuple[Any, ...]]:
    return db.conn.execute(sql).fetchall()


ENTITY_ROWS = ("SELECT entity_kind, entity_id, snapshot_id, geocode_key, lat, lon, precision, "
               "provider, gap_m, status, error FROM entity_geocodes ORDER BY 1, 2")
CACHE_ROWS = ("SELECT key, provider, query, lat, lon, precision, status, error, method, "
              "matched FROM geocodes ORDER BY key")


@pytest.fixture()
def stores(tmp_path: Path) -> tuple[sqlite_utils.Database, sqlite_utils.Database]:
    one = write_store(tmp_path / "one.db", tmp_path)
    upsert(one, "listings", many_listings(), key="id")
    one.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(tmp_path / "one.db", tmp_path / "two.db")
    return one, open_db(tmp_path / "two.db")


def test_a_second_process_writes_the_same_rows_as_one_process(
        stores: tuple[sqlite_utils.Database, sqlite_utils.Database],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline, "BATCH", 8)   # many batches, and large enough to fork
    one, two = stores
    alone = geocode_pending(one, config=GeocodeConfig(workers=1))
    forked = geocode_pending(two, config=GeocodeConfig(workers=2))
    assert alone.as_counts() == forked.as_counts()
    assert alone.queries > 8 * 5 and alone.failures   # several batches, failures among them
    assert table(one, ENTITY_ROWS) == table(two, ENTITY_ROWS)
    assert table(one, CACHE_ROWS) == table(two, CACHE_ROWS)
    assert len(table(two, ENTITY_ROWS)) == 300
    # A re-run finds everything up to date either way.
    assert geocode_pending(two, config=GeocodeConfig(workers=2)).pending == 0


def test_batches_from_a_second_process_answer_as_one_index_loaded_for_all(
        stores: tuple[sqlite_utils.Database, sqlite_utils.Database],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline, "BATCH", 5)
    db, _ = stores
    queries = list({q.key: q for q in (
        build_query(street=r["street"], house_number=r["house_number"],
                    postcode=r["postcode"], locality=r["locality"])
        for r in many_listings()) if q is not None}.values())
    whole = load_gazetteer(db, needed_postcodes(db, queries))
    matching = OfflineMatching(db, workers=2)
    matching.add(queries)
    assert matching.forked
    answered = [pair for batch in matching.batches() for pair in batch]
    matching.close()
    assert [q for q, _ in answered] == queries   # in the order added
    assert [a for _, a in answered] == [whole.match(q) for q in queries]


def test_areas_loaded_batch_by_batch_match_as_one_load(
        stores: tuple[sqlite_utils.Database, sqlite_utils.Database]) -> None:
    db, _ = stores
    queries = [q for q in (build_query(street=r["street"], house_number=r["house_number"],
                                       postcode=r["postcode"], locality=r["locality"])
                           for r in many_listings()[:15]) if q is not None]
    whole = load_gazetteer(db, needed_postcodes(db, queries))
    loader = AreaLoader(db)
    for query in queries:   # one at a time: only the areas each can reach are loaded
        assert loader.for_queries([query]).match(query) == whole.match(query)
    first = AreaLoader(db)
    first.for_queries(queries[:1])
    assert first.loaded == needed_postcodes(db, queries[:1]) == {"1000"}
    assert set(load_gazetteer(db).areas) == {"1000", "1040", "1050", "1180"}


def test_a_locality_named_in_german_reaches_its_postcodes(
        stores: tuple[sqlite_utils.Database, sqlite_utils.Database]) -> None:
    db, _ = stores
    query = build_query(street="Bosstraat", house_number="12", postcode=None,
                        locality="Uckel")
    assert query is not None and needed_postcodes(db, [query]) == {"1180"}
    assert AreaLoader(db).for_queries([query]).match(query).precision == "house_number"


def test_an_address_outside_an_imported_gazetteer_is_not_blamed_on_a_missing_import(
        tmp_path: Path) -> None:
    db = write_store(tmp_path / "h.db", tmp_path)
    upsert(db, "listings", [listing(1, "Meir", "1", "2000", "Antwerpen")], key="id")
    summary = geocode_pending(db)
    assert summary.failures == {"not_found": 1}
    error = db["entity_geocodes"].get(("listing", "t:1"))["error"]
    assert "not in the gazetteer" in error


def test_workers_setting_is_checked() -> None:
    assert config_from_dict({"workers": 1}).workers == 1
    with pytest.raises(UserError, match="workers"):
        config_from_dict({"workers": 3})


def test_imports_store_the_index_and_runs_read_it_unless_the_code_changed(
        tmp_path: Path) -> None:
    db = write_store(tmp_path / "h.db", tmp_path)
    stored = dict(table(db, "SELECT postcode, code FROM gazetteer_index"))
    assert set(stored) == {"1000", "1040", "1050", "1180"}
    assert set(stored.values()) == {index_fingerprint()}
    queries = [q for q in (build_query(street=r["street"], house_number=r["house_number"],
                                       postcode=r["postcode"], locality=r["locality"])
                           for r in many_listings()[:15]) if q is not None]
    postcodes = needed_postcodes(db, queries)
    built = load_gazetteer(db, postcodes)
    read = load_areas(db, postcodes)
    assert set(read.areas) == set(built.areas) and read.localities == built.localities
    assert [read.match(q) for q in queries] == [built.match(q) for q in queries]
    # Read from the index, not the tables: without the tables' rows it still answers...
    db.conn.execute("DELETE FROM gazetteer_addresses")
    def points(gazetteer: Any) -> int:
        return sum(len(street.plain) for street in gazetteer.areas["1180"].streets)

    assert points(load_areas(db, {"1180"})) == 19 and points(load_gazetteer(db, {"1180"})) == 0
    # ... unless another version of the code built it.
    db.conn.execute("UPDATE gazetteer_index SET code = 'another'")
    assert points(load_areas(db, {"1180"})) == 0
    # A run then stores it again, once.
    assert ensure_index(db) == 4 and ensure_index(db) == 0
    assert {c for c, in table(db, "SELECT code FROM gazetteer_index")} == {index_fingerprint()}
    db.conn.execute("DELETE FROM gazetteer_index")   # as after the upgrade to schema 3
    geocode_pending(db)
    assert len(table(db, "SELECT postcode FROM gazetteer_index")) == 4


def test_a_new_import_rebuilds_the_stored_index(tmp_path: Path) -> None:
    db = write_store(tmp_path / "h.db", tmp_path)
    more = tmp_path / "more.csv"
    more.write_text(",".join(SEGMENT_COLUMNS) + "\nMeir,Meir,2000,Anvers,Antwerpen,1,99,"
                    "51.2180,4.4000,51.2160,4.4100\n")
    import_segments(db, more)
    assert {p for p, in table(db, "SELECT postcode FROM gazetteer_index")} == {
        "1000", "1040", "1050", "1180", "2000"}
    query = build_query(street="Meir", house_number="50", postcode="2000", locality=None)
    assert query is not None
    assert load_areas(db, {"2000"}).match(query).precision == "house_number"


def _pending_geocoded_in_a_pool_worker(path: str) -> int:
    return geocode_pending(open_db(path), config=GeocodeConfig(workers=2)).pending


def test_a_run_inside_a_daemonic_worker_matches_in_its_own_process(
        stores: tuple[sqlite_utils.Database, sqlite_utils.Database],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # multiprocessing forbids a daemonic worker (a pool's) to start a process.
    monkeypatch.setattr(offline, "BATCH", 8)
    _, two = stores
    path = two.conn.execute("PRAGMA database_list").fetchone()[2]
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_pending_geocoded_in_a_pool_worker, (path,)) == 300
    assert len(table(two, ENTITY_ROWS)) == 300
