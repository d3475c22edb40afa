"""`horeca listings import`: listings gathered elsewhere, through the same chain as a crawl.

The file is CSV or JSON lines with any column names; a mapping TOML says which column
holds which listing field:

    [columns]                 # listing field = the file's column (JSON: "a.b" for nesting)
    source_id = "ID"
    name = "Business name"
    address_raw = "Address"
    phone_raw = "Tel"

    [options]                 # all optional
    format = "csv"            # csv | jsonl (default: from the file's extension)
    delimiter = ";"           # csv only (default ",")
    encoding = "utf-8"
    default_country = "BE"

Each row goes through the gate's `minimise()` for the named source and the same steps as
a crawl (`horeca.spiders.steps`), then is upserted on "<source>:<source_id>". Without a
`source_id` column the id is a hash of name, address and phone, so re-importing the same
file updates rather than duplicates. The whole import is one transaction: a bad line
stops it with a `UserError` naming file and line, and nothing is written.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from horeca.errors import UserError
from horeca.region import Region
from horeca.spiders import steps
from horeca.spiders.model import COVERAGE_FIELDS, LISTING_FIELDS, has_field
from horeca.spiders.writer import ListingWriter
from horeca.store import transaction
from horeca.tomlfile import read_toml

IMPORTABLE_FIELDS = tuple(f for f in LISTING_FIELDS if f not in {"source", "natural_person"})
FORMATS = ("csv", "jsonl")


@dataclass(frozen=True)
class Mapping:
    columns: dict[str, str]
    format: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    default_country: str = "BE"


@dataclass
class ImportResult:
    file: str
    source: str
    rows: int = 0
    kept: int = 0
    new: int = 0
    updated: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    data = read_toml(path, what="mapping file", option="--mapping")
    unknown = set(data) - {"columns", "options"}
    if unknown:
        raise UserError(f"unknown table {sorted(unknown)[0]!r}", path=path,
                        fix="use [columns] (field = column) and [options]")
    columns = data.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise UserError("no [columns] table", path=path,
                        fix='add [columns] with e.g. name = "Business name"')
    for name, column in columns.items():
        if name not in IMPORTABLE_FIELDS:
            raise UserError(f"[columns] {name}: not a listing field", path=path,
                            fix="use fields among: " + ", ".join(IMPORTABLE_FIELDS))
        if not isinstance(column, str) or not column:
            raise UserError(f"[columns] {name}: the column must be a non-empty string",
                            path=path, fix=f'write {name} = "Their column"')
    if "name" not in columns:
        raise UserError("[columns] has no name", path=path,
                        fix='map the business name, e.g. name = "Business name"')
    options = data.get("options") or {}
    known = {"format", "delimiter", "encoding", "default_country"}
    if not isinstance(options, dict) or set(options) - known:
        bad = sorted(set(options) - known) if isinstance(options, dict) else ["options"]
        raise UserError(f"[options] {bad[0]}: unknown option", path=path,
                        fix="options are: " + ", ".join(sorted(known)))
    fmt = options.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"[options] format {fmt!r} is not csv or jsonl", path=path,
                        fix='write format = "csv" or "jsonl"')
    delimiter = str(options.get("delimiter", ","))
    if len(delimiter) != 1:
        raise UserError("[options] delimiter must be one character", path=path,
                        fix='write delimiter = ";"')
    encoding = str(options.get("encoding", "utf-8"))
    try:
        "x".encode(encoding)
    except LookupError:
        raise UserError(f"[options] encoding {encoding!r} is unknown", path=path,
                        fix='use e.g. "utf-8", "utf-8-sig" or "cp1252"') from None
    country = str(options.get("default_country", "BE")).upper()
    if len(country) != 2 or not country.isalpha():
        raise UserError(f"[options] default_country {country!r} is not a 2-letter code",
                        path=path, fix='write default_country = "BE"')
    return Mapping(columns=dict(columns), format=fmt, delimiter=delimiter, encoding=encoding,
                   default_country=country)


def _lookup(record: dict[str, Any], column: str) -> Any:
    if column in record:
        return record[column]
    value: Any = record
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def read_rows(path: Path, mapping: Mapping) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, raw record) for each row; UserError with the line for a bad file."""
    fmt = mapping.format or ("jsonl" if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}
                             else "csv")
    try:
        handle = path.open(encoding=mapping.encoding, newline="")
    except OSError as err:
        raise UserError(f"cannot read the file: {err.strerror}", path=path,
                        fix="check the path and permissions") from None
    with handle:
        try:
            if fmt == "jsonl":
                yield from _read_jsonl(path, handle)
            else:
                yield from _read_csv(path, handle, mapping)
        except UnicodeDecodeError as err:
            raise UserError(f"not {mapping.encoding} text ({err.reason})", path=path,
                            fix='set [options] encoding, e.g. "cp1252"') from None


