"""Generic CSV registers: any column names, described by a mapping file (TOML).

Example (docs/register.md has the full reference, fixtures/register/mapping.example.toml a
working file):

    [csv]
    delimiter = ";"
    encoding = "utf-8"
    default_country = "BE"

    [columns]
    id = "REG_ID"
    names = ["TRADE_NAME", "LEGAL_NAME"]
    street = "STREET"
    house_number = "NR"
    postcode = "ZIP"
    locality = "CITY"
    phone = "PHONE"
    activity_code = "NACE"
    declared_workers = "WORKERS"

Rows are streamed: the region and NACE filters apply row by row and units are written in
batches, so memory stays flat however long the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from horeca.errors import UserError
from horeca.normalize import (
    normalize_postcode,
    normalize_url,
    parse_address,
    parse_enterprise_number,
    to_e164,
)
from horeca.region import Region
from horeca.register.issues import RowIssues
from horeca.register.progress import Reporter
from horeca.register.reader import Source, iter_rows, read_layout
from horeca.register.units import HORECA_PREFIXES, is_horeca, matches_nace, unit_row
from horeca.tomlfile import parse_toml, read_toml_text

SINGLE_COLUMNS = ("id", "enterprise_number", "establishment_number", "street", "street_fr",
                  "street_nl", "house_number", "box", "postcode", "locality", "locality_fr",
                  "locality_nl", "address", "lat", "lon", "declared_workers",
                  "declared_turnover", "start_date", "natural_person")
LIST_COLUMNS = ("names", "phone", "website", "email", "activity_code")
NAME_TYPES = ("legal", "abbreviation", "commercial", "branch")
_CODE_SPLIT = re.compile(r"[,;|/\s]+")


@dataclass
class NameColumn:
    column: str
    type: str
    lang: str = ""


@dataclass
class CsvMapping:
    path: Path
    columns: dict[str, str]                       # single-valued fields -> column
    lists: dict[str, list[str]]                   # phone/website/... -> columns
    names: list[NameColumn]
    delimiter: str = ","
    encoding: str = "utf-8"
    default_country: str = "BE"
    activity_version: str = ""
    horeca_prefixes: tuple[str, ...] = HORECA_PREFIXES
    label: str = ""
    raw_text: str = field(default="", repr=False)

    def needed_columns(self) -> tuple[str, ...]:
        wanted = [*self.columns.values(), *(n.column for n in self.names)]
        for cols in self.lists.values():
            wanted.extend(cols)
        return tuple(dict.fromkeys(wanted))


def _as_list(value: Any, where: str, path: Path) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise UserError(f"{where} must be a column name or a list of column names", path=path,
                    fix=f'write {where.split(".")[-1]} = "COLUMN" or ["COL1", "COL2"]')


def load_mapping(path: Path) -> CsvMapping:
    """Read and check a mapping file; every mistake names the key and says what to write."""
    text = read_toml_text(path, what="mapping file", option="--mapping")
    data = parse_toml(text, path)
    unknown_sections = set(data) - {"csv", "columns", "names", "activity", "label"}
    if unknown_sections:
        raise UserError(f"unknown section(s) {', '.join(sorted(unknown_sections))}", path=path,
                        fix="use [csv], [columns], [names], [activity]")
    cols = data.get("columns")
    if not isinstance(cols, dict):
        raise UserError("no [columns] table", path=path,
                        fix='add [columns] with at least id = "..." and names = [...]')
    unknown = set(cols) - set(SINGLE_COLUMNS) - set(LIST_COLUMNS)
    if unknown:
        raise UserError(f"unknown key(s) in [columns]: {', '.join(sorted(unknown))}", path=path,
                        fix=f"use: {', '.join(SINGLE_COLUMNS + LIST_COLUMNS)}")
    if "id" not in cols:
        raise UserError("[columns] has no id", path=path,
                        fix='name the column holding each row\'s identifier: id = "..."')
    if "names" not in cols:
        raise UserError("[columns] has no names", path=path,
                        fix='name the column(s) holding the business name: names = ["..."]')
    if "address" in cols and any(k in cols for k in ("street", "street_fr", "street_nl")):
        raise UserError("[columns] gives both address and street", path=path,
                        fix="use either one full-address column or street/postcode/locality")
    single = {}
    for key in SINGLE_COLUMNS:
        if key in cols:
            if not isinstance(cols[key], str) or not cols[key]:
                raise UserError(f"[columns].{key} must be a column name", path=path,
                                fix=f'write {key} = "COLUMN"')
            single[key] = cols[key]
    lists = {key: _as_list(cols[key], f"[columns].{key}", path)
             for key in LIST_COLUMNS if key in cols and key != "names"}
    name_types = data.get("names", {})
    names = []
    for i, column in enumerate(_as_list(cols["names"], "[columns].names", path)):
        spec = name_types.get(column, {})
        if isinstance(spec, str):
            spec = {"type": spec}
        kind = spec.get("type", "legal" if i == 0 else "commercial")
        if kind not in NAME_TYPES:
            raise UserError(f"[names].{column}: unknown name type {kind!r}", path=path,
                            fix=f"use one of {', '.join(NAME_TYPES)}")
        names.append(NameColumn(column, kind, spec.get("lang", "")))
    csv_opts = data.get("csv", {})
    activity = data.get("activity", {})
    prefixes = tuple(str(p) for p in activity.get("horeca_prefixes", HORECA_PREFIXES))
    delimiter = csv_opts.get("delimiter", ",")
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    if len(delimiter) != 1:
        raise UserError(f"[csv].delimiter {delimiter!r} must be one character", path=path,
                        fix='write delimiter = ";" (or "\\t" for tabs)')
    return CsvMapping(
        path=path, columns=single, lists=lists, names=names, delimiter=delimiter,
        encoding=csv_opts.get("encoding", "utf-8"),
        default_country=str(csv_opts.get("default_country", "BE")).upper(),
        activity_version=str(activity.get("version", "")), horeca_prefixes=prefixes,
        label=str(data.get("label", "")), raw_text=text)


@dataclass
class CsvOptions:
    region: Region | None = None
    nace: tuple[str, ...] = ()
    strict: bool = False
    default_country: str | None = None    # overrides the mapping's
    encoding: str | None = None
    delimiter: str | None = None


def _number(text: str, issues: RowIssues, label: str, line: int, what: str) -> float | None:
    text = (text or "").strip().replace(" ", "").replace("\u00a0", "")
    if not text:
        return None
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        return float(text)
    except ValueError:
        issues.add("bad_number", label, line, f"{what} {text!r}")
        return None


class CsvImport:
    """One import of a generic CSV register; `run()` yields unit rows to write."""

    def __init__(self, path: Path, mapping: CsvMapping, options: CsvOptions,
                 issues: RowIssues, reporter: Reporter | None = None) -> None:
        self.path = path
        self.mapping = mapping
        self.opts = options
        self.issues = issues
        self.reporter = reporter or Reporter()
        self.encoding = options.encoding or mapping.encoding
        self.delimiter = options.delimiter or mapping.delimiter
        self.country = (options.default_country or mapping.default_country).upper()
        self.counts: dict[str, Any] = {}
        self.source = Source(path)
        if not self.source.is_single_file:
            members = [n for n in self.source.names() if n.endswith(".csv")]
            if len(members) != 1:
                raise UserError("a generic register must be one CSV file (or a zip/folder "
                                "with exactly one .csv)", path=path, fix="pass the CSV file")
            self.member = members[0]
        else:
            self.member = self.source.names()[0]

    def check_header(self) -> None:
        """Fail before any snapshot is started when the file does not fit the mapping."""
        label = self.source.label(self.member)
        with self.source.open(self.member) as stream:
            read_layout(stream, label, self.mapping.needed_columns(), encoding=self.encoding,
                        delimiter=self.delimiter)

    def run(self) -> Iterator[tuple]:
        label = self.source.label(self.member)
        tally = {"units": 0, "horeca_units": 0, "rows_read": 0, "outside_region": 0,
                 "outside_nace_filter": 0, "units_without_address": 0}
        self.counts["tally"] = tally
        seen: set[str] = set()
        with self.reporter.stream(self.member, self.source.size(self.member)) as on_bytes, \
                self.source.open(self.member, on_bytes) as stream:
            needed = self.mapping.needed_columns()
            layout = read_layout(stream, label, needed, encoding=self.encoding,
                                 delimiter=self.delimiter)
            rows = iter_rows(stream, layout, label, needed, encoding=self.encoding,
                             delimiter=self.delimiter, issues=self.issues)
            for line, values in rows:
                tally["rows_read"] += 1
                record = dict(zip(needed, values, strict=True))
                unit = self._unit(record, label, line)
                if unit is None:
                    continue
                if self.opts.region is not None and not self.opts.region.contains_postcode(
                        unit["postcode"]):
                    tally["outside_region"] += 1
                    continue
                codes = [e["code"] for e in unit["nace"]]
                if not matches_nace(codes, self.opts.nace):
                    tally["outside_nace_filter"] += 1
                    continue
                if unit["unit_id"] in seen:
                    self.issues.add("duplicate_key", label, line,
                                    f"id {unit['unit_id']!r} already seen")
                    continue
                seen.add(unit["unit_id"])
                tally["units"] += 1
                tally["horeca_units"] += unit["horeca"]
                if not unit["postcode"] and not unit["street_fr"]:
                    tally["units_without_address"] += 1
                yield unit_row(unit)

    def _unit(self, rec: dict[str, str], label: str, line: int) -> dict[str, Any] | None:
        m = self.mapping
        col = m.columns
        unit_id = (rec[col["id"]] or "").strip()
        if not unit_id:
            self.issues.add("missing_id", label, line, f"empty {col['id']}")
            return None
        names = []
        for name_col in m.names:
            value = (rec[name_col.column] or "").strip()
            if value:
                names.append({"name": value, "type": name_col.type, "lang": name_col.lang,
                              "level": "establishment"})
        address = self._address(rec)
        enterprise = None
        if "enterprise_number" in col and rec[col["enterprise_number"]].strip():
            enterprise = parse_enterprise_number(rec[col["enterprise_number"]])
            if enterprise is None:
                self.issues.add("invalid_enterprise_number", label, line,
                                f"{rec[col['enterprise_number']]!r} fails the mod-97 check")
        codes = []
        for c in m.lists.get("activity_code", []):
            codes.extend(code.replace(".", "") for code in _CODE_SPLIT.split(rec[c] or "")
                         if code.strip())
        nace = [{"code": code, "version": m.activity_version,
                 "classification": "MAIN" if i == 0 else "SECO", "level": "establishment"}
                for i, code in enumerate(dict.fromkeys(codes))]
        lat = lon = None
        if "lat" in col and "lon" in col:
            lat = _number(rec[col["lat"]], self.issues, label, line, "latitude")
            lon = _number(rec[col["lon"]], self.issues, label, line, "longitude")
            if lat is not None and lon is not None and not (
                    -90 <= lat <= 90 and -180 <= lon <= 180):
                self.issues.add("bad_coordinates", label, line, f"{lat}, {lon}")
                lat = lon = None
        workers = turnover = None
        if "declared_workers" in col:
            workers = _number(rec[col["declared_workers"]], self.issues, label, line,
                              "declared workers")
        if "declared_turnover" in col:
            turnover = _number(rec[col["declared_turnover"]], self.issues, label, line,
                               "declared turnover")
        natural = 0
        if "natural_person" in col:
            natural = int((rec[col["natural_person"]] or "").strip().lower()
                          in ("1", "true", "yes", "y", "oui", "ja"))
        return {
            "unit_id": unit_id,
            "enterprise_number": enterprise,
            "establishment_number": (rec[col["establishment_number"]].strip() or None)
            if "establishment_number" in col else None,
            "names": names,
            **address,
            "phones": self._many("phone", rec, lambda v: to_e164(v, self.country)),
            "websites": self._many("website", rec, normalize_url),
            "emails": self._many("email", rec,
                                 lambda v: v.strip().lower() if "@" in v else None),
            "nace": nace,
            "horeca": int(is_horeca(codes, m.horeca_prefixes)),
            "natural_person": natural,
            "start_date": (rec[col["start_date"]].strip() or None)
            if "start_date" in col else None,
            "lat": lat, "lon": lon,
            "declared_workers": workers, "declared_turnover": turnover,
            "declared_level": "establishment" if workers is not None or turnover is not None
            else None,
        }

    def _many(self, key: str, rec: dict[str, str], normalise) -> list[str]:
        found = []
        for column in self.mapping.lists.get(key, []):
            value = (rec[column] or "").strip()
            if value:
                norm = normalise(value)
                if norm and norm not in found:
                    found.append(norm)
        return found

    def _address(self, rec: dict[str, str]) -> dict[str, Any]:
        col = self.mapping.columns

        def get(key: str) -> str | None:
            return (rec[col[key]].strip() or None) if key in col else None

        if "address" in col:
            parts = parse_address(get("address"), self.country)
            street, number, box = parts.street, parts.house_number, parts.box
            postcode, locality = parts.postcode, parts.locality
            street_fr = street_nl = street
            locality_fr = locality_nl = locality
        else:
            street = get("street")
            street_fr = get("street_fr") or street
            street_nl = get("street_nl") or street
            number, box = get("house_number"), get("box")
            postcode = normalize_postcode(get("postcode"), self.country) or get("postcode")
            locality = get("locality")
            locality_fr = get("locality_fr") or locality
            locality_nl = get("locality_nl") or locality
        return {"street_fr": street_fr, "street_nl": street_nl, "house_number": number,
                "box": box, "postcode": postcode, "municipality_fr": locality_fr,
                "municipality_nl": locality_nl, "address_extra": None}

    def close(self) -> None:
        self.source.close()
