"""KBO Open Data -> register units, streamed, filtered while reading, bounded in memory.

The extract is read table by table into a throw-away staging SQLite database, keeping
only the rows the import needs, then units are assembled by one ordered query over the
staging tables. Memory holds only the sets of wanted entity numbers (the region's), never
the rows: a national import without filters keeps everything on disk.

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
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    KeyFilter,
    entity_digits,
    iter_rows,
    read_layout,
)
from horeca.register.units import (
    is_horeca,
    merge_names,
    nace_entries,
    name_entries,
    unique,
    unit_row,
)

STAGING_SCHEMA = """
CREATE TABLE src (id INTEGER PRIMARY KEY, label TEXT);
CREATE TABLE addr (entity TEXT, kind TEXT, zipcode TEXT, muni_nl TEXT, muni_fr TEXT,
    street_nl TEXT, street_fr TEXT, house TEXT, box TEXT, extra TEXT, src INT, line INT);
CREATE TABLE est (est TEXT, ent TEXT, start TEXT, src INT, line INT);
CREATE TABLE ent (ent TEXT, type TEXT, jform TEXT, start TEXT, src INT, line INT);
CREATE TABLE branch (id TEXT, ent TEXT);
CREATE TABLE den (entity TEXT, type TEXT, lang TEXT, name TEXT);
CREATE TABLE con (entity TEXT, kind TEXT, value TEXT);
CREATE TABLE act (entity TEXT, version TEXT, code TEXT, class TEXT);
CREATE TABLE decl (number TEXT PRIMARY KEY, workers REAL, turnover REAL);
CREATE TABLE unit (unit_id TEXT PRIMARY KEY, ent TEXT, kind TEXT) WITHOUT ROWID;
"""

BUILD_QUERY = """
SELECT u.unit_id, u.ent, u.kind, es.start, e.type, e.jform, e.start,
  ua.street_fr, ua.street_nl, ua.house, ua.box, ua.zipcode, ua.muni_fr, ua.muni_nl, ua.extra,
  sa.street_fr, sa.street_nl, sa.house, sa.box, sa.zipcode, sa.muni_fr, sa.muni_nl, sa.extra,
  (SELECT json_group_array(json_array(type, lang, name)) FROM den
     WHERE den.entity = u.unit_id AND u.kind = 'establishment'),
  (SELECT json_group_array(json_array(type, lang, name)) FROM den WHERE den.entity = u.ent),
  (SELECT json_group_array(json_array(d.type, d.lang, d.name)) FROM branch b
     JOIN den d ON d.entity = b.id WHERE b.ent = u.ent),
  (SELECT json_group_array(json_array(kind, value)) FROM con
     WHERE con.entity = u.unit_id AND u.kind = 'establishment'),
  (SELECT json_group_array(json_array(kind, value)) FROM con WHERE con.entity = u.ent),
  (SELECT json_group_array(json_array(c.kind, c.value)) FROM branch b
     JOIN con c ON c.entity = b.id WHERE b.ent = u.ent),
  (SELECT json_group_array(json_array(version, code, class)) FROM act
     WHERE act.entity = u.unit_id AND u.kind = 'establishment'),
  (SELECT json_group_array(json_array(version, code, class)) FROM act WHERE act.entity = u.ent),
  (SELECT json_array(workers, turnover) FROM decl
     WHERE decl.number = u.unit_id AND u.kind = 'establishment'),
  (SELECT json_array(workers, turnover) FROM decl WHERE decl.number = u.ent)
