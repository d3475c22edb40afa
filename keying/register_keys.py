"""Keying's index of the register: every unit's blocking keys, written once per snapshot.

A register snapshot never changes once imported, but a keying run used to normalise every
name, street and house number of it again (about 25 µs a unit, 40 s of CPU for a national
register). `ensure_unit_keys` computes `blocking.unit_keys` for each unit of a snapshot
once and stores them in `register_unit_keys`, in register order; later runs read one short
text per unit and find its hits with one set intersection.

    register_units --(once per snapshot)--> register_unit_keys --(every run)--> Blocker

Preparing a candidate unit for comparison (normalised names, both street spellings,
phones, domains) costs about 100 µs; a run keeps the units it prepared in
`register_unit_records` (as JSON, `records.unit_record_json`) and the next run, which
mostly has the same candidates, reads them back instead. Geocodes are applied when read,
so geocoding the register later does not make these stale.

Keys and prepared units do not depend on keying settings, only on the normalising code and
the country's postcode and phone rules. The build records a fingerprint of that code
(`code_fingerprint`): after an upgrade that changes any normaliser, or with another
country, the snapshot is indexed again and its prepared units dropped. Writes go in
batches and a snapshot counts as indexed only once its `register_key_builds` row is
written, last: an interrupted build is started over on the next run, never half-used.
Keys of snapshots that are no longer active are removed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import sqlite_utils

try:  # POSIX; elsewhere index builds are not serialised between processes
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

from horeca.bulk import can_fork
from horeca.keying.blocking import HASH, Blocker, unit_entry, unit_point
from horeca.keying.records import (
    UnitRecord,
    prepare_unit,
    unit_record_json,
    unit_records_from_json,
    with_geocode,
)
from horeca.store import db_file, param_batches, source_fingerprint, transaction
from horeca.store.runs import now_iso

Progress = Callable[[str, int, int], None]  # (stage, done, total)

# The register columns keying reads (keys and comparison); the others stay on disk.
UNIT_FIELDS = ("unit_id", "enterprise_number", "names", "street_fr", "street_nl",
               "house_number", "postcode", "seat_street_fr", "seat_street_nl",
               "seat_house_number", "seat_postcode", "phones", "websites", "emails", "nace",
               "horeca", "natural_person", "lat", "lon")

# Only a geocode at house-number precision is a position of the premises: a street or
# postcode centroid would make two businesses in the same postcode grade as "same place".
TRUSTED_POSITION = "precision = 'house_number'"

WRITE_BATCH = 20_000
SLICE_UNITS = 25_000       # units per task of a parallel build
PARALLEL_MIN_UNITS = 50_000  # below this, one process builds faster than two start

# Forked worker processes read their inputs from here rather than from pickles.
_SHARED: dict[str, Any] = {}


def _connection(db: sqlite_utils.Database | sqlite3.Connection) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def connect_read_only(path: str) -> sqlite3.Connection:
    """A worker process's own connection to the store, read-only."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


class ProcessConnection:
    """A connection to the store for work done in turn by this process and forked ones
    (`bulk.in_turn`): the store's own connection here, and in a forked process a read-only
    one of its own (an SQLite connection must not be used across a fork)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.path = db_file(db)
        self._own: sqlite3.Connection | None = None

    def get(self, here: bool) -> sqlite3.Connection:
        if here:
            return self.db.conn
        if self._own is None:
            self._own = connect_read_only(str(self.path))
        return self._own

    def close_own(self) -> None:
        if self._own is not None:
            self._own.close()
            self._own = None


def read_only(path: str) -> contextlib.closing[sqlite3.Connection]:
    """`connect_read_only`, closed on leaving."""
    return contextlib.closing(connect_read_only(path))


# The code whose output is stored: any change to it makes stored keys and units stale.
FINGERPRINTED = ("horeca.normalize", "horeca.keying.records", "horeca.keying.blocking")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the source of the normalisers, the unit preparation and the key format."""
    return source_fingerprint(FINGERPRINTED)


# ----------------------------------------------------------------------------- building