def _read_jsonl(path: Path, handle: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"invalid JSON: {err.msg}", path=path, line=number,
                            fix="one JSON object per line") from None
        if not isinstance(record, dict):
            raise UserError("a line is not a JSON object", path=path, line=number,
                            fix="one JSON object per line") from None
        yield number, record


def _read_csv(path: Path, handle: Any,
              mapping: Mapping) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(handle, delimiter=mapping.delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise UserError("the file is empty", path=path, fix="export the listings again"
                        ) from None
    except csv.Error as err:
        raise UserError(f"unreadable CSV: {err}", path=path, line=1, fix="check quoting"
                        ) from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in mapping.columns.values() if c not in header]
    if missing:
        raise UserError(f"column {missing[0]!r} of the mapping is not in the header "
                        f"({', '.join(header[:12])})", path=path, line=1,
                        fix="correct the mapping, or set [options] delimiter")
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise UserError(f"{len(row)} cells where the header has {len(header)}",
                                path=path, line=reader.line_num,
                                fix="check quoting and the delimiter on that line")
            yield reader.line_num, dict(zip(header, row, strict=True))
    except csv.Error as err:
        raise UserError(f"unreadable CSV: {err}", path=path, line=reader.line_num,
                        fix="check quoting on that line") from None


def listing_from_record(record: dict[str, Any], mapping: Mapping, source: str) -> dict[str, Any]:
    item: dict[str, Any] = {"source": source}
    for field_name, column in mapping.columns.items():
        value = _lookup(record, column)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            continue
        if field_name == "alt_names" and isinstance(value, str):
            value = [v for v in value.replace("|", ";").split(";") if v.strip()]
        item[field_name] = value
    if item.get("source_id") is not None:
        item["source_id"] = str(item["source_id"])
    return item


def fallback_id(item: dict[str, Any]) -> str:
    """A stable id for rows without one: the same business text gives the same id."""
    basis = "|".join(str(item.get(f) or "") for f in ("name", "address_raw", "street",
                                                       "postcode", "phone", "phone_raw"))
    return "h" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


def import_listings(db: sqlite_utils.Database, file: str | Path, mapping: Mapping,
                    source: Any, *, region: Region | None = None,
                    run_id: int | None = None) -> ImportResult:
    """Read, minimise, normalise, check and upsert every row; all or nothing."""
    from horeca.legal_gate.minimise import minimise

    path = Path(file)
    if not path.is_file():
        raise UserError("file not found", path=path, fix="check the path")
    result = ImportResult(file=str(path), source=source.name)
    dropped: Counter[str] = Counter()
    coverage: Counter[str] = Counter()
    seen: set[str] = set()
    writer = ListingWriter(db, region=region.name if region else None, run_id=run_id,
                           max_seconds=float("inf"))
    with transaction(db):
        for _line, record in read_rows(path, mapping):
            result.rows += 1
            item = listing_from_record(record, mapping, source.name)
            item = minimise(item, source)
            if item is None:
                dropped["minimised"] += 1
                continue
            item = steps.normalise_listing(item, mapping.default_country)
            if not item.get("source_id") and item.get("name"):
                item["source_id"] = fallback_id(item)
            reason = steps.validate(item) or steps.region_drop_reason(item, region)
            if reason is None and item["source_id"] in seen:
                reason = "duplicate"
            if reason:
                dropped[reason] += 1
                continue
            seen.add(item["source_id"])
            writer.add(item)
            result.kept += 1
            coverage.update(f for f in COVERAGE_FIELDS if has_field(item, f))
        writer.close()
    result.new, result.updated = writer.new, writer.updated
    result.dropped = dict(sorted(dropped.items()))
    result.coverage = {f: round(coverage[f] / result.kept, 4) if result.kept else 0.0
                       for f in COVERAGE_FIELDS}
    return result
