"""Importing gazetteers: street segments (the demo's `gazetteer.csv`) and BeST Address.

Both read CSV as a stream (a national BeST file has millions of rows), accept plain,
.gz and .zip files, guess the encoding (UTF-8 with or without BOM, UTF-16 with BOM, else
Windows-1252) and the delimiter (`,` `;` tab `|`), and match column names without regard
to case. An import replaces every row previously imported under the same source name, in
one transaction, drops the gazetteer's cached answers (they may now be wrong) and
stores the gazetteer's index afresh (`gazetteer.store_index`), so that geocoding runs
read it instead of building it.

Segments are a small curated file: any bad row stops the import with its line number.
BeST is a large official extract: rows that cannot be used (no position, no street,
status other than current) are counted, with the first line of each kind, and skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from horeca.errors import UserError
from horeca.geocode.gazetteer import store_index
from horeca.geocode.geo import valid_position
from horeca.geocode.model import GAZETTEER
from horeca.legal_gate import audit
from horeca.normalize import normalize_postcode, parse_house_number
from horeca.region import Region
from horeca.store import transaction, upsert
from horeca.store.runs import now_iso

ProgressFn = Callable[[int, int], None]   # (bytes read, total bytes)

_SAMPLE = 64 * 1024
_BATCH = 5_000

SEGMENT_COLUMNS = ("street_fr", "street_nl", "postcode", "municipality_fr", "municipality_nl",
                   "house_from", "house_to", "lat_start", "lon_start", "lat_end", "lon_end")
SEGMENT_REQUIRED = ("postcode", "house_from", "house_to", "lat_start", "lon_start", "lat_end",
                    "lon_end")
BEST_REQUIRED = ("EPSG:4326_lat", "EPSG:4326_lon", "house_number", "postcode")
BEST_STREETS = ("streetname_fr", "streetname_nl", "streetname_de")
BEST_OPTIONAL = ("box_number", "municipality_name_fr", "municipality_name_nl",
                 "municipality_name_de", "region_code", "status")


@dataclass
class ImportSummary:
    source: str
    path: str
    kind: str
    rows_read: int = 0
    rows_kept: int = 0             # rows stored (BeST: one per house number, boxes folded)
    skipped: dict[str, int] = field(default_factory=dict)
    first_skipped_line: dict[str, int] = field(default_factory=dict)
    encoding: str = ""
    postcodes: int = 0

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.first_skipped_line.setdefault(reason, line)

    def as_counts(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "rows_read": self.rows_read,
                "rows_kept": self.rows_kept, "skipped": self.skipped,
                "first_skipped_line": self.first_skipped_line, "encoding": self.encoding,
                "postcodes": self.postcodes}


# ------------------------------------------------------------------ reading files

def _open_binary(path: Path) -> tuple[IO[bytes], IO[bytes], int]:
    """(stream to read, raw file whose position measures progress, total bytes)."""
    if not path.is_file():
        raise UserError("file not found", path=path, fix="check the path")
    total = path.stat().st_size
    raw = path.open("rb")
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw), raw, total
    if head == b"PK\x03\x04":
        archive = zipfile.ZipFile(raw)
        members = [m for m in archive.infolist() if m.filename.lower().endswith(".csv")]
        if not members:
            raw.close()
            raise UserError("the zip archive holds no .csv file", path=path,
                            fix="unzip it and pass the CSV file")
        member = max(members, key=lambda m: m.file_size)
        return archive.open(member), raw, total
    return raw, raw, total


def _guess_encoding(sample: bytes) -> str:
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as err:
        # A cut multi-byte character at the end of the sample is still UTF-8.
        if err.start < len(sample) - 3:
            return "cp1252"
    return "utf-8"


def _guess_delimiter(header_line: str, path: Path) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    delimiter, n = max(counts.items(), key=lambda kv: kv[1])
    if n == 0:
        raise UserError("the first line has no column separator: not a CSV header", path=path,
                        line=1, fix="give a CSV file whose first line names the columns")
    return delimiter


@dataclass
class CsvStream:
    rows: Iterator[tuple[int, list[str]]]   # (line number, values)
    columns: dict[str, int]                 # lower-cased column name -> index
    encoding: str
    position: Callable[[], int]
    total: int


@contextmanager
def open_csv(path: str | Path, encoding: str | None = None) -> Iterator[CsvStream]:
    """Stream a CSV file's data rows with line numbers; header names lower-cased."""
    path = Path(path)
    stream, raw, total = _open_binary(path)
    try:
        buffered = io.BufferedReader(stream) if not isinstance(stream, io.BufferedReader) \
            else stream
        sample = buffered.peek(_SAMPLE)[:_SAMPLE]
        if not sample.strip():
            raise UserError("the file is empty", path=path, fix="give a CSV file with a header")
        chosen = encoding or _guess_encoding(sample)
        try:
            text = io.TextIOWrapper(buffered, encoding=chosen, newline="")
        except LookupError:
            raise UserError(f"unknown encoding {chosen!r}", path=path,
                            fix="use e.g. --encoding utf-8 or --encoding cp1252") from None
        first_line = sample.decode(chosen, errors="replace").splitlines()[0] if sample else ""
        reader = csv.reader(text, delimiter=_guess_delimiter(first_line, path))
        try:
            header = next(reader)
        except (StopIteration, UnicodeDecodeError):
            raise UserError(f"cannot read the header as {chosen}", path=path, line=1,
                            fix="pass --encoding with the file's encoding") from None
        columns = {name.strip().lstrip("\ufeff").lower(): i for i, name in enumerate(header)}

        def rows() -> Iterator[tuple[int, list[str]]]:
            try:
                for values in reader:
                    if values and any(v.strip() for v in values):
                        yield reader.line_num, values
            except UnicodeDecodeError:
                raise UserError(f"bytes that are not {chosen} after line {reader.line_num}",
                                path=path, line=reader.line_num + 1,
                                fix="pass --encoding cp1252 (or the file's real encoding)"
                                ) from None
            except csv.Error as err:
                raise UserError(f"malformed CSV: {err}", path=path, line=reader.line_num,
                                fix="check quoting on that line") from None

        yield CsvStream(rows=rows(), columns=columns, encoding=chosen,
                        position=raw.tell, total=total)
    finally:
        stream.close()
        raw.close()