def keys_ready(db: sqlite_utils.Database, snapshot_id: int, country: str) -> bool:
    """Whether the snapshot's keys are written, complete, in this format and country."""
    row = db.conn.execute("SELECT code, country, units FROM register_key_builds "
                          "WHERE snapshot_id = ?", [snapshot_id]).fetchone()
    if row is None or row[0] != code_fingerprint() or row[1] != country:
        return False
    units = db.conn.execute("SELECT count(*) FROM register_units WHERE snapshot_id = ?",
                            [snapshot_id]).fetchone()[0]
    return bool(units == row[2])


def _unit_rows(conn: sqlite3.Connection, snapshot_id: int,
               rowids: tuple[int, int]) -> Iterator[dict[str, Any]]:
    columns = ", ".join(UNIT_FIELDS)
    cursor = conn.execute(f"SELECT {columns} FROM register_units WHERE rowid BETWEEN ? AND ? "
                          "AND +snapshot_id = ? ORDER BY rowid", [*rowids, snapshot_id])
    for values in cursor:
        yield dict(zip(UNIT_FIELDS, values, strict=True))


def _key_rows(conn: sqlite3.Connection, snapshot_id: int, rowids: tuple[int, int],
              country: str) -> list[tuple[Any, ...]]:
    """(snapshot, unit id, keys, key hashes, lat, lon) of the units in a rowid range, in
    order."""
    return [(snapshot_id, *unit_entry(unit, country))
            for unit in _unit_rows(conn, snapshot_id, rowids)]


def _key_slice(task: tuple[int, int]) -> list[tuple[Any, ...]]:
    path, snapshot_id, country = _SHARED["path"], _SHARED["snapshot"], _SHARED["country"]
    with read_only(path) as conn:
        return _key_rows(conn, snapshot_id, task, country)


def _rowid_slices(conn: sqlite3.Connection, snapshot_id: int,
                  size: int) -> list[tuple[int, int]]:
    lo, hi = conn.execute("SELECT min(rowid), max(rowid) FROM register_units "
                          "WHERE snapshot_id = ?", [snapshot_id]).fetchone()
    if lo is None:
        return []
    return [(first, min(hi, first + size - 1)) for first in range(lo, hi + 1, size)]


@contextlib.contextmanager
def _building(db: sqlite_utils.Database) -> Iterator[None]:
    """Held while a snapshot's keys are written: one process at a time. A build spans many
    transactions (other writers, a crawl say, must not wait a minute for it), so two
    `horeca key` runs started together on a new snapshot would otherwise both write the
    keys, interleaved. The lock is a file beside the store (as SQLite's -wal and -shm), held
    with flock: released even when its process dies."""
    path = db_file(db)
    if path is None or fcntl is None:  # a store in memory is one process's alone
        yield
        return
    with open(f"{path}-keying-index.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_unit_keys(db: sqlite_utils.Database, snapshot_id: int, country: str, *,
                    workers: int = 1, progress: Progress | None = None) -> int:
    """Write the keys of every unit of a snapshot (replacing any), in register order;
    returns the number of units. Several processes compute keys when `workers` > 1."""
    with _building(db):
        return _build_unit_keys(db, snapshot_id, country, workers=workers, progress=progress)


def _build_unit_keys(db: sqlite_utils.Database, snapshot_id: int, country: str, *,
                     workers: int, progress: Progress | None) -> int:
    conn = db.conn
    started = time.perf_counter()
    total = conn.execute("SELECT count(*) FROM register_units WHERE snapshot_id = ?",
                         [snapshot_id]).fetchone()[0]
    slices = _rowid_slices(conn, snapshot_id, SLICE_UNITS)
    with transaction(db):
        _delete_snapshot(conn, snapshot_id)
    path = db_file(db)
    insert = ("INSERT INTO register_unit_keys (snapshot_id, unit_id, keys, key_hashes, lat, "
              "lon) VALUES (?, ?, ?, ?, ?, ?)")
    done = 0

    def write(rows: list[tuple[Any, ...]]) -> None:
        nonlocal done
        for first in range(0, len(rows), WRITE_BATCH):
            with transaction(db):
                conn.executemany(insert, rows[first:first + WRITE_BATCH])
        done += len(rows)
        if progress:
            progress("register keys", done, total)

    if workers > 1 and total >= PARALLEL_MIN_UNITS and path and can_fork():
        _SHARED.update(path=path, snapshot=snapshot_id, country=country)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for rows in pool.imap(_key_slice, slices):  # in order: ids follow rowids
                    write(rows)
        finally:
            _SHARED.clear()
    else:
        for rowids in slices:
            write(_key_rows(conn, snapshot_id, rowids, country))
    with transaction(db):
        conn.execute("INSERT INTO register_key_builds (snapshot_id, code, country, units, "
                     "built_at, seconds) VALUES (?, ?, ?, ?, ?, ?)",
                     [snapshot_id, code_fingerprint(), country, done, now_iso(),
                      round(time.perf_counter() - started, 3)])
    return done


