"""`import_register`: one register extract in, one region snapshot out, atomically.

Recognises the format (KBO Open Data zip/folder, full or update, or a generic CSV with a
mapping), works out the snapshot's region key and fingerprint, and drives the snapshot
lifecycle in `snapshots.py`. An identical re-import (same files, same filters) changes
nothing unless forced.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from horeca.errors import UserError
from horeca.region import Region
from horeca.register import snapshots
from horeca.register.csv_register import CsvImport, CsvOptions, load_mapping
from horeca.register.issues import RowIssues
from horeca.register.kbo import KboImport, KboOptions
from horeca.register.kbo_format import KboExtract, check_chain, detect_kind, open_extract
from horeca.register.progress import Reporter
from horeca.register.reader import Source

FORMATS = ("auto", "kbo", "csv")


@dataclass
class ImportRequest:
    paths: list[Path]
    region: Region | None = None
    region_key: str = "all"
    nace: tuple[str, ...] = ()
    fmt: str = "auto"
    mapping: Path | None = None
    strict: bool = False
    default_country: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    declared: Path | None = None
    workdir: Path | None = None
    force: bool = False


@dataclass
class ImportResult:
    status: str                      # imported | unchanged
    region: str
    snapshot_id: int
    fmt: str
    snapshot_date: str | None
    extract_number: str | None
    counts: dict[str, Any] = field(default_factory=dict)
    issues: RowIssues = field(default_factory=RowIssues)
    superseded: list[int] = field(default_factory=list)
    seconds: float = 0.0


def parse_nace_prefixes(spec: str | None) -> tuple[str, ...]:
    """'55,56' or '56.1' -> ('55', '56') / ('561',); digits only, dots ignored."""
    if not spec:
        return ()
    prefixes = []
    for part in spec.split(","):
        part = part.strip().replace(".", "")
        if not part:
            continue
        if not part.isdigit():
            raise UserError(f"{part!r} is not a NACE code prefix", path="--nace",
                            fix="give digits, e.g. --nace 55,56 or --nace 56.1")
        prefixes.append(part)
    return tuple(dict.fromkeys(prefixes))


def region_key(region: Region | None, named: str | None, postcodes: str | None) -> str:
    """The name a snapshot is filed under: a named region, ad hoc postcodes, or 'all'."""
    if region is None:
        return "all"
    if named and not postcodes:
        return named
    spec = ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in region.postcode_ranges)
    return f"{named}:{spec}" if named else f"postcodes:{spec}"


def _file_facts(path: Path) -> list:
    """Cheap identity of an input: name, size and modification time of each file."""
    if path.is_dir():
        return [[p.name, p.stat().st_size, p.stat().st_mtime_ns]
                for p in sorted(path.iterdir()) if p.is_file()]
    stat = path.stat()
    return [[path.name, stat.st_size, stat.st_mtime_ns]]


def fingerprint(fmt: str, paths: list[Path], filters: dict[str, Any], extra: list) -> str:
    payload = json.dumps([fmt, [[str(p.resolve()), _file_facts(p)] for p in paths], filters,
                          extra], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def detect_format(paths: list[Path], fmt: str, mapping: Path | None) -> str:
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}", path="--format", fix="use kbo or csv")
    if fmt != "auto":
        if fmt == "csv" and mapping is None:
            raise UserError("a generic CSV register needs a mapping", path="--mapping",
                            fix="pass --mapping MAPPING.toml (see docs/register.md)")
        return fmt
    if mapping is not None:
        return "csv"
    source = Source(paths[0])
    try:
        kind = detect_kind(source)
    finally:
        source.close()
    if kind is not None:
        return "kbo"
    raise UserError("not a KBO Open Data extract, and no mapping given", path=paths[0],
                    fix="for another register pass --format csv --mapping MAPPING.toml")


def _chain_for(db: sqlite_utils.Database, req: ImportRequest, encoding: str,
               delimiter: str) -> tuple[list[KboExtract], list[Path]]:
    """The extracts to stream: those given, or for a lone update the chain recorded by
    the region's active snapshot followed by the update."""
    given = [open_extract(p, encoding=encoding, delimiter=delimiter) for p in req.paths]
    paths = list(req.paths)
    if given[0].kind == "update":
        active = snapshots.active_snapshot(db, req.region_key)
        if active is None or active.get("format") != "kbo" or not active.get("sources"):
            for extract in given:
                extract.source.close()
            raise UserError(
                f"{req.paths[0]} is an update extract and region {req.region_key!r} has no "
                "active KBO snapshot to apply it to", path=req.paths[0],
                fix="pass the full extract first: horeca register import FULL.zip UPDATE.zip")
        base_paths = [Path(p) for p in active["sources"]]
        missing = [p for p in base_paths if not p.exists()]
        if missing:
            for extract in given:
                extract.source.close()
            raise UserError(
                f"the active snapshot {active['id']} of {req.region_key!r} was built from "
                f"{missing[0]}, which is no longer there", path=req.paths[0],
                fix="pass the full extract and the updates explicitly: "
                    "horeca register import FULL.zip UPDATE1.zip ...")
        base = [open_extract(p, encoding=encoding, delimiter=delimiter) for p in base_paths]
        given = base + given
        paths = base_paths + paths
    check_chain(given)
    return given, paths