def _require(columns: dict[str, int], required: tuple[str, ...], path: Path, what: str,
             expected: tuple[str, ...]) -> None:
    missing = [c for c in required if c.lower() not in columns]
    if missing:
        raise UserError(f"missing column(s) {', '.join(missing)} for {what}", path=path, line=1,
                        fix=f"the header must name {', '.join(expected)}")


def _getter(columns: dict[str, int]) -> Callable[[list[str], str], str]:
    def get(values: list[str], name: str) -> str:
        i = columns.get(name.lower())
        if i is None or i >= len(values):
            return ""
        return values[i].strip()
    return get


def _number(text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


# ------------------------------------------------------------------ storing

def _record_source(db: sqlite_utils.Database, summary: ImportSummary, run_id: int | None,
                   actor: str | None, purpose: str | None) -> None:
    upsert(db, "gazetteer_sources", [{"name": summary.source, "kind": summary.kind,
                                      "path": summary.path, "rows": summary.rows_kept,
                                      "imported_at": now_iso(), "run_id": run_id}], key="name")
    # Cached gazetteer answers were computed from the old data, and so was the index.
    db.conn.execute("DELETE FROM geocodes WHERE provider = ?", (GAZETTEER,))
    store_index(db)
    table = "gazetteer_streets" if summary.kind == "segments" else "gazetteer_addresses"
    audit.record(db, "import", actor=actor, source=summary.path, target=table,
                 rows=summary.rows_kept, purpose=purpose, details=summary.as_counts())


def _check_source_name(db: sqlite_utils.Database, source: str, kind: str) -> None:
    row = db.conn.execute("SELECT kind FROM gazetteer_sources WHERE name = ?",
                          (source,)).fetchone()
    if row and row[0] != kind:
        raise UserError(f"source name {source!r} is already used by a {row[0]} gazetteer",
                        path="--name", fix="choose another --name")


def import_segments(db: sqlite_utils.Database, path: str | Path, *, source: str | None = None,
                    encoding: str | None = None, run_id: int | None = None,
                    progress: ProgressFn | None = None, actor: str | None = None,
                    purpose: str | None = None) -> ImportSummary:
    """Load a street-segment gazetteer (columns `SEGMENT_COLUMNS`), replacing `source`."""
    path = Path(path)
    source = source or path.stem
    _check_source_name(db, source, "segments")
    summary = ImportSummary(source=source, path=str(path), kind="segments")
    with open_csv(path, encoding) as csv_in, transaction(db):
        summary.encoding = csv_in.encoding
        _require(csv_in.columns, SEGMENT_REQUIRED, path, "a street-segment gazetteer",
                 SEGMENT_COLUMNS)
        if "street_fr" not in csv_in.columns and "street_nl" not in csv_in.columns:
            _require(csv_in.columns, ("street_fr",), path, "a street-segment gazetteer",
                     SEGMENT_COLUMNS)
        get = _getter(csv_in.columns)
        db.conn.execute("DELETE FROM gazetteer_streets WHERE source = ?", (source,))
        batch: list[tuple[Any, ...]] = []
        postcodes: set[str] = set()
        for seq, (line, values) in enumerate(csv_in.rows, start=1):
            summary.rows_read += 1
            row = _segment_row(get, values, path, line)
            postcodes.add(row[2])
            batch.append((source, seq, *row))
            if len(batch) >= _BATCH:
                _insert_segments(db, batch)
                batch.clear()
                if progress:
                    progress(csv_in.position(), csv_in.total)
        _insert_segments(db, batch)
        summary.rows_kept = summary.rows_read
        summary.postcodes = len(postcodes)
        if summary.rows_kept == 0:
            raise UserError("no street segment in the file", path=path,
                            fix="give a gazetteer CSV with at least one data row")
        _record_source(db, summary, run_id, actor, purpose)
    return summary


def _segment_row(get: Callable[[list[str], str], str], values: list[str], path: Path,
                 line: int) -> tuple[Any, ...]:
    fr, nl = get(values, "street_fr"), get(values, "street_nl")
    if not fr and not nl:
        raise UserError("row has neither street_fr nor street_nl", path=path, line=line,
                        fix="give the street's name in at least one language")
    postcode = normalize_postcode(get(values, "postcode"))
    if postcode is None:
        raise UserError(f"postcode {get(values, 'postcode')!r} is not a Belgian postcode",
                        path=path, line=line, fix="write 4 digits, e.g. 1000")
    numbers = []
    for col in ("house_from", "house_to"):
        first, _last, _suffix = parse_house_number(get(values, col))
        if first is None:
            raise UserError(f"{col} {get(values, col)!r} is not a house number", path=path,
                            line=line, fix=f"write {col} as a whole number, e.g. 1")
        numbers.append(first)
    coords = [_number(get(values, c)) for c in ("lat_start", "lon_start", "lat_end", "lon_end")]
    if any(c is None for c in coords) or not (valid_position(coords[0], coords[1])
                                              and valid_position(coords[2], coords[3])):
        raise UserError("lat_start/lon_start/lat_end/lon_end must be WGS84 degrees", path=path,
                        line=line, fix="write decimal degrees, e.g. 50.8466,4.3528")
    return (fr or None, nl or None, postcode, get(values, "municipality_fr") or None,
            get(values, "municipality_nl") or None, numbers[0], numbers[1], *coords)


def _insert_segments(db: sqlite_utils.Database, batch: list[tuple[Any, ...]]) -> None:
    if batch:
        db.conn.executemany(
            "INSERT INTO gazetteer_streets (source, seq, street_fr, street_nl, postcode, "
            "municipality_fr, municipality_nl, house_from, house_to, lat_start, lon_start, "
            "lat_end, lon_end) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)


def import_best(db: sqlite_utils.Database, path: str | Path, *, source: str | None = None,
                region: Region | None = None, encoding: str | None = None,
                run_id: int | None = None, progress: ProgressFn | None = None,
                actor: str | None = None, purpose: str | None = None) -> ImportSummary:
    """Load a BeST Address CSV (one row per address and box), replacing `source`.

    Boxes of one house number share its position: only the first row per (street, number)
    is stored. `region` keeps only its postcodes (a national file for one region).
    """
    path = Path(path)
    source = source or path.name.split(".")[0]
    _check_source_name(db, source, "addresses")
    summary = ImportSummary(source=source, path=str(path), kind="addresses")
    expected = (*BEST_REQUIRED, *BEST_STREETS, *BEST_OPTIONAL)
    with open_csv(path, encoding) as csv_in, transaction(db):
        summary.encoding = csv_in.encoding
        _require(csv_in.columns, BEST_REQUIRED, path, "a BeST Address file", expected)
        if not any(c in csv_in.columns for c in BEST_STREETS):
            raise UserError("no street name column (streetname_fr, streetname_nl or "
                            "streetname_de)", path=path, line=1,
                            fix="export BeST Address with its street name columns")
        get = _getter(csv_in.columns)
        _delete_best_source(db, source)
        batch: list[tuple[Any, ...]] = []
        street_ids: dict[tuple[str, ...], int] = {}
        for line, values in csv_in.rows:
            summary.rows_read += 1
            row = _best_row(get, values, line, summary, region)
            if row is None:
                continue
            street, point = row
            street_id = street_ids.get(street[:4])
            if street_id is None:
                street_id = street_ids[street[:4]] = _insert_street(db, source, street)
            batch.append((street_id, *point))
            if len(batch) >= _BATCH:
                _insert_points(db, batch)
                batch.clear()
                if progress:
                    progress(csv_in.position(), csv_in.total)
        _insert_points(db, batch)
        summary.rows_kept = db.conn.execute(
            "SELECT count(*) FROM gazetteer_addresses a JOIN gazetteer_address_streets s "
            "ON s.id = a.street_id WHERE s.source = ?", (source,)).fetchone()[0]
        summary.postcodes = len({key[0] for key in street_ids})
        if summary.rows_kept == 0:
            reasons = ", ".join(f"{k}: {v}" for k, v in summary.skipped.items()) or "no rows"
            raise UserError(f"no usable address in the file ({reasons})", path=path,
                            fix="check that it is a BeST Address export (and the --region)")
        _record_source(db, summary, run_id, actor, purpose)
    if progress:
        progress(csv_in.total, csv_in.total)
    return summary


def _best_row(get: Callable[[list[str], str], str], values: list[str], line: int,
              summary: ImportSummary, region: Region | None
              ) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """((postcode, fr, nl, de, municipality fr/nl/de, region), (number as written,
    number, suffix, lat, lon)), or None for a row to skip (counted in `summary`)."""
    status = get(values, "status").lower()
    if status and status != "current":
        summary.skip("not_current", line)
        return None
    postcode = normalize_postcode(get(values, "postcode"))
    if postcode is None:
        summary.skip("bad_postcode", line)
        return None
    if region is not None and not region.contains_postcode(postcode):
        summary.skip("outside_region", line)
        return None
    streets = [get(values, c) for c in BEST_STREETS]
    if not any(streets):
        summary.skip("no_street", line)
        return None
    number = get(values, "house_number")
    first, _last, suffix = parse_house_number(number)
    if first is None:
        summary.skip("bad_house_number", line)
        return None
    lat, lon = _number(get(values, "EPSG:4326_lat")), _number(get(values, "EPSG:4326_lon"))
    if not valid_position(lat, lon):
        summary.skip("bad_coordinates", line)
        return None
    street = (postcode, *streets, get(values, "municipality_name_fr") or None,
              get(values, "municipality_name_nl") or None,
              get(values, "municipality_name_de") or None, get(values, "region_code") or None)
    return street, (number, first, suffix, lat, lon)


def _delete_best_source(db: sqlite_utils.Database, source: str) -> None:
    db.conn.execute("DELETE FROM gazetteer_addresses WHERE street_id IN "
                    "(SELECT id FROM gazetteer_address_streets WHERE source = ?)", (source,))
    db.conn.execute("DELETE FROM gazetteer_address_streets WHERE source = ?", (source,))


def _insert_street(db: sqlite_utils.Database, source: str, street: tuple[Any, ...]) -> int:
    cursor = db.conn.execute(
        "INSERT INTO gazetteer_address_streets (source, postcode, street_fr, street_nl, "
        "street_de, municipality_fr, municipality_nl, municipality_de, region_code) "
        "VALUES (?,?,?,?,?,?,?,?,?)", (source, *street))
    return int(cursor.lastrowid)


def _insert_points(db: sqlite_utils.Database, batch: list[tuple[Any, ...]]) -> None:
    if batch:
        # OR IGNORE: the first row of a house number wins; its boxes add nothing.
        db.conn.executemany(
            "INSERT OR IGNORE INTO gazetteer_addresses (street_id, house_number, number, "
            "suffix, lat, lon) VALUES (?,?,?,?,?,?)", batch)


def gazetteer_status(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [dict(r) for r in db["gazetteer_sources"].rows_where(order_by="name")]