def drop_stale_keys(db: sqlite_utils.Database) -> int:
    """Remove the keys of snapshots that are no longer active; returns how many rows."""
    stale = [row[0] for row in db.conn.execute(
        "SELECT DISTINCT snapshot_id FROM register_key_builds WHERE snapshot_id NOT IN "
        "(SELECT id FROM register_snapshots WHERE status = 'active')")]
    removed = 0
    for snapshot_id in stale:
        with transaction(db):
            removed += _delete_snapshot(db.conn, snapshot_id)
    return removed


def _delete_snapshot(conn: sqlite3.Connection, snapshot_id: int) -> int:
    conn.execute("DELETE FROM register_key_builds WHERE snapshot_id = ?", [snapshot_id])
    conn.execute("DELETE FROM register_unit_records WHERE snapshot_id = ?", [snapshot_id])
    return conn.execute("DELETE FROM register_unit_keys WHERE snapshot_id = ?",
                        [snapshot_id]).rowcount


def ensure_unit_keys(db: sqlite_utils.Database, snapshot_id: int, country: str, *,
                     workers: int = 1, progress: Progress | None = None) -> int:
    """Index the snapshot unless it already is; returns the units indexed now (0 if none
    had to be). Idempotent; safe to call before every keying run."""
    drop_stale_keys(db)
    if keys_ready(db, snapshot_id, country):
        return 0
    with _building(db):
        if keys_ready(db, snapshot_id, country):
            return 0  # another process wrote them while this one waited
        return _build_unit_keys(db, snapshot_id, country, workers=workers, progress=progress)


# ----------------------------------------------------------------------------- reading


def id_range(db: sqlite_utils.Database | sqlite3.Connection,
             snapshot_id: int) -> tuple[int, int] | None:
    lo, hi = _connection(db).execute("SELECT min(id), max(id) FROM register_unit_keys "
                                     "WHERE snapshot_id = ?", [snapshot_id]).fetchone()
    return None if lo is None else (lo, hi)


def _has_unit_geocodes(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM entity_geocodes WHERE entity_kind = 'unit' "
                        "AND lat IS NOT NULL LIMIT 1").fetchone() is not None