def import_register(db: sqlite_utils.Database, req: ImportRequest, *, run_id: int | None = None,
                    actor: str | None = None, purpose: str | None = None,
                    reporter: Reporter | None = None) -> ImportResult:
    """Import one register extract as the new active snapshot of `req.region_key`."""
    started = time.monotonic()
    reporter = reporter or Reporter()
    issues = RowIssues(strict=req.strict)
    fmt = detect_format(req.paths, req.fmt, req.mapping)
    filters: dict[str, Any] = {
        "region": req.region_key,
        "postcodes": [list(r) for r in req.region.postcode_ranges] if req.region else None,
        "nace": list(req.nace),
    }
    importer: KboImport | CsvImport
    if fmt == "kbo":
        encoding, delimiter = req.encoding or "utf-8", req.delimiter or ","
        chain, paths = _chain_for(db, req, encoding, delimiter)
        last = chain[-1]
        snapshot_date, extract_number = last.snapshot_date, last.extract_number
        extract_type = "full" if len(chain) == 1 else "update"
        extra: list = [req.default_country, encoding, delimiter,
                       [str(req.declared.resolve()), _file_facts(req.declared)]
                       if req.declared else None]
        importer = KboImport(chain, KboOptions(
            region=req.region, nace=req.nace, strict=req.strict,
            default_country=req.default_country or "BE", encoding=encoding,
            delimiter=delimiter, workdir=req.workdir, declared=req.declared), issues, reporter)
        closers = [x.source.close for x in chain]
    else:
        if len(req.paths) != 1:
            raise UserError("a generic CSV register is one file", path=req.paths[1],
                            fix="import the files one at a time, one region each")
        assert req.mapping is not None
        mapping = load_mapping(req.mapping)
        paths = list(req.paths)
        csv_import = CsvImport(req.paths[0], mapping, CsvOptions(
            region=req.region, nace=req.nace, strict=req.strict,
            default_country=req.default_country, encoding=req.encoding,
            delimiter=req.delimiter), issues, reporter)
        csv_import.check_header()
        importer = csv_import
        snapshot_date = extract_number = None
        extract_type = None
        extra = [mapping.raw_text, req.default_country, req.encoding, req.delimiter]
        closers = [csv_import.close]
    try:
        return _import(db, req, importer, fmt=fmt, paths=paths, filters=filters, extra=extra,
                       snapshot_date=snapshot_date, extract_number=extract_number,
                       extract_type=extract_type, issues=issues, run_id=run_id, actor=actor,
                       purpose=purpose, started=started, reporter=reporter)
    finally:
        for close in closers:
            close()


def _import(db: sqlite_utils.Database, req: ImportRequest, importer: KboImport | CsvImport, *,
            fmt: str, paths: list[Path], filters: dict[str, Any], extra: list,
            snapshot_date: str | None, extract_number: str | None, extract_type: str | None,
            issues: RowIssues, run_id: int | None, actor: str | None, purpose: str | None,
            started: float, reporter: Reporter) -> ImportResult:
    digest = fingerprint(fmt, paths, filters, extra)
    active = snapshots.active_snapshot(db, req.region_key)
    if active and active.get("fingerprint") == digest and not req.force:
        return ImportResult("unchanged", req.region_key, active["id"], fmt,
                            active.get("snapshot_date"), active.get("extract_number"),
                            active.get("counts") or {}, issues,
                            seconds=time.monotonic() - started)
    snapshots.clear_leftovers(db, req.region_key)
    snapshot_id = snapshots.begin_snapshot(
        db, region=req.region_key, fmt=fmt, source_path=str(paths[-1]),
        sources=[str(p.resolve()) for p in paths], extract_type=extract_type,
        snapshot_date=snapshot_date, extract_number=extract_number, filters=filters,
        fingerprint=digest, run_id=run_id)
    try:
        rows: Iterator[tuple] = importer.run()
        written = snapshots.write_units(db, snapshot_id, rows)
        counts = _summarise(importer.counts, issues, written)
        counts["seconds"] = round(time.monotonic() - started, 1)
        superseded = snapshots.activate_snapshot(
            db, snapshot_id, region=req.region_key, counts=counts, actor=actor,
            purpose=purpose, audit_details={
                "source": str(paths[-1]), "sources": [str(p) for p in paths], "format": fmt,
                "snapshot_date": snapshot_date, "extract_number": extract_number,
                "filters": filters, "skipped": issues.total})
    except BaseException as err:
        snapshots.fail_snapshot(db, snapshot_id, f"{type(err).__name__}: {err}")
        raise
    for old in superseded:
        snapshots.drop_units(db, old)
    return ImportResult("imported", req.region_key, snapshot_id, fmt, snapshot_date,
                        extract_number, counts, issues, superseded,
                        seconds=time.monotonic() - started)


def _summarise(raw: dict[str, Any], issues: RowIssues, written: int) -> dict[str, Any]:
    counts = dict(raw.pop("tally", {}))
    counts.update(raw)
    counts["units"] = written
    counts["skipped"] = issues.as_dict()
    return counts
