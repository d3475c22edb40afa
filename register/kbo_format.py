"""The KBO Open Data format: its files and headers, full extracts and update extracts.

A full extract holds `<table>.csv` for every table; an update extract holds
`<table>_delete.csv` (the entity numbers whose rows in that table are removed) and
`<table>_insert.csv` (the rows that replace them). Both hold `meta.csv`. A chain is a full
extract followed by updates, applied in order: for each update, deletes first, then
inserts. Streaming a table through a chain therefore means: rows of layer i (the full
table, or the inserts of update i) survive unless a later update deletes their entity.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from horeca.errors import UserError
from horeca.register.issues import RowIssues
from horeca.register.reader import Source, entity_digits, iter_rows, read_layout

TABLES: dict[str, tuple[str, ...]] = {
    "meta": ("Variable", "Value"),
    "code": ("Category", "Code", "Language", "Description"),
    "enterprise": ("EnterpriseNumber", "Status", "JuridicalSituation", "TypeOfEnterprise",
                   "JuridicalForm", "JuridicalFormCAC", "StartDate"),
    "establishment": ("EstablishmentNumber", "StartDate", "EnterpriseNumber"),
    "denomination": ("EntityNumber", "Language", "TypeOfDenomination", "Denomination"),
    "address": ("EntityNumber", "TypeOfAddress", "CountryNL", "CountryFR", "Zipcode",
                "MunicipalityNL", "MunicipalityFR", "StreetNL", "StreetFR", "HouseNumber",
                "Box", "ExtraAddressInfo", "DateStrikingOff"),
    "contact": ("EntityNumber", "EntityContact", "ContactType", "Value"),
    "activity": ("EntityNumber", "ActivityGroup", "NaceVersion", "NaceCode", "Classification"),
    "branch": ("Id", "StartDate", "EnterpriseNumber"),
}
# The tables a register import reads; code.csv is not needed.
DATA_TABLES = ("enterprise", "establishment", "denomination", "address", "contact", "activity")
OPTIONAL_TABLES = ("branch",)
# The columns the import reads; a file lacking one of them is refused up front.
USED: dict[str, tuple[str, ...]] = {
    "enterprise": ("EnterpriseNumber", "TypeOfEnterprise", "JuridicalForm", "StartDate"),
    "establishment": ("EstablishmentNumber", "EnterpriseNumber", "StartDate"),
    "denomination": ("EntityNumber", "TypeOfDenomination", "Language", "Denomination"),
    "address": ("EntityNumber", "TypeOfAddress", "Zipcode", "MunicipalityNL",
                "MunicipalityFR", "StreetNL", "StreetFR", "HouseNumber", "Box",
                "ExtraAddressInfo", "DateStrikingOff", "CountryNL", "CountryFR"),
    "contact": ("EntityNumber", "ContactType", "Value"),
    "activity": ("EntityNumber", "NaceVersion", "NaceCode", "Classification"),
    "branch": ("Id", "EnterpriseNumber"),
}
# Column an update's <table>_delete.csv names the removed entities by.
ENTITY_KEY: dict[str, str] = {
    "enterprise": "EnterpriseNumber", "establishment": "EstablishmentNumber", "branch": "Id",
    "denomination": "EntityNumber", "address": "EntityNumber", "contact": "EntityNumber",
    "activity": "EntityNumber",
}

_DATE = re.compile(r"^\s*(\d{1,2})-(\d{1,2})-(\d{4})\s*$")


def kbo_date(text: str | None) -> str | None:
    """'07-03-2025' -> '2025-03-07'; None for empty or malformed values."""
    if not text:
        return None
    if len(text) == 10 and text[2] == "-" and text[5] == "-":  # the usual shape: no regex
        day, month, year = text[:2], text[3:5], text[6:]
        if day.isdigit() and month.isdigit() and year.isdigit() and (
                "01" <= month <= "12" and "01" <= day <= "31"):
            return f"{year}-{month}-{day}"
        return None
    match = _DATE.match(text)
    if not match:
        return None
    day, month, year = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def detect_kind(source: Source) -> str | None:
    """'full', 'update', or None when the folder/zip is not a KBO extract."""
    if source.has("enterprise.csv") or source.has("activity.csv"):
        return "full"
    if any(source.has(f"{t}_insert.csv") or source.has(f"{t}_delete.csv") for t in DATA_TABLES):
        return "update"
    return None


@dataclass
class KboExtract:
    """One extract (full or update) with its meta.csv values."""

    source: Source
    kind: str
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def snapshot_date(self) -> str | None:
        return kbo_date(self.meta.get("SnapshotDate"))

    @property
    def extract_number(self) -> str | None:
        return self.meta.get("ExtractNumber") or None

    def member(self, table: str, part: str | None = None) -> str:
        return f"{table}_{part}.csv" if part else f"{table}.csv"

    def required_members(self) -> list[str]:
        if self.kind == "full":
            return ["meta.csv", *(f"{t}.csv" for t in DATA_TABLES)]
        return ["meta.csv", *(f"{t}_{p}.csv" for t in DATA_TABLES for p in ("delete", "insert"))]


def open_extract(path: Path, *, encoding: str = "utf-8", delimiter: str = ",") -> KboExtract:
    """Recognise a KBO extract (zip or folder), check its files are all there, read meta."""
    source = Source(path)
    kind = detect_kind(source)
    if kind is None:
        source.close()
        raise UserError(
            "not a KBO Open Data extract (no enterprise.csv, activity.csv or *_insert.csv "
            "inside)", path=path,
            fix="pass the zip or folder of the KBO extract, or for another register "
                "--format csv --mapping MAPPING.toml")
    extract = KboExtract(source, kind)
    missing = [m for m in extract.required_members() if not source.has(m)]
    if missing:
        source.close()
        raise UserError(f"the {kind} extract lacks {', '.join(missing)}", path=path,
                        fix="download the complete extract again (every file of the zip is "
                            "needed)")
    extract.meta = read_meta(source, encoding=encoding, delimiter=delimiter)
    check_headers(extract, encoding=encoding, delimiter=delimiter)
    declared = (extract.meta.get("ExtractType") or "").strip().lower()
    if declared in ("full", "update") and declared != kind:
        source.close()
        raise UserError(f"meta.csv says ExtractType={declared} but the files are those of a "
                        f"{kind} extract", path=source.label("meta.csv"),
                        fix="download the extract again; the zip looks mixed up")
    return extract


def check_headers(extract: KboExtract, *, encoding: str, delimiter: str) -> None:
    """Every file's header (and the encoding of its first block) before any streaming, so
    a wrong file fails in a second rather than after minutes of reading the others."""
    for table in (*DATA_TABLES, *OPTIONAL_TABLES):
        parts = [None] if extract.kind == "full" else ["delete", "insert"]
        for part in parts:
            member = extract.member(table, part)
            if not extract.source.has(member):
                continue
            wanted = (ENTITY_KEY[table],) if part == "delete" else USED[table]
            expected = (ENTITY_KEY[table],) if part == "delete" else TABLES[table]
            with extract.source.open(member) as stream:
                read_layout(stream, extract.source.label(member), wanted, encoding=encoding,
                            delimiter=delimiter, expected_header=expected)


def read_meta(source: Source, *, encoding: str, delimiter: str) -> dict[str, str]:
    label = source.label("meta.csv")
    with source.open("meta.csv") as stream:
        layout = read_layout(stream, label, TABLES["meta"], encoding=encoding,
                             delimiter=delimiter, expected_header=TABLES["meta"])
        rows = iter_rows(stream, layout, label, ("Variable", "Value"), encoding=encoding,
                         delimiter=delimiter, issues=RowIssues())
        return {name.strip(): value.strip() for _, (name, value) in rows}


def check_chain(chain: list[KboExtract]) -> None:
    """A full extract first, then updates whose extract numbers follow one another."""
    if not chain:
        raise UserError("no extract given", fix="pass the KBO zip or folder")
    if chain[0].kind != "full":
        raise UserError("an update extract needs the full extract it applies to",
                        path=chain[0].path,
                        fix="pass the full extract first: horeca register import FULL.zip "
                            "UPDATE.zip (or import a full extract for this region first)")
    for previous, current in itertools.pairwise(chain):
        if current.kind != "update":
            raise UserError("only the first extract may be a full one", path=current.path,
                            fix="import a full extract on its own, or pass FULL then UPDATEs")
        before, now = previous.extract_number, current.extract_number
        if before and now and before.isdigit() and now.isdigit() and int(now) != int(before) + 1:
            raise UserError(
                f"update {now} does not follow extract {before}", path=current.path,
                fix=f"apply the updates in order, starting with extract {int(before) + 1}")


@dataclass
class Layer:
    """One part of a table in a chain: the rows to read and the entities deleted later."""

    extract: KboExtract
    member: str
    deleted_later: frozenset[str]


def table_layers(chain: list[KboExtract], table: str, deletes: list[frozenset[str]]
                 ) -> list[Layer]:
    """`deletes[i]` are the entities update chain[i] deletes from `table` (empty for i=0)."""
    layers: list[Layer] = []
    for i, extract in enumerate(chain):
        member = extract.member(table, None if i == 0 else "insert")
        if not extract.source.has(member):
            continue  # an optional table (branch.csv) this extract does not have
        layers.append(Layer(extract, member, frozenset().union(*deletes[i + 1:])))
    return layers


def read_deletes(extract: KboExtract, table: str, *, encoding: str, delimiter: str,
                 issues: RowIssues) -> frozenset[str]:
    """Entity numbers (digits) that an update removes from `table`."""
    member = extract.member(table, "delete")
    if not extract.source.has(member):
        return frozenset()
    key = ENTITY_KEY[table]
    label = extract.source.label(member)
    with extract.source.open(member) as stream:
        layout = read_layout(stream, label, (key,), encoding=encoding, delimiter=delimiter,
                             expected_header=(key,))
        rows: Iterator = iter_rows(stream, layout, label, (key,), encoding=encoding,
                                   delimiter=delimiter, issues=issues, key_column=key)
        return frozenset(entity_digits(value) for _, (value,) in rows)


def _quoted(values: list[str]) -> str:
    return ",".join('"' + str(v).replace('"', '""') + '"' for v in values)


def write_table(path: Path, table: str, rows: list[dict[str, str]] | list[list[str]], *,
                columns: tuple[str, ...] | None = None, line_end: str = "\r\n") -> None:
    """Write one table in the published layout (header, every value quoted, CRLF).

    Rows are dicts (missing columns written empty) or lists in header order. Used to
    build small extracts for tests and examples; the demo world has its own generator.
    """
    header = columns or TABLES[table]
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(_quoted(list(header)) + line_end)
        for row in rows:
            values = [row.get(c, "") for c in header] if isinstance(row, dict) else row
            out.write(_quoted([str(v) for v in values]) + line_end)


def write_extract(folder: Path, tables: dict[str, list], *, meta: dict[str, str] | None = None,
                  kind: str = "full") -> Path:
    """A KBO extract folder: `tables` maps 'activity' (full) or 'activity_insert' /
    'activity_delete' (update) to rows. meta.csv gets SnapshotDate, ExtractNumber,..."""
    folder.mkdir(parents=True, exist_ok=True)
    values = {"SnapshotDate": "01-03-2025", "ExtractTimestamp": "02-03-2025 06:00:00",
              "ExtractType": kind, "ExtractNumber": "140", "Version": "1.0.0", **(meta or {})}
    write_table(folder / "meta.csv", "meta", [[k, v] for k, v in values.items()])
    for name, rows in tables.items():
        table, _, part = name.partition("_")
        columns = (ENTITY_KEY[table],) if part == "delete" else TABLES[table]
        write_table(folder / f"{name}.csv", table, rows, columns=columns)
    return folder