def offer_keys(blocker: Blocker, db: sqlite_utils.Database | sqlite3.Connection,
               snapshot_id: int, ids: tuple[int, int]) -> int:
    """Offer the stored keys of the units whose ids are in `ids` (first, last) to the
    blocker, as one batch; a trusted geocode takes the place of a unit's own
    coordinates. Returns how many were offered."""
    conn = _connection(db)
    geocoded = _has_unit_geocodes(conn)
    if geocoded:
        sql = ("SELECT k.id, k.unit_id, k.key_hashes, k.lat, k.lon, e.lat, e.lon "
               "FROM register_unit_keys k LEFT JOIN entity_geocodes e "
               "ON e.entity_kind = 'unit' AND e.entity_id = k.unit_id "
               f"AND e.lat IS NOT NULL AND e.{TRUSTED_POSITION} "
               "WHERE k.id BETWEEN ? AND ? AND +k.snapshot_id = ?")
    else:
        sql = ("SELECT id, unit_id, key_hashes, lat, lon FROM register_unit_keys "
               "WHERE id BETWEEN ? AND ? AND +snapshot_id = ?")
    rows = conn.execute(sql, [*ids, snapshot_id]).fetchall()
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    positions, unit_ids, hashes, lats, lons = columns[:5]
    if geocoded:
        lats, lons = list(lats), list(lons)
        for k, (glat, glon) in enumerate(zip(columns[5], columns[6], strict=True)):
            if glat is not None and glon is not None:
                point = unit_point({"lat": lats[k], "lon": lons[k]}, {"lat": glat, "lon": glon})
                lats[k], lons[k] = point if point is not None else (None, None)
    blocker.offer_batch(positions, unit_ids, b"".join(h or b"" for h in hashes),
                        [len(h or b"") // HASH.itemsize for h in hashes], lats, lons)
    return len(rows)


def _geocode_sql(marks: str) -> str:
    return ("SELECT entity_id, lat, lon FROM entity_geocodes WHERE entity_kind = 'unit' "
            f"AND lat IS NOT NULL AND {TRUSTED_POSITION} AND entity_id IN ({marks})")


def unit_geocodes(db: sqlite_utils.Database | sqlite3.Connection,
                  unit_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """{unit id: {lat, lon}} of the units that have a trusted geocode."""
    conn = _connection(db)
    if not _has_unit_geocodes(conn):
        return {}
    out: dict[str, dict[str, float]] = {}
    for batch in param_batches(list(dict.fromkeys(unit_ids))):
        for uid, lat, lon in conn.execute(_geocode_sql(", ".join("?" * len(batch))), batch):
            out[uid] = {"lat": lat, "lon": lon}
    return out


def read_units(db: sqlite_utils.Database | sqlite3.Connection, snapshot_id: int,
               unit_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{unit id: register row} of the given units."""
    conn = _connection(db)
    columns = ", ".join(UNIT_FIELDS)
    out: dict[str, dict[str, Any]] = {}
    for batch in param_batches(list(dict.fromkeys(unit_ids))):
        marks = ", ".join("?" * len(batch))
        for values in conn.execute(f"SELECT {columns} FROM register_units WHERE "
                                   f"snapshot_id = ? AND unit_id IN ({marks})",
                                   [snapshot_id, *batch]):
            row = dict(zip(UNIT_FIELDS, values, strict=True))
            out[str(row["unit_id"])] = row
    return out


def prepared_json(db: sqlite_utils.Database | sqlite3.Connection, snapshot_id: int,
                  unit_ids: Sequence[str], country: str) -> list[str]:
    """The units prepared for comparison, without their geocodes, as JSON, in order."""
    rows = read_units(db, snapshot_id, unit_ids)
    return [unit_record_json(prepare_unit(rows[uid], country=country)) for uid in unit_ids]


# Prepares units (unit ids, in order) as `prepared_json` does, e.g. in several processes.
PrepareJson = Callable[[Sequence[str]], list[str]]


def prepare_units(db: sqlite_utils.Database, snapshot_id: int, positions: Sequence[int],
                  country: str, *, prepare_json: PrepareJson | None = None) -> list[UnitRecord]:
    """The units at `positions` of the register (key ids, as `Blocker.finish` asks),
    ready for comparison, in order: read back from earlier runs where possible, prepared
    (by `prepare_json`, default here) and kept for the next run otherwise."""
    conn = db.conn
    wanted = list(dict.fromkeys(positions))  # each unit once, in order
    unit_id: dict[int, str] = {}
    kept: dict[int, str] = {}
    for batch in param_batches(wanted):
        marks = ", ".join("?" * len(batch))
        for pos, uid, record in conn.execute(
                "SELECT k.id, k.unit_id, r.record FROM register_unit_keys k "
                "LEFT JOIN register_unit_records r ON r.id = k.id "
                f"WHERE k.id IN ({marks})", batch):
            unit_id[pos] = uid
            if record is not None:
                kept[pos] = record
    missing = [pos for pos in wanted if pos not in kept]
    if missing:
        made = (prepare_json or (lambda ids: prepared_json(db, snapshot_id, ids, country)))(
            [unit_id[pos] for pos in missing])
        new = [(pos, snapshot_id, text) for pos, text in zip(missing, made, strict=True)]
        with transaction(db):
            conn.executemany("INSERT OR REPLACE INTO register_unit_records (id, snapshot_id, "
                             "record) VALUES (?, ?, ?)", new)
        kept.update((pos, text) for pos, _sid, text in new)
    geocodes = unit_geocodes(conn, [unit_id[pos] for pos in wanted])
    decoded = unit_records_from_json([kept[pos] for pos in wanted])
    records = {pos: with_geocode(record, geocodes.get(unit_id[pos])) if geocodes else record
               for pos, record in zip(wanted, decoded, strict=True)}
    return [records[pos] for pos in positions]
