"""Keying's index of the register (keying/register_keys.py): the stored keys find exactly
what blocking over the register rows finds, they are built once per snapshot and again
only when the normalising code or the country changes, an interrupted build is never
half-used, and prepared units kept for the next run read back equal."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.fixtures.generate_demo import generate
from horeca.keying import register_keys, store_io
from horeca.keying.blocking import block
from horeca.keying.config import DEFAULT_CONFIG
from horeca.keying.records import (
    prepare_unit,
    unit_record_from_json,
    unit_record_json,
    unit_records_from_json,
    with_geocode,
)
from horeca.keying.synthetic import listings_from_world, units_from_world
from horeca.store import db_file, open_db
from horeca.store.runs import now_iso

UNIT_COLUMNS = ("unit_id", "enterprise_number", "establishment_number", "names", "street_fr",
                "street_nl", "house_number", "box", "postcode", "seat_street_fr",
                "seat_street_nl", "seat_house_number", "seat_postcode", "phones", "websites",
                "emails", "nace", "horeca", "natural_person", "lat", "lon")
APPROVED = ("gustoreviews", "tablebook", "staybrussels", "overpass")


@pytest.fixture(scope="module")
def world():
    return generate(None, seed=5, units=700, horeca_units=250)


@pytest.fixture()
def store(tmp_path: Path, world):
    """A store with the world's register as the active snapshot; every fifth unit has a
    trusted geocode a little off its own coordinates, every seventh an untrusted one."""
    db = open_db(tmp_path / "h.db")
    units = units_from_world(world)
    with db.conn:
        snapshot = db.conn.execute(
            "INSERT INTO register_snapshots (region, format, imported_at, status) "
            "VALUES ('brussels', 'kbo', ?, 'active')", [now_iso()]).lastrowid
        db.conn.executemany(
            f"INSERT INTO register_units (snapshot_id, {', '.join(UNIT_COLUMNS)}) VALUES "
            f"(?, {', '.join('?' for _ in UNIT_COLUMNS)})",
            [(snapshot, *(u.get(c) for c in UNIT_COLUMNS)) for u in units])
        for k, u in enumerate(units):
            if u.get("lat") is None or (k % 5 and k % 7):
                continue
            precision = "house_number" if k % 5 == 0 else "street"
            db.conn.execute(
                "INSERT INTO entity_geocodes (entity_kind, entity_id, lat, lon, precision) "
                "VALUES ('unit', ?, ?, ?, ?)", [u["unit_id"], u["lat"] + 0.0004,
                                                 u["lon"] - 0.0003, precision])
    yield db, snapshot, units
    db.conn.close()


def _places(world):
    return store_io.prepare_places(listings_from_world(world, APPROVED), {}, DEFAULT_CONFIG)


def _found(cands) -> list[set[tuple[str, int]]]:
    return [{(cands.units[j].unit_id, mask) for j, mask in pairs} for pairs in cands.pairs]


def _trusted(db) -> dict[str, dict[str, float]]:
    return {uid: {"lat": lat, "lon": lon} for uid, lat, lon in db.conn.execute(
        "SELECT entity_id, lat, lon FROM entity_geocodes WHERE precision = 'house_number'")}


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_stored_keys_find_what_blocking_over_the_register_rows_finds(
        store, world, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    db, snapshot, units = store
    monkeypatch.setattr(store_io, "SCAN_BATCH", 37)  # many batches even for this register
    monkeypatch.setattr(store_io, "PARALLEL_MIN_UNITS", 0)  # and taken in turn by two
    monkeypatch.setattr(store_io, "PARALLEL_MIN_PREPARE", 0)
    config = dataclasses.replace(DEFAULT_CONFIG, blocking=dataclasses.replace(
        DEFAULT_CONFIG.blocking, workers=workers))
    places = _places(world)
    assert register_keys.ensure_unit_keys(db, snapshot, "BE", workers=workers) == len(units)
    stored = store_io.scan_register(db, snapshot, places, config, len(units))
    rows = block(places, units, config.blocking, geocodes=_trusted(db),
                 sample_size=config.scoring.sample_units, seed=config.scoring.seed)
    assert _found(stored) == _found(rows)
    assert sum(map(len, _found(stored))) > len(places)
    assert [u.unit_id for u in stored.sample] == [u.unit_id for u in rows.sample]
    assert stored.token_df == rows.token_df and stored.units_scanned == len(units)
    # the prepared units are the same records, geocodes applied
    by_id = {u.unit_id: u for u in rows.units}
    assert all(u == by_id[u.unit_id] for u in stored.units)
    assert any(len(u.points) == 2 for u in stored.units)  # a trusted geocode and its own


def test_keys_are_built_once_and_again_when_the_code_or_the_country_changes(
        store, monkeypatch: pytest.MonkeyPatch) -> None:
    db, snapshot, units = store
    assert register_keys.ensure_unit_keys(db, snapshot, "BE") == len(units)
    assert register_keys.ensure_unit_keys(db, snapshot, "BE") == 0
    register_keys.prepare_units(db, snapshot, [1], "BE")
    assert db.conn.execute("SELECT count(*) FROM register_unit_records").fetchone()[0] == 1
    monkeypatch.setattr(register_keys, "code_fingerprint", lambda: "another-normaliser")
    assert register_keys.ensure_unit_keys(db, snapshot, "BE") == len(units)
    # the prepared units of the old code go with its keys
    assert db.conn.execute("SELECT count(*) FROM register_unit_records").fetchone()[0] == 0
    assert register_keys.ensure_unit_keys(db, snapshot, "NL") == len(units)
    assert db.conn.execute("SELECT count(*) FROM register_unit_keys").fetchone()[0] == len(units)


def test_an_interrupted_build_is_never_used_and_is_started_over(store) -> None:
    db, snapshot, units = store
    register_keys.build_unit_keys(db, snapshot, "BE")
    # killed before the last write: keys written, the build not recorded
    db.conn.execute("DELETE FROM register_key_builds")
    db.conn.execute("DELETE FROM register_unit_keys WHERE id > 100")
    assert not register_keys.keys_ready(db, snapshot, "BE")
    assert register_keys.ensure_unit_keys(db, snapshot, "BE") == len(units)
    assert db.conn.execute("SELECT count(*), count(DISTINCT unit_id) FROM register_unit_keys"
                           ).fetchone() == (len(units), len(units))
    ids = [r[0] for r in db.conn.execute("SELECT unit_id FROM register_unit_keys ORDER BY id")]
    assert ids == [r[0] for r in db.conn.execute(
        "SELECT unit_id FROM register_units ORDER BY rowid")]  # register order


def test_keys_of_snapshots_no_longer_active_are_removed(store) -> None:
    db, snapshot, units = store
    register_keys.ensure_unit_keys(db, snapshot, "BE")
    db.conn.execute("UPDATE register_snapshots SET status = 'superseded'")
    assert register_keys.drop_stale_keys(db) == len(units)
    assert db.conn.execute("SELECT count(*) FROM register_key_builds").fetchone()[0] == 0


def test_prepared_units_are_read_back_instead_of_prepared_again(store) -> None:
    db, snapshot, units = store
    register_keys.ensure_unit_keys(db, snapshot, "BE")
    todo = [tuple(r) for r in db.conn.execute(
        "SELECT id, unit_id FROM register_unit_keys ORDER BY id DESC LIMIT 40")]
    first = register_keys.prepare_units(db, snapshot, [pos for pos, _uid in todo], "BE")

    def refuse(ids):
        raise AssertionError(f"prepared again: {ids[:3]}")

    again = register_keys.prepare_units(db, snapshot, [pos for pos, _uid in todo], "BE",
                                        prepare_json=refuse)
    assert again == first
    rows = {u["unit_id"]: u for u in units}
    geocodes = _trusted(db)
    assert first == [prepare_unit(rows[uid], geocode=geocodes.get(uid)) for _id, uid in todo]


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                max_size=30)


@st.composite
def register_rows(draw) -> dict:
    names = draw(st.lists(st.fixed_dictionaries({
        "name": _text, "type": st.sampled_from(["legal", "commercial", "branch"]),
        "level": st.sampled_from(["enterprise", "establishment"])}), max_size=3))
    return {
        "unit_id": draw(st.from_regex(r"[0-9]\.[0-9]{3}\.[0-9]{3}\.[0-9]{3}", fullmatch=True)),
        "enterprise_number": draw(st.none() | st.from_regex(r"0[0-9]{9}", fullmatch=True)),
        "names": json.dumps(names),
        "street_fr": draw(st.none() | _text), "street_nl": draw(st.none() | _text),
        "house_number": draw(st.none() | st.from_regex(r"[0-9]{1,3}([-/][0-9]{1,3})?[a-c]?",
                                                        fullmatch=True)),
        "postcode": draw(st.none() | st.sampled_from(["1000", "1050", "1210", " 1180 "])),
        "seat_street_fr": draw(st.none() | _text), "seat_house_number": "3",
        "seat_postcode": draw(st.none() | st.just("1000")),
        "phones": draw(st.sampled_from([None, "[]", '["+3225120000"]'])),
        "websites": draw(st.sampled_from([None, '["https://www.resto-x.be/menu"]'])),
        "emails": draw(st.sampled_from([None, '["info@resto-x.be"]', '["a@gmail.com"]'])),
        "nace": draw(st.sampled_from([None, "[]", '[{"code": "56101"}]'])),
        "horeca": draw(st.sampled_from([0, 1])), "natural_person": draw(st.booleans()),
        "lat": draw(st.none() | st.floats(50.7, 50.95)),
        "lon": draw(st.none() | st.floats(4.2, 4.5)),
    }


@settings(max_examples=150, deadline=None)
@given(register_rows(), st.none() | st.fixed_dictionaries(
    {"lat": st.floats(50.7, 50.95), "lon": st.floats(4.2, 4.5)}))
def test_a_prepared_unit_survives_its_json_and_takes_its_geocode_later(row, geocode) -> None:
    record = prepare_unit(row)
    assert unit_record_from_json(unit_record_json(record)) == record
    assert unit_records_from_json([unit_record_json(record)] * 2) == [record, record]
    assert with_geocode(record, geocode) == prepare_unit(row, geocode=geocode)


def test_comparisons_made_by_two_processes_decide_exactly_as_one_process(
        world, monkeypatch: pytest.MonkeyPatch) -> None:
    from horeca.keying.engine import key_places

    monkeypatch.setattr(store_io, "PARALLEL_MIN_PAIRS", 0)
    config = dataclasses.replace(DEFAULT_CONFIG, blocking=dataclasses.replace(
        DEFAULT_CONFIG.blocking, workers=2))
    places = _places(world)
    cands = block(places, units_from_world(world), config.blocking,
                  sample_size=config.scoring.sample_units, seed=config.scoring.seed)
    compared = store_io.compare_in_parallel(places, cands, config)
    assert compared is not None
    split, alone = key_places(places, cands, config, None, compared), \
        key_places(places, cands, config)
    assert split.decisions == alone.decisions
    # which process takes which slice depends on timing: the plain rows another process
    # sends back decide the same, whoever took them
    tasks = store_io._compare_tasks(places, cands, 8)
    as_rows = store_io._assembled([store_io._compare_task(places, cands, config, task, True)
                                   for task in tasks])
    assert all(isinstance(row, tuple) for rows in as_rows.pairs for row in rows)
    assert key_places(places, cands, config, None, as_rows).decisions == alone.decisions
    assert any(d.candidates for d in alone.decisions if d.outcome == "doubt")


def _ensure_in_child(path: str, snapshot: int, results) -> None:
    db = open_db(path)
    try:
        results.put(register_keys.ensure_unit_keys(db, snapshot, "BE"))
    finally:
        db.conn.close()


def test_two_processes_indexing_one_snapshot_at_once_write_it_once(store) -> None:
    # Two `horeca key` runs started together on a fresh import must not both write the
    # keys: interleaved, they would file every unit twice and count every key double.
    import multiprocessing

    db, snapshot, units = store
    path = str(db_file(db))
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [context.Process(target=_ensure_in_child, args=(path, snapshot, results))
                for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0]
    assert sorted(results.get(timeout=5) for _ in children) == [0, len(units)]
    assert db.conn.execute("SELECT count(*), count(DISTINCT unit_id) FROM register_unit_keys"
                           ).fetchone() == (len(units), len(units))
    assert db.conn.execute("SELECT count(*) FROM register_key_builds").fetchone()[0] == 1
    ids = [r[0] for r in db.conn.execute("SELECT unit_id FROM register_unit_keys ORDER BY id")]
    assert ids == [r[0] for r in db.conn.execute(
        "SELECT unit_id FROM register_units ORDER BY rowid")]  # register order