FROM unit u
LEFT JOIN est es ON es.est = u.unit_id AND u.kind = 'establishment'
LEFT JOIN ent e ON e.ent = u.ent
LEFT JOIN addr ua ON ua.entity = u.unit_id AND ua.kind = 'BAET' AND u.kind = 'establishment'
LEFT JOIN addr sa ON sa.entity = u.ent AND sa.kind = 'REGO'
ORDER BY u.unit_id
"""


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


@dataclass
class KboBuild:
    """Counts gathered while staging and building, for the summary and the snapshot."""

    counts: dict[str, Any] = field(default_factory=dict)


class Staging:
    """A throw-away SQLite database tuned for bulk loading (no journal, no fsync)."""

    def __init__(self, workdir: Path | None) -> None:
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="horeca-register-", dir=workdir))
        self.conn = sqlite3.connect(self.dir / "staging.sqlite", isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE",
                       "cache_size = -131072", "locking_mode = EXCLUSIVE"):
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
        self._postcode_cache: dict[tuple[str, str], bool] = {}

    # ------------------------------------------------------------------ driving

    def run(self) -> Iterator[tuple]:
        """Stage the extract, then yield one `register_units` row tuple per unit."""
        self.staging = Staging(self.opts.workdir)
        try:
            self._read_deletes()
            self._stage_addresses()
            self._stage_establishments()
            self._choose_units()
            self._stage_missing_seats()
            self._stage_activities()
            self._apply_nace_filter()
            self._stage_enterprises()
            self._stage_branches()
            self._stage_denominations()
            self._stage_contacts()
            self._stage_declared()
            yield from self._build()
        finally:
            self.staging.close()
            self.staging = None

    @property
    def st(self) -> Staging:
        assert self.staging is not None
        return self.staging

    # ------------------------------------------------------------------ streaming

    def _read_deletes(self) -> None:
        for table in (*DATA_TABLES, *OPTIONAL_TABLES):
            self._deletes[table] = [frozenset()] + [
                read_deletes(x, table, encoding=self.opts.encoding,
                             delimiter=self.opts.delimiter, issues=self.issues)
                for x in self.chain[1:]]
        deleted = sum(len(s) for sets in self._deletes.values() for s in sets)
        if len(self.chain) > 1:
            self.counts["update_deleted_entities"] = deleted

    def _layers(self, table: str) -> list[Layer]:
        return table_layers(self.chain, table, self._deletes[table])

    def _stream(self, table: str, columns: tuple[str, ...], keys: KeyFilter | None = None,
                ) -> Iterator[tuple[int, int, tuple[str, ...]]]:
        """(source id, line, values) of `table` across the chain; `columns[0]` is the
        entity key that update deletes refer to."""
        for layer in self._layers(table):
            source = layer.extract.source
            label = source.label(layer.member)
            src = self.st.conn.execute("INSERT INTO src (label) VALUES (?)", (label,)).lastrowid
            deleted = layer.deleted_later
            shown = layer.member if len(self.chain) == 1 else \
                f"{layer.extract.path.name}/{layer.member}"
            with self.reporter.stream(shown, source.size(layer.member)) as on_bytes, \
                    source.open(layer.member, on_bytes) as stream:
                layout = read_layout(stream, label, columns, encoding=self.opts.encoding,
                                     delimiter=self.opts.delimiter,
                                     expected_header=TABLES[table])
                rows = iter_rows(stream, layout, label, columns, encoding=self.opts.encoding,
                                 delimiter=self.opts.delimiter, issues=self.issues,
                                 keys=keys, key_column=columns[0])
                for line, values in rows:
                    if deleted and entity_digits(values[0]) in deleted:
                        continue
                    yield src, line, values

    def _label(self, src: int) -> str:
        return self.st.scalar("SELECT label FROM src WHERE id = ?", (src,))

    # ------------------------------------------------------------------ passes

    def _in_region(self, zipcode: str, country: str) -> bool:
        region = self.opts.region
        if region is None:
            return True
        key = (zipcode, country)
        hit = self._postcode_cache.get(key)
        if hit is None:
            # A foreign address can share digits with a Belgian postcode.
            hit = (not country or region.country != "BE") and region.contains_postcode(zipcode)
            self._postcode_cache[key] = hit
        return hit

    def _stage_addresses(self) -> None:
        columns = ("EntityNumber", "TypeOfAddress", "Zipcode", "MunicipalityNL",
                   "MunicipalityFR", "StreetNL", "StreetFR", "HouseNumber", "Box",
                   "ExtraAddressInfo", "DateStrikingOff", "CountryNL", "CountryFR")

        def rows() -> Iterator[tuple]:
            for src, line, v in self._stream("address", columns):
                kind = v[1].strip().upper()
                if kind not in ("BAET", "REGO"):
                    continue
                if not self._in_region(v[2].strip(), (v[11] or v[12]).strip()):
                    continue
                if v[10].strip():
                    self.issues.add("struck_off_address", self._label(src), line, v[0])
                    continue
                yield (entity_digits(v[0]), kind, v[2].strip() or None, *_blank_none(v[3:10]),
                       src, line)

        n = self.st.load("INSERT INTO addr VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows())
        self._drop_duplicates("addr", ("entity", "kind"), "address")
        self.st.conn.execute("CREATE INDEX addr_entity ON addr (entity, kind)")
        self.counts["addresses_read"] = n

    def _stage_establishments(self) -> None:
        whole = self.opts.region is None
        unit_addr = set() if whole else set(
            self.st.column("SELECT entity FROM addr WHERE kind = 'BAET'"))
        seated = set() if whole else set(
            self.st.column("SELECT entity FROM addr WHERE kind = 'REGO'"))
        columns = ("EstablishmentNumber", "EnterpriseNumber", "StartDate")

        def rows() -> Iterator[tuple]:
            for src, line, (est, ent, start) in self._stream("establishment", columns):
                est_d, ent_d = entity_digits(est), entity_digits(ent)
                if not whole and est_d not in unit_addr and ent_d not in seated:
                    continue
                if not is_valid_enterprise_number(ent_d):
                    self.issues.add("invalid_enterprise_number", self._label(src), line,
                                    f"unit {est} has enterprise number {ent!r}")
                    continue
                yield est_d, ent_d, self._date(start, src, line), src, line

        self.st.load("INSERT INTO est VALUES (?,?,?,?,?)", rows())
        self._drop_duplicates("est", ("est",), "establishment")
        self.st.conn.execute("CREATE UNIQUE INDEX est_est ON est (est)")
        self.st.conn.execute("CREATE INDEX est_ent ON est (ent)")

    def _choose_units(self) -> None:
        st = self.st
        where = "" if self.opts.region is None else (
            "WHERE est.est IN (SELECT entity FROM addr WHERE kind = 'BAET')")
        st.conn.execute(f"INSERT INTO unit SELECT est, ent, 'establishment' FROM est {where}")
        # Enterprises with a seat and no establishment unit at all: kept through the seat.
        seat_only = st.conn.execute(
            "SELECT a.entity, a.src, a.line FROM addr a WHERE a.kind = 'REGO' "
            "AND NOT EXISTS (SELECT 1 FROM est WHERE est.ent = a.entity)").fetchall()
        keep = []
        for entity, src, line in seat_only:
            if is_valid_enterprise_number(entity):
                keep.append((entity, entity, "seat"))
            else:
                self.issues.add("invalid_enterprise_number", self._label(src), line,
                                f"seat address of {entity!r}")
        st.conn.executemany("INSERT OR IGNORE INTO unit VALUES (?,?,?)", keep)
        st.conn.execute("CREATE INDEX unit_ent ON unit (ent)")

    def _wanted(self, *, with_units: bool = True, with_branches: bool = False) -> KeyFilter | None:
        """Entities whose rows the next pass keeps (None: everything, whole-country)."""
        if self.opts.region is None and not self.opts.nace:
            return None
        sql = "SELECT ent FROM unit"
        if with_units:
            sql += " UNION SELECT unit_id FROM unit"
        if with_branches:
            sql += " UNION SELECT id FROM branch"
        return KeyFilter.of(self.st.column(sql))

    def _stage_missing_seats(self) -> None:
        if self.opts.region is None:
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
            for src, line, v in self._stream("address", columns, keys):
                if v[1].strip().upper() != "REGO" or v[10].strip():
                    continue
                yield (entity_digits(v[0]), "REGO", v[2].strip() or None,
                       *_blank_none(v[3:10]), src, line)

        self.st.load("INSERT INTO addr VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows())
        self._drop_duplicates("addr", ("entity", "kind"), "address")

    def _stage_activities(self) -> None:
        keys = self._wanted() if self.opts.region is not None else None

        def rows() -> Iterator[tuple]:
            for _, _, (entity, version, code, cls) in self._stream(
                    "activity", ("EntityNumber", "NaceVersion", "NaceCode", "Classification"),
                    keys):
                yield entity_digits(entity), version, code.replace(".", ""), cls

        self.counts["activity_rows"] = self.st.load("INSERT INTO act VALUES (?,?,?,?)", rows())
        self.reporter.note("indexing activities")
        self.st.conn.execute("CREATE INDEX act_entity ON act (entity)")

    def _apply_nace_filter(self) -> None:
        if not self.opts.nace:
            return
        match = " OR ".join("code LIKE ?" for _ in self.opts.nace)
        params = tuple(f"{p}%" for p in self.opts.nace)
        before = self.st.scalar("SELECT count(*) FROM unit")
        self.st.conn.execute(
            f"DELETE FROM unit WHERE NOT EXISTS (SELECT 1 FROM act WHERE act.entity = "
            f"unit.unit_id AND unit.kind = 'establishment' AND ({match})) AND NOT EXISTS "
            f"(SELECT 1 FROM act WHERE act.entity = unit.ent AND ({match}))", params + params)
        self.counts["units_outside_nace_filter"] = before - self.st.scalar(
            "SELECT count(*) FROM unit")

    def _stage_enterprises(self) -> None:
        keys = self._wanted(with_units=False)
        columns = ("EnterpriseNumber", "TypeOfEnterprise", "JuridicalForm", "StartDate")

        def rows() -> Iterator[tuple]:
            for src, line, (ent, kind, form, start) in self._stream("enterprise", columns, keys):
                digits = entity_digits(ent)
                if not is_valid_enterprise_number(digits):
                    self.issues.add("invalid_enterprise_number", self._label(src), line,
                                    f"{ent!r} fails the mod-97 check")
                    continue
                yield (digits, kind.strip(), form.strip() or None,
                       self._date(start, src, line), src, line)

        self.counts["enterprises_read"] = self.st.load(
            "INSERT INTO ent VALUES (?,?,?,?,?,?)", rows())
        self._drop_duplicates("ent", ("ent",), "enterprise")
        self.st.conn.execute("CREATE UNIQUE INDEX ent_ent ON ent (ent)")
        if self.opts.region is None:
            # Natural persons with neither a seat nor a unit have no address to key on.
            self.counts["enterprises_without_address"] = self.st.scalar(
                "SELECT count(*) FROM ent WHERE NOT EXISTS "
                "(SELECT 1 FROM unit WHERE unit.ent = ent.ent)")

    def _stage_branches(self) -> None:
        if not self._layers("branch"):
            return
        keys = self._wanted(with_units=False)
        wanted = keys.digits if keys is not None else None

        def rows() -> Iterator[tuple]:
            for _, _, (branch_id, ent) in self._stream("branch", ("Id", "EnterpriseNumber")):
                ent_d = entity_digits(ent)
                if wanted is None or ent_d in wanted:
                    yield entity_digits(branch_id), ent_d

        self.st.load("INSERT INTO branch VALUES (?,?)", rows())
        self.st.conn.execute("CREATE INDEX branch_ent ON branch (ent)")

    def _stage_denominations(self) -> None:
        keys = self._wanted(with_branches=True)
        columns = ("EntityNumber", "TypeOfDenomination", "Language", "Denomination")

        def rows() -> Iterator[tuple]:
            for _, _, (entity, kind, lang, name) in self._stream("denomination", columns, keys):
                yield entity_digits(entity), kind.strip(), lang.strip(), name.strip()

        self.counts["denominations_read"] = self.st.load(
            "INSERT INTO den VALUES (?,?,?,?)", rows())
        self.st.conn.execute("CREATE INDEX den_entity ON den (entity)")

    def _stage_contacts(self) -> None:
        keys = self._wanted(with_branches=True)
        country = self.opts.default_country
        unusable = {"phone": 0, "website": 0, "email": 0}

        def rows() -> Iterator[tuple]:
            for _, _, (entity, kind, value) in self._stream(
                    "contact", ("EntityNumber", "ContactType", "Value"), keys):
                kind = kind.strip().upper()
                if kind == "TEL":
                    norm, label = to_e164(value, country), "phone"
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
                yield entity_digits(entity), label, norm

        self.counts["contacts_read"] = self.st.load("INSERT INTO con VALUES (?,?,?)", rows())
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
        with self.reporter.counting("building units", total) as advance:
            for n, row in enumerate(st.conn.execute(BUILD_QUERY), 1):
                unit = assemble_unit(row)
                tally["units"] += 1
                tally["horeca_units"] += unit["horeca"]
                tally["natural_person_units"] += unit["natural_person"]
                tally["establishment_units" if unit["establishment_number"]
                      else "seat_only_units"] += 1
                if not unit["postcode"] and not unit["street_fr"] and not unit["street_nl"]:
                    tally["units_without_address"] += 1
                if n % 10_000 == 0:
                    advance(10_000)
                yield unit_row(unit)
            advance(total % 10_000)


def _blank_none(values: tuple[str, ...]) -> tuple[str | None, ...]:
    return tuple((v.strip() or None) for v in values)


def assemble_unit(row: tuple) -> dict[str, Any]:
    """One BUILD_QUERY row -> a unit dict (columns of register_units)."""
    (unit_id, ent, kind, est_start, ent_type, jform, ent_start, *rest) = row
    unit_addr, seat_addr = rest[0:8], rest[8:16]
    (names_u, names_e, names_b, con_u, con_e, con_b, act_u, act_e, decl_u, decl_e) = rest[16:]
    names = merge_names(
        name_entries(json.loads(names_u or "[]"), "establishment"),
        name_entries(json.loads(names_e) + json.loads(names_b), "enterprise"))
    contacts = json.loads(con_u or "[]") + json.loads(con_e) + json.loads(con_b)
    nace = (nace_entries(json.loads(act_u or "[]"), "establishment")
            + nace_entries(json.loads(act_e), "enterprise"))
    address = seat_addr if kind == "seat" else unit_addr
    declared, level = None, None
    if decl_u:
        declared, level = json.loads(decl_u), "establishment"
    elif decl_e:
        declared, level = json.loads(decl_e), "enterprise"
    return {
        "unit_id": unit_id,
        "enterprise_number": ent,
        "establishment_number": unit_id if kind == "establishment" else None,
        "names": names,
        "street_fr": address[0], "street_nl": address[1], "house_number": address[2],
        "box": address[3], "postcode": address[4], "municipality_fr": address[5],
        "municipality_nl": address[6], "address_extra": address[7],
        "seat_street_fr": seat_addr[0], "seat_street_nl": seat_addr[1],
        "seat_house_number": seat_addr[2], "seat_box": seat_addr[3],
        "seat_postcode": seat_addr[4], "seat_municipality_fr": seat_addr[5],
        "seat_municipality_nl": seat_addr[6],
        "phones": unique(v for k, v in contacts if k == "phone"),
        "websites": unique(v for k, v in contacts if k == "website"),
        "emails": unique(v for k, v in contacts if k == "email"),
        "nace": nace,
        "horeca": int(is_horeca(e["code"] for e in nace)),
        "juridical_form": jform,
        "natural_person": int(ent_type == "1"),
        "start_date": est_start if kind == "establishment" and est_start else ent_start,
        "declared_workers": declared[0] if declared else None,
        "declared_turnover": declared[1] if declared else None,
        "declared_level": level,
    }


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
