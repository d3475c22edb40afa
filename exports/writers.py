"""The four export formats. Each writer takes flat rows (in `COLUMNS` order) and a stream
or path; none reads the store.

* CSV: UTF-8 with a byte-order mark (so Excel reads accents right), comma-separated,
  CRLF line ends (RFC 4180), header first, columns always in the same order. Text that a
  spreadsheet could run as a formula is prefixed with a single quote; numbers are numbers.
* XLSX: one sheet `places` (frozen header and first columns, auto-filter, widths from
  the content, a drop-down of allowed verdicts) and a sheet `about` explaining the columns.
* GeoJSON (RFC 7946): a FeatureCollection of Points in [lon, lat] order, flat
  properties; places without coordinates are kept with `"geometry": null` (QGIS lists
  them in the attribute table, without a point), so the file holds the whole list.
* HTML: one self-contained page; see `horeca.exports.html_page`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from horeca.exports.rows import COLUMN_NAMES, NUMBER_COLUMNS
from horeca.exports.safety import neutralise_formula
from horeca.exports.verdicts import VERDICTS

CSV_ENCODING = "utf-8-sig"
XLSX_SHEET = "places"
# Columns frozen at the left of the XLSX sheet: rank, priority, outcome, name.
FROZEN_COLUMNS = 4
_MIN_WIDTH, _MAX_WIDTH = 6, 60


def format_number(value: Any) -> str:
    """A number as CSV text: integers without '.0', floats in their shortest exact form."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return neutralise_formula(str(value))  # not a number after all: treat as text


def cell_text(column: str, value: Any) -> str:
    """The CSV text of one cell."""
    if column in NUMBER_COLUMNS:
        return format_number(value)
    return "" if value is None else neutralise_formula(str(value))


def write_csv(rows: Sequence[dict[str, Any]], stream: TextIO) -> None:
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(COLUMN_NAMES)
    for row in rows:
        writer.writerow([cell_text(c, row.get(c)) for c in COLUMN_NAMES])


def csv_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    write_csv(rows, buf)
    return buf.getvalue().encode(CSV_ENCODING)


# --- XLSX ------------------------------------------------------------------------------

ABOUT_LINES = (
    ("horeca export", ""),
    ("outcome", "match: the register corroborates the place; doubt: some fields agree, "
                "others do not; no-match: nothing in the register corroborates it."),
    ("grades", "per field: A same, B similar, F different, Z missing on one side. "
               "Example: name A, street B, number A, postcode A, phone Z, web Z, distance A."),
    ("priority", "0-100, highest first: online activity, weak register evidence and the gap "
                 "between online and declared activity. priority_reason says why."),
    ("verdict", "fill in after a visit: " + ", ".join(VERDICTS) + ". registered_under needs "
                "the enterprise or establishment number in register_number."),
    ("reviewed_on", "the day of the visit (YYYY-MM-DD); empty = the export date."),
    ("report back", "send the filled file to the analyst: horeca review import FILE "
                    "--reviewer NAME"),
    ("pseudonymised", "yes: a sole trader's name, phone and website are replaced by stable "
                      "pseudonyms and the address stops at the street."),
    ("do not edit", "place_id, listing_ids and exported_at: they tie your verdict to the "
                    "place."),
)


def _width(column: str, rows: Sequence[dict[str, Any]]) -> float:
    sample = rows[:500]
    longest = max([len(column)] + [len(str(r.get(column) or "")) for r in sample])
    return float(min(_MAX_WIDTH, max(_MIN_WIDTH, longest + 2)))


def _xlsx_value(column: str, value: Any) -> Any:
    if column in NUMBER_COLUMNS and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None if value is None or value == "" else neutralise_formula(str(value))


def write_xlsx(rows: Sequence[dict[str, Any]], path: Path, *, notes: Sequence[str] = ()) -> None:
    # Imported here: openpyxl takes a fifth of a second, which every other command would pay.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(XLSX_SHEET)
    ws.freeze_panes = f"{get_column_letter(FROZEN_COLUMNS + 1)}2"
    for i, column in enumerate(COLUMN_NAMES, start=1):
        ws.column_dimensions[get_column_letter(i)].width = _width(column, rows)
    last_col = get_column_letter(len(COLUMN_NAMES))
    ws.auto_filter.ref = f"A1:{last_col}{max(len(rows) + 1, 2)}"
    verdict_col = get_column_letter(COLUMN_NAMES.index("verdict") + 1)
    dv = DataValidation(type="list", formula1='"' + ",".join(VERDICTS) + '"',
                        allow_blank=True, showErrorMessage=True, errorStyle="stop",
                        errorTitle="Unknown verdict",
                        error="Choose one of: " + ", ".join(VERDICTS))
    dv.add(f"{verdict_col}2:{verdict_col}{max(len(rows) + 1, 2)}")
    ws.data_validations.append(dv)

    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="FFF2CC")
    header = []
    for column in COLUMN_NAMES:
        cell = WriteOnlyCell(ws, value=column)
        cell.font = bold
        if column in ("verdict", "register_number", "comment", "reviewed_on"):
            cell.fill = fill
        header.append(cell)
    ws.append(header)
    for row in rows:
        ws.append([_xlsx_value(c, row.get(c)) for c in COLUMN_NAMES])

    about = wb.create_sheet("about")
    about.column_dimensions["A"].width = 16
    about.column_dimensions["B"].width = 110
    wrap = Alignment(wrap_text=True, vertical="top")
    for label, text in [*ABOUT_LINES, *(("note", n) for n in notes)]:
        a = WriteOnlyCell(about, value=label)
        a.font = bold
        b = WriteOnlyCell(about, value=neutralise_formula(text))
        b.alignment = wrap
        about.append([a, b])
    wb.save(path)


# --- GeoJSON ---------------------------------------------------------------------------

def geojson_document(rows: Sequence[dict[str, Any]], *, name: str,
                     attribution: str | None = None) -> dict[str, Any]:
    features = []
    for row in rows:
        lat, lon = row.get("lat"), row.get("lon")
        geometry = ({"type": "Point", "coordinates": [lon, lat]}
                    if isinstance(lat, int | float) and isinstance(lon, int | float) else None)
        properties = {c: row.get(c) for c in COLUMN_NAMES}
        features.append({"type": "Feature", "id": row.get("place_id"), "geometry": geometry,
                         "properties": properties})
    doc: dict[str, Any] = {"type": "FeatureCollection", "name": name, "features": features}
    if attribution:
        doc["attribution"] = attribution  # a foreign member (RFC 7946 section 6.1)
    return doc


def write_geojson(rows: Sequence[dict[str, Any]], stream: TextIO, *, name: str,
                  attribution: str | None = None) -> None:
    json.dump(geojson_document(rows, name=name, attribution=attribution), stream,
              ensure_ascii=False, indent=1, allow_nan=False)
    stream.write("\n")
