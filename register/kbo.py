"""KBO Open Data -> register units, streamed, filtered while reading, bounded in memory.

The extract is read table by table into a throw-away staging SQLite database, keeping
only the rows the import needs; units are then assembled by one ordered query over the
staging tables, which also builds the JSON columns. Memory holds only the sets of wanted
entity numbers (the region's), never rows: a whole-country import keeps everything on
disk.

Order of the passes, each deciding what the next one keeps:

1. address.csv       -> addresses whose postcode is in the region (BAET: unit addresses,
                        REGO: seats). Whole-country imports keep every address.
2. establishment.csv -> units with an address in the region, plus every unit of
                        enterprises seated there (to know which enterprises have none).
   units             =  those establishment units + enterprises with a seat in the region
                        and no unit anywhere (kept through their seat).
3. address.csv again -> seats of the units' enterprises when outside the region.
4. activity.csv      -> NACE rows of units and their enterprises; `--nace` then narrows
                        the units to those with a matching code at either level.
5. enterprise.csv, branch.csv, denomination.csv, contact.csv -> rows of the remaining
   units and enterprises (phones to E.164 and websites normalised on the way in).

Staging keeps entity numbers as the files write them (`0201.310.929`); outputs carry
digits only. Rows of the big files go from the reader to `executemany` untouched.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers

from horeca.errors import UserError
from horeca.normalize import is_valid_enterprise_number, normalize_url, to_e164
from horeca.region import Region
from horeca.register.issues import RowIssues
from horeca.register.kbo_format import (
    DATA_TABLES,
    OPTIONAL_TABLES,
    TABLES,
    KboExtract,
    Layer,
    kbo_date,
    read_deletes,
    table_layers,
)
from horeca.register.progress import Reporter
from horeca.register.reader import (
    CsvLayout,
    KeyFilter,
    entity_digits,
    iter_rows,
    read_layout,
)
from horeca.register.units import HORECA_PREFIXES, to_json, unique

STAGING_SCHEMA = """
CREATE TABLE src (id INTEGER PRIMARY KEY, label TEXT);
CREATE TABLE addr (entity TEXT, kind TEXT, zipcode TEXT, muni_nl TEXT, muni_fr TEXT,
    street_nl TEXT, street_fr TEXT, house TEXT, box TEXT, extra TEXT, src INT, line INT);
