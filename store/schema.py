"""The one place that owns the database schema.

The schema version lives in `PRAGMA user_version`. `MIGRATIONS[i]` takes a database from
version i to i + 1; `migrate` applies what is missing inside one transaction. Add a new
function at the end of the list to change the schema; never edit one that has shipped.

Tables that steps upsert into carry no NOT NULL constraints besides their keys:
sqlite-utils 3.x upserts with `INSERT OR IGNORE (pk)` then `UPDATE`, and a NOT NULL column
would make that insert silently do nothing. Prefer `horeca.store.upsert`, which uses
`INSERT ... ON CONFLICT DO UPDATE` and can keep columns such as `first_seen`.

Tables and natural keys (what makes a re-run update rather than duplicate):

| table              | natural key                  | written by                      |
|--------------------|------------------------------|---------------------------------|
| runs               | id (one row per command)     | every CLI command               |
| sources            | name                         | legal_gate (mirror of config)   |
| listings           | id = "<source>:<source_id>"  | spiders, listings import        |
| crawl_reports      | (run_id, source)             | spiders                         |
| register_snapshots | id; one `active` per region  | register import                 |
| register_units     | (snapshot_id, unit_id)       | register import                 |
| geocodes           | key (normalised query)       | geocode (the cache)             |
| entity_geocodes    | (entity_kind, entity_id)     | geocode                         |
| gazetteer_sources  | name                         | geocode import-gazetteer/-best  |
| gazetteer_streets  | (source, seq)                | geocode import-gazetteer        |
| gazetteer_address_streets | (source, postcode, street_fr, street_nl, street_de) | import-best |
| gazetteer_addresses| (street_id, house_number)    | geocode import-best             |
| gazetteer_index    | postcode                     | geocode imports (prebuilt index)|
| register_unit_keys | (snapshot_id, unit_id); id = scan order | keying (once per snapshot) |
| register_unit_records | id (= register_unit_keys.id) | keying (units prepared so far)  |
| register_key_builds| snapshot_id                  | keying (which snapshots have keys) |
| places             | id                           | keying (consolidated listings)  |
| keying_results     | place_id                     | keying                          |
| verdicts           | (place_id, reviewer, reviewed_at) | review import              |
| settings           | name                         | any (exports: pseudonym key)    |
| audit_log          | id (append-only, hash chain) | legal_gate.audit                |
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils


def _execute_script(db: sqlite_utils.Database, script: str) -> None:
    """Run statements one by one: `executescript` would COMMIT the migration transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")


def _v1(db: sqlite_utils.Database) -> None:
    _execute_script(
        db,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            command TEXT NOT NULL,
            args TEXT,                 -- JSON of the command's options
            os_user TEXT,
            analyst TEXT,
            purpose TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,      -- running | ok | failed | interrupted
            counts TEXT,               -- JSON
            error TEXT
        );

        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            spider TEXT,
            status TEXT,
            reviewer TEXT,
            reviewed_on TEXT,
            terms_sha256 TEXT,
            retention_days INTEGER,
            updated_at TEXT
        );

        CREATE TABLE listings (
            id TEXT PRIMARY KEY,       -- "<source>:<source_id>"
            source TEXT,
            source_id TEXT,
            url TEXT,
            name TEXT,
            alt_names TEXT,            -- JSON list
            address_raw TEXT,
            street TEXT,
            house_number TEXT,
            box TEXT,
            postcode TEXT,
            locality TEXT,
            country TEXT,
            phone_raw TEXT,
            phone TEXT,                -- E.164
            website TEXT,
            lat REAL,
            lon REAL,
            category TEXT,
            review_count INTEGER,
            rating REAL,
            price_range TEXT,
            rooms INTEGER,
            opening_hours TEXT,
            legal_name TEXT,
            vat TEXT,                  -- enterprise number, 10 digits
            natural_person INTEGER DEFAULT 0,
            region TEXT,
            first_seen TEXT,
            last_seen TEXT,
            last_run_id INTEGER,
            UNIQUE (source, source_id)
        );
        CREATE INDEX listings_postcode ON listings (postcode);
        CREATE INDEX listings_phone ON listings (phone);
        CREATE INDEX listings_last_seen ON listings (source, last_seen);

        CREATE TABLE crawl_reports (
            run_id INTEGER NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT,
            stats TEXT,       -- JSON: pages, items, kept, dropped by reason, coverage, errors
            flagged TEXT,              -- why the crawl looks broken, or NULL
            PRIMARY KEY (run_id, source)
        );

        CREATE TABLE register_snapshots (
            id INTEGER PRIMARY KEY,
            region TEXT,
            format TEXT,      -- kbo | csv
            source_path TEXT,
            snapshot_date TEXT,
            extract_number TEXT,
            imported_at TEXT,
            run_id INTEGER,
            status TEXT,      -- building | active | superseded | failed
            counts TEXT,               -- JSON
            extract_type TEXT,         -- full | update (kbo); NULL for csv
            sources TEXT,              -- JSON list of paths applied in order (full extract first)
            filters TEXT,              -- JSON: region postcodes, nace prefixes
            fingerprint TEXT,          -- of inputs + filters: an identical re-import is a no-op
            error TEXT                 -- why a failed import failed
        );
        CREATE INDEX register_snapshots_region ON register_snapshots (region, status);

        CREATE TABLE register_units (
            snapshot_id INTEGER NOT NULL REFERENCES register_snapshots (id) ON DELETE CASCADE,
            unit_id TEXT NOT NULL,     -- establishment number, or enterprise number (seat only)
            enterprise_number TEXT,
            establishment_number TEXT,
            names TEXT,                -- JSON [{name, type, lang, level}]
            street_fr TEXT,
            street_nl TEXT,
            house_number TEXT,
            box TEXT,
            postcode TEXT,
            municipality_fr TEXT,
            municipality_nl TEXT,
            address_extra TEXT,
            seat_street_fr TEXT,
            seat_street_nl TEXT,
            seat_house_number TEXT,
            seat_box TEXT,
            seat_postcode TEXT,
            seat_municipality_fr TEXT,
            seat_municipality_nl TEXT,
            phones TEXT,               -- JSON list of E.164
            websites TEXT,             -- JSON list
            emails TEXT,               -- JSON list
            nace TEXT,                 -- JSON [{code, version, classification, level}]
            horeca INTEGER DEFAULT 0,
            juridical_form TEXT,
            natural_person INTEGER DEFAULT 0,
            start_date TEXT,
            lat REAL,
            lon REAL,
            declared_workers REAL,
            declared_turnover REAL,
            declared_level TEXT,       -- establishment | enterprise: whose figures these are
            PRIMARY KEY (snapshot_id, unit_id)
        );
        CREATE INDEX register_units_postcode ON register_units (snapshot_id, postcode);

        CREATE TABLE geocodes (
            key TEXT PRIMARY KEY,      -- provider + normalised query
            provider TEXT,
            query TEXT,
            lat REAL,
            lon REAL,
            precision TEXT,            -- house_number | street | postcode | locality
            status TEXT,      -- ok | not_found | error
            error TEXT,
            created_at TEXT,
            method TEXT,  -- exact, interpolated, segment, nearest_number, *_centroid, online
            matched TEXT               -- what the answer matched (street, number, postcode)
        );

        CREATE TABLE entity_geocodes (
            entity_kind TEXT NOT NULL, -- listing | unit
            entity_id TEXT NOT NULL,   -- listings.id, or register_units.unit_id
            snapshot_id INTEGER,
            geocode_key TEXT,
            lat REAL,
            lon REAL,
            precision TEXT,
            provider TEXT,
            gap_m REAL,                -- listing's own coordinates vs its geocoded address
            updated_at TEXT,
            status TEXT,      -- ok | not_found | error (then lat/lon are NULL)
            error TEXT,                -- reason: unparsable, not_found, timeout, ...
            PRIMARY KEY (entity_kind, entity_id)
        );

        -- Offline gazetteer. An import replaces every row of its `source`.
        CREATE TABLE gazetteer_sources (
            name TEXT PRIMARY KEY,
            kind TEXT,        -- segments | addresses
            path TEXT,
            rows INTEGER,
            imported_at TEXT,
            run_id INTEGER
        );

        CREATE TABLE gazetteer_streets (   -- street segments; numbers interpolate along them
            source TEXT NOT NULL,
            seq INTEGER NOT NULL,      -- data line in the source file
            street_fr TEXT,
            street_nl TEXT,
            postcode TEXT,
            municipality_fr TEXT,
            municipality_nl TEXT,
            house_from INTEGER,
            house_to INTEGER,
            lat_start REAL,
            lon_start REAL,
            lat_end REAL,
            lon_end REAL,
            PRIMARY KEY (source, seq)
        );
        CREATE INDEX gazetteer_streets_postcode ON gazetteer_streets (postcode);

        -- Address points (BeST Address): streets apart, so millions of points do not
        -- repeat their names, and the index build reads only numbers and positions.
        CREATE TABLE gazetteer_address_streets (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            postcode TEXT NOT NULL,
            street_fr TEXT NOT NULL,   -- '' rather than NULL: part of the key
            street_nl TEXT NOT NULL,
            street_de TEXT NOT NULL,
            municipality_fr TEXT,
            municipality_nl TEXT,
            municipality_de TEXT,
            region_code TEXT,
            UNIQUE (source, postcode, street_fr, street_nl, street_de)
        );
        CREATE INDEX gazetteer_address_streets_postcode ON gazetteer_address_streets (postcode);

        CREATE TABLE gazetteer_addresses ( -- one point per house number (boxes folded)
            street_id INTEGER NOT NULL REFERENCES gazetteer_address_streets (id)
                ON DELETE CASCADE,
            house_number TEXT NOT NULL,  -- as written ("12A")
            number INTEGER,            -- parsed: 12
            suffix TEXT,               -- parsed: "a"
            lat REAL,
            lon REAL,
            PRIMARY KEY (street_id, house_number)
        ) WITHOUT ROWID;

        CREATE TABLE places (
            id TEXT PRIMARY KEY,       -- stable: derived from the member listing ids
            run_id INTEGER,
            listing_ids TEXT, -- JSON list
            name TEXT,
            evidence TEXT              -- JSON: every name, phone, website, review count per source
        );

        CREATE TABLE keying_results (
            place_id TEXT PRIMARY KEY REFERENCES places (id) ON DELETE CASCADE,
            run_id INTEGER,
            snapshot_id INTEGER,
            outcome TEXT,     -- match | doubt | no-match
            unit_id TEXT,
            score REAL,
            grades TEXT,               -- "name A, street B, ..."
            candidates TEXT,           -- JSON: top candidates with grades and scores
            reason TEXT,
            candidate_units TEXT       -- JSON: every unit compared (blocking recall in evaluate)
        );

        CREATE TABLE verdicts (
            id INTEGER PRIMARY KEY,
            place_id TEXT,
            listing_ids TEXT,          -- JSON: so a verdict survives a change of place ids
            verdict TEXT,  -- confirmed, registered_under, closed, false_positive, not_visited
            register_number TEXT,
            comment TEXT,
            outcome TEXT,     -- what the reviewed row said: match | doubt | no-match
            unit_id TEXT,     -- the register unit that row was matched to, if any
            reviewer TEXT,
            reviewed_at TEXT,
            file TEXT,
            imported_at TEXT,
            run_id INTEGER,
            UNIQUE (place_id, reviewer, reviewed_at)
        );

        CREATE TABLE settings (
            name TEXT PRIMARY KEY,     -- e.g. pseudonym_key (exports)
            value TEXT,
            updated_at TEXT
        );

        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            source TEXT,
            target TEXT,
            rows INTEGER,
            purpose TEXT,
            details TEXT,              -- JSON
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        -- Append-only: edits must go through a new entry. Dropping these triggers is
        -- possible, which is why every entry also chains the hash of the previous one.
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        """
    )


def _v2(db: sqlite_utils.Database) -> None:
    """Keying's index of the register (keying/register_keys.py): each unit's blocking
    keys, computed once per snapshot, and the units keying has prepared for comparison,
    kept for the next run, so that a run no longer normalises every name and street of
    the register again."""
    _execute_script(
        db,
        """
        CREATE TABLE register_unit_keys (
            id INTEGER PRIMARY KEY,    -- the unit's place in the register (scan order, ties)
            snapshot_id INTEGER NOT NULL,
            unit_id TEXT NOT NULL,
            keys TEXT NOT NULL,        -- tab-separated, see keying.blocking.unit_keys
            lat REAL,                  -- the unit's own coordinates, if the register has any
            lon REAL
        );
        CREATE INDEX register_unit_keys_snapshot ON register_unit_keys (snapshot_id, id);
        CREATE TABLE register_unit_records (
            id INTEGER PRIMARY KEY,    -- = register_unit_keys.id
            snapshot_id INTEGER NOT NULL,
            record TEXT NOT NULL       -- JSON, see keying.records.unit_record_json
        );
        CREATE INDEX register_unit_records_snapshot ON register_unit_records (snapshot_id);
        CREATE TABLE register_key_builds (
            snapshot_id INTEGER PRIMARY KEY,
            code TEXT NOT NULL,        -- fingerprint of the normalising code that wrote them
            country TEXT NOT NULL,     -- keys depend on the country's postcodes
            units INTEGER NOT NULL,
            built_at TEXT NOT NULL,
            seconds REAL
        );
        """
    )


def _v3(db: sqlite_utils.Database) -> None:
    """The offline gazetteer's index, built at import (geocode/gazetteer.py) rather than
    by every geocoding run: one marshalled area per postcode, with the fingerprint of the
    code that built it (a run rebuilds from the tables what is missing or stale)."""
    _execute_script(
        db,
        """
        CREATE TABLE gazetteer_index (
            postcode TEXT PRIMARY KEY,
            code TEXT NOT NULL,        -- fingerprint of the code that built it
            data BLOB NOT NULL         -- marshal, see horeca.geocode.gazetteer.area_blob
        );
        """
    )


def _v4(db: sqlite_utils.Database) -> None:
    """Each unit's blocking keys also as 64-bit hashes, so that a keying run tests the
    whole register against the places' keys with numpy (keying/blocking.py). Keys written
    before have none: they are stale by their code fingerprint and are written again."""
    _execute_script(
        db,
        """
        ALTER TABLE register_unit_keys ADD COLUMN key_hashes BLOB;  -- see blocking.key_hashes
        """
    )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite_utils.Database, current: int) -> None:
    """Apply migrations current+1 .. SCHEMA_VERSION in one transaction."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the write lock.
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in MIGRATIONS[current:]:
            step(db)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