CREATE TABLE est (est TEXT, ent TEXT, start TEXT, src INT, line INT);
CREATE TABLE ent (ent TEXT, type TEXT, jform TEXT, start TEXT, src INT, line INT);
CREATE TABLE branch (id TEXT, ent TEXT);
CREATE TABLE den (entity TEXT, t TEXT, l TEXT, name TEXT);
CREATE TABLE con (entity TEXT, kind TEXT, value TEXT);
CREATE TABLE act (entity TEXT, items TEXT);  -- one row per entity (per run of rows)
CREATE TABLE nace_hit (entity TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE decl (number TEXT PRIMARY KEY, workers REAL, turnover REAL);
CREATE TABLE unit (unit_id TEXT PRIMARY KEY, ent TEXT, kind TEXT) WITHOUT ROWID;
"""

_NAME_TYPE = ("CASE t WHEN '001' THEN 'legal' WHEN '002' THEN 'abbreviation' "
              "WHEN '003' THEN 'commercial' WHEN '004' THEN 'branch' ELSE t END")
_NAME_ORDER = ("CASE t WHEN '003' THEN 0 WHEN '004' THEN 1 WHEN '001' THEN 2 "
               "WHEN '002' THEN 3 ELSE 9 END")
_LANG = ("CASE l WHEN '0' THEN '' WHEN '1' THEN 'fr' WHEN '2' THEN 'nl' WHEN '3' THEN 'de' "
         "WHEN '4' THEN 'en' ELSE l END")


def _names_select(entity: str, level: str, order: int) -> str:
    return (f"SELECT t, l, name, '{level}' AS lvl, {order} AS lo FROM den "
            f"WHERE den.entity = {entity}")


def _names_json(parts: str) -> str:
    """JSON array of name objects from `parts` (UNION ALL of _names_select), distinct and
    ordered: level, then commercial, branch, legal, abbreviation, then language and name."""
    return f"""(SELECT json_group_array(json_object('name', name, 'type', type, 'lang', lang,
                                               'level', lvl))
   FROM (SELECT DISTINCT trim(name) AS name, {_NAME_TYPE} AS type, {_LANG} AS lang, lvl, lo,
                {_NAME_ORDER} AS tord
         FROM ({parts})
         WHERE trim(name) <> ''
         ORDER BY lo, tord, lang, name))"""


# The enterprise side of every unit, computed once per enterprise and in number order (so
# the lookups into the staging tables are sequential), instead of once per unit at random.
ENTERPRISE_SIDE = """
CREATE TABLE ent_side (ent TEXT PRIMARY KEY, names TEXT, contacts TEXT, nace TEXT,
    street_fr TEXT, street_nl TEXT, house TEXT, box TEXT, zipcode TEXT, muni_fr TEXT,
    muni_nl TEXT, extra TEXT, jform TEXT, type TEXT, start TEXT) WITHOUT ROWID;
INSERT INTO ent_side
SELECT x.ent, {names},
  (SELECT json_group_array(json_array(kind, value))
   FROM (SELECT kind, value, 1 AS lo, rowid AS r FROM con WHERE con.entity = x.ent
         {branch_contacts}
         ORDER BY lo, r)),
  (SELECT group_concat(items, ';') FROM act WHERE act.entity = x.ent),
  s.street_fr, s.street_nl, s.house, s.box, s.zipcode, s.muni_fr, s.muni_nl, s.extra,
  e.jform, e.type, e.start
FROM (SELECT DISTINCT ent FROM unit ORDER BY ent) x
LEFT JOIN ent e ON e.ent = x.ent
LEFT JOIN addr s ON s.entity = x.ent AND s.kind = 'REGO'
ORDER BY x.ent;
"""
_BRANCH_NAMES = ("UNION ALL SELECT d.t, d.l, d.name, 'enterprise', 1 FROM branch b "
                 "JOIN den d ON d.entity = b.id WHERE b.ent = x.ent")
_BRANCH_CONTACTS = ("UNION ALL SELECT c.kind, c.value, 2, c.rowid FROM branch b "
                    "JOIN con c ON c.entity = b.id WHERE b.ent = x.ent")

# One row per unit, joined to its enterprise side; `finish_row` turns it into a
# register_units row (UNIT_COLUMNS order).
BUILD_QUERY = f"""
SELECT replace(u.unit_id, '.', ''), replace(u.ent, '.', ''),
  CASE WHEN u.kind = 'establishment' THEN replace(u.unit_id, '.', '') END,
  CASE WHEN u.kind = 'establishment' THEN
    {_names_json(_names_select("u.unit_id", "establishment", 0))} END,
  x.names,
  a.street_fr, a.street_nl, a.house, a.box, a.zipcode, a.muni_fr, a.muni_nl, a.extra,
  x.street_fr, x.street_nl, x.house, x.box, x.zipcode, x.muni_fr, x.muni_nl, x.extra,
  CASE WHEN u.kind = 'establishment' THEN
    (SELECT json_group_array(json_array(kind, value))
     FROM (SELECT kind, value FROM con WHERE con.entity = u.unit_id ORDER BY rowid)) END,
  x.contacts,
  CASE WHEN u.kind = 'establishment' THEN
    (SELECT group_concat(items, ';') FROM act WHERE act.entity = u.unit_id) END,
  x.nace,
  x.jform, coalesce(x.type = '1', 0),
  CASE WHEN u.kind = 'establishment' AND es.start IS NOT NULL THEN es.start ELSE x.start END,
  CASE WHEN du.number IS NOT NULL THEN du.workers ELSE de.workers END,
  CASE WHEN du.number IS NOT NULL THEN du.turnover ELSE de.turnover END,
  CASE WHEN du.number IS NOT NULL THEN 'establishment'
       WHEN de.number IS NOT NULL THEN 'enterprise' END
FROM unit u
JOIN ent_side x ON x.ent = u.ent
LEFT JOIN est es ON es.est = u.unit_id AND u.kind = 'establishment'
LEFT JOIN addr a ON a.entity = u.unit_id AND a.kind = 'BAET' AND u.kind = 'establishment'
LEFT JOIN decl du ON du.number = replace(u.unit_id, '.', '') AND u.kind = 'establishment'
LEFT JOIN decl de ON de.number = replace(u.ent, '.', '')
ORDER BY u.unit_id
"""


def enterprise_side_sql(with_branches: bool) -> str:
    parts = _names_select("x.ent", "enterprise", 1)
    if with_branches:
        parts += " " + _BRANCH_NAMES
    return ENTERPRISE_SIDE.format(names=_names_json(parts),
                                  branch_contacts=_BRANCH_CONTACTS if with_branches else "")


@dataclass
class KboOptions:
    region: Region | None = None          # None: the whole extract
    nace: tuple[str, ...] = ()            # keep only units with these NACE prefixes
    strict: bool = False
    default_country: str = "BE"
    encoding: str = "utf-8"
    delimiter: str = ","
    workdir: Path | None = None           # where the staging database goes
    declared: Path | None = None          # optional declared-activity CSV


class Staging:
    """A throw-away SQLite database tuned for bulk loading (no journal, no fsync)."""

    def __init__(self, workdir: Path | None, cache_mb: int = 256) -> None:
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="horeca-register-", dir=workdir))
        self.conn = sqlite3.connect(self.dir / "staging.sqlite", isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE",
                       f"cache_size = -{cache_mb * 1024}", "locking_mode = EXCLUSIVE"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.executescript(STAGING_SCHEMA)

    def load(self, sql: str, rows: Iterator[tuple]) -> int:
        self.conn.execute("BEGIN")
        cur = self.conn.executemany(sql, rows)
        self.conn.execute("COMMIT")
        return cur.rowcount

    def scalar(self, sql: str, params: tuple = ()) -> Any:
        return self.conn.execute(sql, params).fetchone()[0]

    def column(self, sql: str, params: tuple = ()) -> list:
        return [row[0] for row in self.conn.execute(sql, params)]

    def close(self) -> None:
        self.conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)


Rows = Iterator  # (line, values) or values tuples, as `iter_rows` yields them


class KboImport:
    """One import of a chain of KBO extracts; `run()` yields unit rows to write."""

    def __init__(self, chain: list[KboExtract], options: KboOptions, issues: RowIssues,
                 reporter: Reporter | None = None) -> None:
        self.chain = chain
        self.opts = options
        self.issues = issues
        self.reporter = reporter or Reporter()
        self.counts: dict[str, Any] = {}
        self.staging: Staging | None = None
        self._deletes: dict[str, list[frozenset[str]]] = {}

    # ------------------------------------------------------------------ driving

    def run(self) -> Iterator[tuple]:
        """Stage the extract, then yield one `register_units` row tuple per unit."""
        self.staging = Staging(self.opts.workdir)
        phases: dict[str, float] = {}
        cpu: dict[str, float] = {}
        self.counts["phase_seconds"] = phases
        self.counts["phase_cpu_seconds"] = cpu
        try:
            for phase in (self._read_deletes, self._stage_addresses,
                          self._stage_establishments, self._choose_units,
                          self._stage_missing_seats, self._stage_activities,
                          self._apply_nace_filter, self._stage_enterprises,
                          self._stage_branches, self._stage_denominations,
                          self._stage_contacts, self._stage_declared):
                started, started_cpu = time.monotonic(), time.process_time()
                phase()
                name = phase.__name__.lstrip("_")
                phases[name] = round(time.monotonic() - started, 1)
                cpu[name] = round(time.process_time() - started_cpu, 1)
            started, started_cpu = time.monotonic(), time.process_time()
            yield from self._build()
            # includes the time the caller spent writing the rows
            phases["build_and_write"] = round(time.monotonic() - started, 1)
            cpu["build_and_write"] = round(time.process_time() - started_cpu, 1)
        finally:
            self.staging.close()
            self.staging = None

    @property
    def st(self) -> Staging:
        assert self.staging is not None
        return self.staging

    @property
    def regional(self) -> bool:
        return self.opts.region is not None

    # ------------------------------------------------------------------ streaming

    def _read_deletes(self) -> None:
        for table in (*DATA_TABLES, *OPTIONAL_TABLES):
            self._deletes[table] = [frozenset()] + [
                read_deletes(x, table, encoding=self.opts.encoding,
                             delimiter=self.opts.delimiter, issues=self.issues)
                for x in self.chain[1:]]
        if len(self.chain) > 1:
            self.counts["update_deleted_entities"] = sum(
                len(s) for sets in self._deletes.values() for s in sets)

    def _layers(self, table: str) -> list[Layer]:
        return table_layers(self.chain, table, self._deletes[table])

    def _open(self, table: str, columns: tuple[str, ...]
              ) -> Iterator[tuple[int, str, io.BufferedReader, CsvLayout, Layer]]:
        """Each part of `table` across the chain, opened and past its checked header."""
        for layer in self._layers(table):
            source = layer.extract.source
            label = source.label(layer.member)
            src = self.st.conn.execute("INSERT INTO src (label) VALUES (?)", (label,)).lastrowid
            shown = layer.member if len(self.chain) == 1 else \
                f"{layer.extract.path.name}/{layer.member}"
            with self.reporter.stream(shown, source.size(layer.member)) as on_bytes, \
                    source.open(layer.member, on_bytes) as stream:
                layout = read_layout(stream, label, columns, encoding=self.opts.encoding,
                                     delimiter=self.opts.delimiter,
                                     expected_header=TABLES[table])
                yield src, label, stream, layout, layer

    def _stream(self, table: str, columns: tuple[str, ...], keys: KeyFilter | None = None,
                prefilter: Callable[[bytes], bool] | None = None, with_lines: bool = True,
                ) -> Iterator[tuple[int, Rows]]:
        """(source id, rows) per part of `table` across the chain. `columns[0]` must be
        the entity key that update deletes refer to."""
        for src, label, stream, layout, layer in self._open(table, columns):
            rows = iter_rows(stream, layout, label, columns, encoding=self.opts.encoding,
                             delimiter=self.opts.delimiter, issues=self.issues,
                             keys=keys, key_column=columns[0], prefilter=prefilter,
                             with_lines=with_lines)
            if layer.deleted_later:
                rows = _not_deleted(rows, layer.deleted_later, with_lines)
            yield src, rows

    def _label(self, src: int) -> str:
        return self.st.scalar("SELECT label FROM src WHERE id = ?", (src,))

    # ------------------------------------------------------------------ passes

    def _zip_prefilter(self) -> Callable[[bytes], bool] | None:
        """Raw-line test on address.csv's Zipcode (5th value), before any decoding."""
        region = self.opts.region
        if region is None:
            return None
        known: dict[bytes, bool] = {}

        def in_region(raw: bytes) -> bool:
            parts = raw.split(b'","', 5)
            if len(parts) < 6:
                return True  # malformed: let the parser report it
            hit = known.get(parts[4])
            if hit is None:
                hit = known[parts[4]] = region.contains_postcode(parts[4].decode("latin-1"))
            return hit

        return in_region

    def _stage_addresses(self) -> None:
        columns = ("EntityNumber", "TypeOfAddress", "Zipcode", "MunicipalityNL",
                   "MunicipalityFR", "StreetNL", "StreetFR", "HouseNumber", "Box",
                   "ExtraAddressInfo", "DateStrikingOff", "CountryNL", "CountryFR")
        region = self.opts.region
        cache: dict[tuple[str, str], bool] = {}

        def in_region(zipcode: str, country: str) -> bool:
            hit = cache.get((zipcode, country))
            if hit is None:
                # A foreign address can share its digits with a Belgian postcode.
                hit = cache[(zipcode, country)] = region is None or (
                    (not country or region.country != "BE")
                    and region.contains_postcode(zipcode))
            return hit

        def rows() -> Iterator[tuple]:
            for src, part in self._stream("address", columns, prefilter=self._zip_prefilter()):
                for line, v in part:
                    kind = v[1].strip().upper()
                    if kind not in ("BAET", "REGO"):
                        continue
                    if not in_region(v[2].strip(), (v[11] or v[12]).strip()):
                        continue
                    if v[10].strip():
                        self.issues.add("struck_off_address", self._label(src), line, v[0])
                        continue
                    yield (v[0].strip(), kind, v[2].strip() or None, *_blank_none(v[3:10]),
                           src, line)

        n = self.st.load("INSERT INTO addr VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows())
        self._drop_duplicates("addr", ("entity", "kind"), "address")
        self.st.conn.execute("CREATE INDEX addr_entity ON addr (entity, kind)")
        self.counts["addresses_staged"] = n

    def _stage_establishments(self) -> None:
        regional = self.regional
        unit_addr = KeyFilter.of(self.st.column(
            "SELECT entity FROM addr WHERE kind = 'BAET'")) if regional else None
        seated = KeyFilter.of(self.st.column(
            "SELECT entity FROM addr WHERE kind = 'REGO'")) if regional else None
        prefilter = None
        if unit_addr is not None and seated is not None:
            units_fast, seats_fast = unit_addr.fast, seated.fast

            def prefilter(raw: bytes) -> bool:
                # unit number first, enterprise number last on the line
                return raw[1:14] in units_fast or raw.rstrip(b"\r\n")[-13:] in seats_fast

        columns = ("EstablishmentNumber", "EnterpriseNumber", "StartDate")

        def rows() -> Iterator[tuple]:
            for src, part in self._stream("establishment", columns, prefilter=prefilter):
                for line, (est, ent, start) in part:
                    est, ent = est.strip(), ent.strip()
                    if regional and entity_digits(est) not in unit_addr.digits \
                            and entity_digits(ent) not in seated.digits:
                        continue
                    if not is_valid_enterprise_number(entity_digits(ent)):
                        self.issues.add("invalid_enterprise_number", self._label(src), line,
                                        f"unit {est} has enterprise number {ent!r}")
                        continue
                    yield est, ent, self._date(start, src, line), src, line

        self.st.load("INSERT INTO est VALUES (?,?,?,?,?)", rows())
        self._drop_duplicates("est", ("est",), "establishment")
        self.st.conn.execute("CREATE UNIQUE INDEX est_est ON est (est)")
        self.st.conn.execute("CREATE INDEX est_ent ON est (ent)")

    def _choose_units(self) -> None:
        st = self.st
        where = "" if not self.regional else (
            "WHERE est.est IN (SELECT entity FROM addr WHERE kind = 'BAET')")
        st.conn.execute(f"INSERT INTO unit SELECT est, ent, 'establishment' FROM est {where}")
        # Enterprises with a seat and no establishment unit at all: kept through the seat.
        seat_only = st.conn.execute(
            "SELECT a.entity, a.src, a.line FROM addr a WHERE a.kind = 'REGO' "
            "AND NOT EXISTS (SELECT 1 FROM est WHERE est.ent = a.entity)").fetchall()
        keep = []
        for entity, src, line in seat_only:
            if is_valid_enterprise_number(entity_digits(entity)):
                keep.append((entity, entity, "seat"))
            else:
                self.issues.add("invalid_enterprise_number", self._label(src), line,
                                f"seat address of {entity!r}")
        st.conn.executemany("INSERT OR IGNORE INTO unit VALUES (?,?,?)", keep)
        st.conn.execute("CREATE INDEX unit_ent ON unit (ent)")

    def _wanted(self, *, with_units: bool = True, with_branches: bool = False
                ) -> KeyFilter | None:
        """Entities whose rows the next pass keeps (None: everything, whole country)."""
        if not self.regional and not self.opts.nace:
            return None
        sql = "SELECT ent FROM unit"
        if with_units:
            sql += " UNION SELECT unit_id FROM unit"
        if with_branches:
            sql += " UNION SELECT id FROM branch"
        return KeyFilter.of(self.st.column(sql))

    def _stage_missing_seats(self) -> None:
        if not self.regional:
            return
        missing = self.st.column(
            "SELECT DISTINCT u.ent FROM unit u WHERE NOT EXISTS "
            "(SELECT 1 FROM addr a WHERE a.entity = u.ent AND a.kind = 'REGO')")
        if not missing:
            return
        keys = KeyFilter.of(missing)
        columns = ("EntityNumber", "TypeOfAddress", "Zipcode", "MunicipalityNL",
                   "MunicipalityFR", "StreetNL", "StreetFR", "HouseNumber", "Box",
                   "ExtraAddressInfo", "DateStrikingOff")

        def rows() -> Iterator[tuple]:
            for src, part in self._stream("address", columns, keys):
                for line, v in part:
                    if v[1].strip().upper() != "REGO" or v[10].strip():
                        continue
                    yield (v[0].strip(), "REGO", v[2].strip() or None, *_blank_none(v[3:10]),
                           src, line)

        self.st.load("INSERT INTO addr VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows())
        self._drop_duplicates("addr", ("entity", "kind"), "address")

    def _load_all(self, table: str, sql: str, columns: tuple[str, ...],
                  keys: KeyFilter | None) -> int:
        """Stream a table's wanted rows straight into staging (no Python per row)."""
        total = 0
        for _, rows in self._stream(table, columns, keys, with_lines=False):
            total += self.st.load(sql, rows)
        return total

    def _stage_activities(self) -> None:
        """One staging row per entity: its distinct (code, version, classification) items,
        packed and ordered. The extract lists an entity's rows together (the published
        files are sorted by number), so grouping consecutive rows turns 36 M rows into a
        few million without holding more than one entity in memory; an unsorted file
        only gives several rows per entity, merged when units are built."""
        keys = self._wanted() if self.regional else None
        prefixes = self.opts.nace
        hits: list[tuple[str]] = []

        def rows() -> Iterator[tuple[str, str]]:
            current: str | None = None
            items: dict[tuple[str, str, str], None] = {}
            for _, part in self._stream(
                    "activity", ("EntityNumber", "NaceCode", "NaceVersion", "Classification"),
                    keys, with_lines=False):
                for entity, code, version, cls in part:
                    if entity != current:
                        if items:
                            yield current, pack_nace(items)
                            if prefixes and matches_prefix(items, prefixes):
                                hits.append((current,))
                        current, items = entity, {}
                    items[(code, version, cls)] = None
            if items:
                yield current, pack_nace(items)
                if prefixes and matches_prefix(items, prefixes):
                    hits.append((current,))

        self.counts["activity_entities"] = self.st.load("INSERT INTO act VALUES (?,?)", rows())
        self.st.conn.execute("CREATE INDEX act_entity ON act (entity)")
        if prefixes:
            self.st.conn.executemany("INSERT OR IGNORE INTO nace_hit VALUES (?)", hits)

    def _apply_nace_filter(self) -> None:
        if not self.opts.nace:
            return
        before = self.st.scalar("SELECT count(*) FROM unit")
        self.st.conn.execute(
            "DELETE FROM unit WHERE NOT (kind = 'establishment' AND unit_id IN "
            "(SELECT entity FROM nace_hit)) AND ent NOT IN (SELECT entity FROM nace_hit)")
        self.counts["units_outside_nace_filter"] = before - self.st.scalar(
            "SELECT count(*) FROM unit")

    def _stage_enterprises(self) -> None:
        keys = self._wanted(with_units=False)
        columns = ("EnterpriseNumber", "TypeOfEnterprise", "JuridicalForm", "StartDate")

        def rows() -> Iterator[tuple]:
            for src, part in self._stream("enterprise", columns, keys):
                for line, (ent, kind, form, start) in part:
                    ent = ent.strip()
                    if not is_valid_enterprise_number(entity_digits(ent)):
                        self.issues.add("invalid_enterprise_number", self._label(src), line,
                                        f"{ent!r} fails the mod-97 check")
                        continue
                    yield (ent, kind.strip(), form.strip() or None,
                           self._date(start, src, line), src, line)

        self.counts["enterprises_staged"] = self.st.load(
            "INSERT INTO ent VALUES (?,?,?,?,?,?)", rows())
        self._drop_duplicates("ent", ("ent",), "enterprise")
        self.st.conn.execute("CREATE UNIQUE INDEX ent_ent ON ent (ent)")
        if not self.regional:
            # Natural persons with neither a seat nor a unit have no address to key on.
            self.counts["enterprises_without_address"] = self.st.scalar(
                "SELECT count(*) FROM ent WHERE NOT EXISTS "
                "(SELECT 1 FROM unit WHERE unit.ent = ent.ent)")

    def _stage_branches(self) -> None:
        if not self._layers("branch"):
            return
        keys = self._wanted(with_units=False)

        def rows() -> Iterator[tuple]:
            for _, part in self._stream("branch", ("Id", "EnterpriseNumber")):
                for _, (branch_id, ent) in part:
                    if keys is None or entity_digits(ent) in keys.digits:
                        yield branch_id.strip(), ent.strip()

        self.counts["branches_staged"] = self.st.load("INSERT INTO branch VALUES (?,?)", rows())
        self.st.conn.execute("CREATE INDEX branch_ent ON branch (ent)")

    def _stage_denominations(self) -> None:
        self.counts["denominations_staged"] = self._load_all(
            "denomination", "INSERT INTO den VALUES (?,?,?,?)",
            ("EntityNumber", "TypeOfDenomination", "Language", "Denomination"),
            self._wanted(with_branches=True))
        self.st.conn.execute("CREATE INDEX den_entity ON den (entity)")

    def _stage_contacts(self) -> None:
        keys = self._wanted(with_branches=True)
        country = self.opts.default_country
        unusable = {"phone": 0, "website": 0, "email": 0}

        def rows() -> Iterator[tuple]:
            for _, part in self._stream("contact", ("EntityNumber", "ContactType", "Value"),
                                        keys, with_lines=False):
                for entity, kind, value in part:
                    kind = kind.strip().upper()
                    if kind == "TEL":
                        norm, label = phone_e164(value, country), "phone"
                    elif kind == "WEB":
                        norm, label = normalize_url(value), "website"
                    elif kind == "EMAIL":
                        email = value.strip().lower()
                        norm, label = (email if "@" in email else None), "email"
                    else:
                        continue  # FAX and future types are not used for keying
                    if norm is None:
                        unusable[label] += 1
                        continue
                    yield entity.strip(), label, norm

        self.counts["contacts_staged"] = self.st.load("INSERT INTO con VALUES (?,?,?)", rows())
        self.counts["contacts_unusable"] = unusable
        self.st.conn.execute("CREATE INDEX con_entity ON con (entity)")

    def _stage_declared(self) -> None:
        if self.opts.declared is None:
            return
        rows = read_declared(self.opts.declared, self.issues)
        self.counts["declared_rows"] = self.st.load(
            "INSERT OR REPLACE INTO decl VALUES (?,?,?)", iter(rows))

    # ------------------------------------------------------------------ checks

    def _date(self, text: str, src: int, line: int) -> str | None:
        if not text or not text.strip():
            return None
        iso = kbo_date(text)
        if iso is None:
            self.issues.add("bad_date", self._label(src), line, f"{text!r} is not dd-mm-yyyy")
        return iso

    def _drop_duplicates(self, table: str, key: tuple[str, ...], what: str) -> None:
        """Keep the first row per key; report the repeats with file and line."""
        cols = ", ".join(key)
        dupes = self.st.conn.execute(
            f"SELECT {cols}, count(*) - 1 FROM {table} GROUP BY {cols} HAVING count(*) > 1"
        ).fetchall()
        if not dupes:
            return
        examples = []
        for row in dupes[:5]:
            where = " AND ".join(f"{c} = ?" for c in key)
            src, line = self.st.conn.execute(
                f"SELECT src, line FROM {table} WHERE {where} ORDER BY rowid LIMIT 1 OFFSET 1",
                row[:len(key)]).fetchone()
            examples.append(f"{self._label(src)}:{line}: {what} "
                            f"{' '.join(map(str, row[:len(key)]))} repeated")
        self.issues.add_many("duplicate_key", sum(row[-1] for row in dupes), examples)
        self.st.conn.execute(
            f"DELETE FROM {table} WHERE rowid NOT IN (SELECT min(rowid) FROM {table} "
            f"GROUP BY {cols})")

    # ------------------------------------------------------------------ building

    def _build(self) -> Iterator[tuple]:
        st = self.st
        total = st.scalar("SELECT count(*) FROM unit")
        tally = {"units": 0, "horeca_units": 0, "establishment_units": 0,
                 "seat_only_units": 0, "natural_person_units": 0, "units_without_address": 0}
        self.counts["tally"] = tally
        self.reporter.note("gathering each enterprise's names, contacts, NACE codes, seat")
        with_branches = bool(st.scalar("SELECT count(*) FROM branch"))
        st.conn.executescript(enterprise_side_sql(with_branches))
        with self.reporter.counting("building units", total) as advance:
            for n, row in enumerate(st.conn.execute(BUILD_QUERY), 1):
                row = finish_row(row)
                tally["units"] += 1
                tally["horeca_units"] += row[23]
                tally["natural_person_units"] += row[25]
                tally["establishment_units" if row[2] else "seat_only_units"] += 1
                if row[8] is None and row[4] is None and row[5] is None:
                    tally["units_without_address"] += 1
                if n % 10_000 == 0:
                    advance(10_000)
                yield row
            advance(total % 10_000)


def _not_deleted(rows: Rows, deleted: frozenset[str], with_lines: bool) -> Rows:
    if with_lines:
        return ((line, v) for line, v in rows if entity_digits(v[0]) not in deleted)
    return (v for v in rows if entity_digits(v[0]) not in deleted)


def _blank_none(values: tuple[str, ...]) -> tuple[str | None, ...]:
    return tuple((v.strip() or None) for v in values)


_CLASS_ORDER = {"MAIN": 0, "SECO": 1, "ANCI": 2}
_UNSAFE = re.compile(r"[^0-9A-Za-z]")


def pack_nace(items: dict[tuple[str, str, str], None]) -> str:
    """Distinct (code, version, classification) items -> 'code,version,class;...' ordered
    MAIN, SECO, ANCI, then version and code. Values are reduced to letters and digits
    (NACE codes without dots), so the separators can never occur inside one."""
    cleaned = []
    for code, version, cls in items:
        code, version, cls = code.strip(), version.strip(), cls.strip()
        if not (code.isalnum() and (version.isalnum() or not version)
                and (cls.isalnum() or not cls)):
            code, version, cls = (_UNSAFE.sub("", v) for v in (code, version, cls))
        if code:
            cleaned.append((_CLASS_ORDER.get(cls, 3), version, code, cls))
    cleaned.sort()
    return ";".join(f"{code},{version},{cls}" for _, version, code, cls in cleaned)


def matches_prefix(items: dict[tuple[str, str, str], None], prefixes: tuple[str, ...]) -> bool:
    return any(code.replace(".", "").strip().startswith(prefixes) for code, _, _ in items)


def nace_json(packed: str | None, level: str, seen: set[str]) -> list[str]:
    """JSON objects of one level's packed items, skipping those already in `seen`
    (several staging rows for one entity, from an unsorted file, may repeat items)."""
    out = []
    if not packed:
        return out
    for item in packed.split(";"):
        if item in seen:
            continue
        seen.add(item)
        code, version, cls = item.split(",")
        out.append(f'{{"code":"{code}","version":"{version}","classification":"{cls}",'
                   f'"level":"{level}"}}')
    return out


def _join_arrays(first: str | None, second: str | None) -> str | None:
    """Two JSON array texts -> one (None for empty): '[a]' + '[b]' -> '[a,b]'."""
    first = None if first in (None, "[]") else first
    second = None if second in (None, "[]") else second
    if first and second:
        return f"{first[:-1]},{second[1:]}"
    return first or second


def finish_row(row: tuple) -> tuple:
    """A BUILD_QUERY row -> a register_units row (UNIT_COLUMNS order): names and contacts
    of both levels joined, contacts split by kind, packed NACE items into the nace JSON and
    the HoReCa flag. A seat-only unit's address is its seat."""
    (unit_id, ent, est_no, unit_names, ent_names, *rest) = row
    unit_addr, seat = rest[0:8], rest[8:16]
    (unit_con, ent_con, unit_nace, ent_nace, jform, natural, start,
     workers, turnover, declared_level) = rest[16:]
    contacts = _join_arrays(unit_con, ent_con)
    phones = websites = emails = None
    if contacts is not None:
        phones, websites, emails = split_contacts(contacts)
    unit_items: set[str] = set()
    nace = nace_json(unit_nace, "establishment", unit_items)
    ent_items: set[str] = set()
    nace += nace_json(ent_nace, "enterprise", ent_items)
    horeca = int(any(item.startswith(HORECA_PREFIXES) for item in (*unit_items, *ent_items)))
    address = unit_addr if est_no else seat
    return (unit_id, ent, est_no, _join_arrays(unit_names, ent_names), *address, *seat[:7],
            phones, websites, emails, f"[{','.join(nace)}]" if nace else None, horeca,
            jform, natural, start, None, None, workers, turnover, declared_level)


_PHONE_SEPARATORS = str.maketrans("", "", " ./-")


def phone_e164(raw: str, default_country: str = "BE") -> str | None:
    """`normalize.to_e164`, with a shortcut for the shape most register phones have.

    A Belgian number written nationally ("02 513 51 51", "089/32.39.50", "0475 12 34 56")
    is parsed by libphonenumber to country code 32 and the digits after the leading 0, so
    building that number directly and checking it is valid gives what `to_e164` returns
    for it (its first step is exactly that parse), about ten times faster. Anything else,
    and every number the check rejects, goes through `to_e164` itself.
    """
    if default_country == "BE":
        digits = raw.translate(_PHONE_SEPARATORS)
        if 9 <= len(digits) <= 10 and digits.isdigit() and digits[0] == "0" \
                and digits[1] != "0":
            number = phonenumbers.PhoneNumber(country_code=32, national_number=int(digits[1:]))
            if phonenumbers.is_valid_number(number):
                return "+32" + digits[1:]
    return to_e164(raw, default_country)


def split_contacts(contacts_json: str) -> tuple[str | None, str | None, str | None]:
    """[[kind, value], ...] (unit level first) -> phones, websites, emails as JSON lists."""
    pairs = json.loads(contacts_json)
    return (to_json(unique(v for k, v in pairs if k == "phone")),
            to_json(unique(v for k, v in pairs if k == "website")),
            to_json(unique(v for k, v in pairs if k == "email")))


# ---------------------------------------------------------------------- declared activity

DECLARED_NUMBER = ("number", "enterprise_number", "establishment_number", "entity_number")


def _to_float(text: str) -> float | None:
    text = (text or "").strip().replace(" ", "").replace("\u00a0", "")
    if not text:
        return None
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    return float(text)


def read_declared(path: Path, issues: RowIssues) -> list[tuple[str, float | None, float | None]]:
    """A declared-activity CSV: a number column (enterprise or unit number, any spelling)
    and `workers` and/or `turnover`. Delimiter sniffed among , ; tab."""
    if not path.exists():
        raise UserError("declared-activity file not found", path=path, fix="check --declared")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError("the file is not valid UTF-8", path=path, line=1,
                        fix="save it as UTF-8") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    fields = {f.strip().lower(): f for f in reader.fieldnames or []}
    number_col = next((fields[c] for c in DECLARED_NUMBER if c in fields), None)
    workers_col, turnover_col = fields.get("workers"), fields.get("turnover")
    if number_col is None or (workers_col is None and turnover_col is None):
        raise UserError("the declared-activity file needs a 'number' column and 'workers' "
                        "and/or 'turnover'", path=path, line=1,
                        fix="header like: number,workers,turnover")
    out = []
    for i, rec in enumerate(reader, 2):
        number = re.sub(r"\D", "", rec.get(number_col) or "")
        if len(number) == 9:
            number = "0" + number
        if len(number) != 10 or not number.isdigit():
            issues.add("invalid_enterprise_number", str(path), i, f"{rec.get(number_col)!r}")
            continue
        try:
            workers = _to_float(rec.get(workers_col) or "") if workers_col else None
            turnover = _to_float(rec.get(turnover_col) or "") if turnover_col else None
        except ValueError:
            issues.add("bad_number", str(path), i, "workers/turnover not a number")
            continue
        out.append((number, workers, turnover))
    return out
