"""Export files: XLSX structure, GeoJSON validity, CSV/XLSX formula injection, HTML
escaping, pseudonymisation and the audit of every export and every --reveal."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from horeca.errors import UserError
from horeca.exports import export_places, top_targets
from horeca.exports.export import build_rows
from horeca.exports.rows import COLUMN_NAMES
from horeca.exports.safety import neutralise_formula, strip_neutralising_quote
from horeca.exports.sample import create_sample_store
from horeca.exports.writers import cell_text
from horeca.legal_gate import audit
from horeca.store import open_db

ACTOR, PURPOSE = "analyst-a", "testing exports"


@pytest.fixture()
def store(tmp_path: Path):
    db = open_db(tmp_path / "h.db")
    ids = create_sample_store(db)
    return db, ids


def _export(db, tmp_path: Path, name: str, kind: str = "all", **kw):
    path = tmp_path / name
    summary = export_places(db, kind, None, path, actor=ACTOR, purpose=PURPOSE, **kw)
    return path, summary


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# --- formula injection ----------------------------------------------------------------

@pytest.mark.parametrize("payload", ["=1+1", "+32 2 513", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_triggers_are_prefixed_and_reversible(payload: str) -> None:
    safe = neutralise_formula(payload)
    assert safe == "'" + payload
    assert strip_neutralising_quote(safe) == payload


@given(st.text(max_size=12))
def test_neutralised_text_never_starts_a_formula_and_reads_back_exactly(text: str) -> None:
    safe = neutralise_formula(text)
    assert not safe.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert strip_neutralising_quote(safe) == text


def test_plain_text_and_numbers_are_left_alone() -> None:
    assert neutralise_formula("Brasserie = good") == "Brasserie = good"
    assert strip_neutralising_quote("'t Hoekske") == "'t Hoekske"  # a real apostrophe name
    assert cell_text("lon", -3.5) == "-3.5"          # numeric column: stays a number
    assert cell_text("name", "-3.5") == "'-3.5"      # text column: neutralised
    assert cell_text("rank", 7) == "7" and cell_text("lat", None) == ""


def test_csv_is_utf8_with_bom_stable_columns_and_neutralised(store, tmp_path: Path) -> None:
    db, _ = store
    path, summary = _export(db, tmp_path, "all.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = _csv_rows(path)
    assert tuple(rows[0]) == COLUMN_NAMES and summary.rows == len(rows) == 8
    by_name = {r["name"]: r for r in rows}
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in by_name
    formula = by_name["'=HYPERLINK(\"http://evil.example\",\"x\")"]
    assert formula["street"] == "'-Avenue Louise" and formula["house_number"] == "'@5"
    assert formula["phones"] == "'+3226400000"
    assert "'\tCafé Tab" in by_name
    for row in rows:  # no text cell may start with a trigger unless neutralised
        for col, value in row.items():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), (col, value)
            if value.startswith("-"):
                float(value)  # only numbers may start with a minus
    assert [int(r["rank"]) for r in rows] == list(range(1, 9))
    assert [float(r["priority"]) for r in rows] == sorted(
        (float(r["priority"]) for r in rows), reverse=True)


# --- XLSX -------------------------------------------------------------------------------

def test_xlsx_has_frozen_header_filter_widths_and_verdict_dropdown(store, tmp_path) -> None:
    db, _ = store
    path, summary = _export(db, tmp_path, "doubt.xlsx", kind="doubt")
    wb = load_workbook(path)
    ws = wb["places"]
    assert ws.freeze_panes == "E2"
    assert ws.auto_filter.ref == f"A1:{ws.cell(1, len(COLUMN_NAMES)).column_letter}3"
    header = [c.value for c in ws[1]]
    assert header == list(COLUMN_NAMES)
    widths = {col: ws.column_dimensions[ws.cell(1, i).column_letter].width
              for i, col in enumerate(COLUMN_NAMES, start=1)}
    assert all(6 <= w <= 60 for w in widths.values())
    assert widths["priority_reason"] > widths["rank"]
    (dv,) = ws.data_validations.dataValidation
    assert dv.type == "list" and "registered_under" in dv.formula1
    verdict_letter = ws.cell(1, COLUMN_NAMES.index("verdict") + 1).column_letter
    assert str(dv.sqref) == f"{verdict_letter}2:{verdict_letter}3"
    assert summary.rows == ws.max_row - 1 == 2
    rank = ws.cell(2, 1).value
    lat = ws.cell(2, COLUMN_NAMES.index("lat") + 1).value
    assert isinstance(rank, int) and isinstance(lat, float)
    assert "about" in wb.sheetnames


def test_xlsx_cells_are_strings_never_formulas(store, tmp_path) -> None:
    db, _ = store
    path, _ = _export(db, tmp_path, "nm.xlsx", kind="no-match")
    ws = load_workbook(path)["places"]
    cells = [c for row in ws.iter_rows(min_row=2) for c in row]
    assert all(c.data_type != "f" for c in cells)
    names = [ws.cell(r, 4).value for r in range(2, ws.max_row + 1)]
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in names


# --- GeoJSON ----------------------------------------------------------------------------

def test_geojson_is_a_feature_collection_in_lon_lat_order(store, tmp_path) -> None:
    db, _ = store
    path, summary = _export(db, tmp_path, "all.geojson", reveal=True)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 8
    located = [f for f in doc["features"] if f["geometry"]]
    unlocated = [f for f in doc["features"] if f["geometry"] is None]
    assert len(unlocated) == summary.without_coordinates == 1
    for f in located:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
        lon, lat = f["geometry"]["coordinates"]
        assert 4.2 < lon < 4.5 and 50.7 < lat < 50.95  # Brussels: lon first
        assert (lon, lat) == (f["properties"]["lon"], f["properties"]["lat"])
        assert all(not isinstance(v, dict | list) for v in f["properties"].values())
    assert "OpenStreetMap" in doc["attribution"]


# --- HTML -------------------------------------------------------------------------------

class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_script = tag == "script"
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def test_html_escapes_every_value_and_fetches_nothing(store, tmp_path) -> None:
    db, _ = store
    path, _ = _export(db, tmp_path, "all.html")
    page = path.read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Bar" in page
    parser = _Collector()
    parser.feed(page)
    assert len(parser.scripts) == 1 and "alert" not in parser.scripts[0]  # only our own
    assert parser.tags.count("script") == 1
    assert all(u.startswith("#") for u in parser.urls)  # in-page links only
    assert "default-src 'none'" in page
    assert page.count("<circle") == 7  # every located place, none for the one without
    assert "<svg" in page and "OpenStreetMap" in page


# --- pseudonymisation and audit ---------------------------------------------------------

def _row_of(rows, place_id):
    return next(r for r in rows if place_id in (r["place_id"],))


def test_natural_persons_are_pseudonymised_by_default(store, tmp_path) -> None:
    db, ids = store
    path, summary = _export(db, tmp_path, "doubt.csv", kind="doubt")
    text = path.read_text(encoding="utf-8-sig")
    for secret in ("Jan Peeters", "Peeters Jan", "+32470123456", "0470 12 34 56",
                   "janpeeters.example", "frituur-jan-peeters", "0700.000.104",
                   "2.100.000.114", "Bouchers\",7"):
        assert secret not in text, secret
    row = _row_of(_csv_rows(path), ids["frituur-jan-peeters"])
    assert row["pseudonymised"] == "yes" and row["natural_person"] == "yes"
    assert row["name"].startswith("person-") and row["phones"].startswith("'+") is False
    assert row["phones"].startswith("phone-") and row["websites"].startswith("web-")
    assert row["street"] == "Rue des Bouchers" and row["house_number"] == "" == row["box"]
    assert row["lat"] == "50.848" and row["lon"] == "4.354"  # street level
    assert row["candidate_1"].startswith("unit-") and row["candidate_1_name"].startswith(
        "person-")
    assert row["candidate_2"] == "2.100.000.312"  # a company stays in clear
    assert row["name"] in row["reason"]  # the keying reason quoted the name: replaced too
    assert summary.pseudonymised == 1 and summary.revealed == 0
    again, _ = _export(db, tmp_path, "doubt2.csv", kind="doubt")
    assert _row_of(_csv_rows(again), ids["frituur-jan-peeters"])["name"] == row["name"]


def test_every_export_is_audited_and_reveal_separately(store, tmp_path) -> None:
    db, ids = store
    _export(db, tmp_path, "a.csv", kind="no-match", limit=2)
    entries = list(db.query("SELECT * FROM audit_log ORDER BY id"))
    assert [e["action"] for e in entries] == ["export"]
    assert entries[0]["rows"] == 2 and entries[0]["actor"] == ACTOR
    assert entries[0]["purpose"] == PURPOSE and entries[0]["target"].endswith("a.csv")
    assert json.loads(entries[0]["details"])["kind"] == "no-match"

    path, summary = _export(db, tmp_path, "clear.csv", kind="doubt", reveal=True)
    row = _row_of(_csv_rows(path), ids["frituur-jan-peeters"])
    assert row["name"] == "Frituur Jan Peeters" and row["house_number"] == "7"
    assert row["pseudonymised"] == "no" and summary.revealed == 1
    last = list(db.query("SELECT * FROM audit_log ORDER BY id"))[-2:]
    assert [e["action"] for e in last] == ["export", "reveal"]
    assert json.loads(last[1]["details"])["place_ids"] == [ids["frituur-jan-peeters"]]
    assert last[1]["rows"] == 1
    assert audit.verify(db) is None


def test_failed_export_leaves_no_file_and_no_audit(store, tmp_path) -> None:
    db, _ = store
    with pytest.raises(UserError, match="does not exist"):
        export_places(db, "all", "csv", tmp_path / "nope" / "x.csv", actor=ACTOR,
                      purpose=PURPOSE)
    with pytest.raises(UserError, match="unknown export kind"):
        export_places(db, "maybe", "csv", tmp_path / "x.csv", actor=ACTOR, purpose=PURPOSE)
    with pytest.raises(UserError, match="cannot tell the format"):
        export_places(db, "all", None, tmp_path / "x.txt", actor=ACTOR, purpose=PURPOSE)
    assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
    assert list(tmp_path.glob("*.csv")) == [] and list(tmp_path.glob(".*part")) == []


def test_empty_store_says_to_run_keying_first(tmp_path) -> None:
    db = open_db(tmp_path / "empty.db")
    with pytest.raises(UserError, match="horeca key"):
        export_places(db, "all", "csv", tmp_path / "x.csv", actor=ACTOR, purpose=PURPOSE)
    assert top_targets(db) == []


def test_kinds_filter_outcomes_and_limit_keeps_the_top(store) -> None:
    db, _ = store
    for kind in ("no-match", "doubt", "match"):
        rows, _, _ = build_rows(db, kind)
        assert rows and {r["outcome"] for r in rows} == {kind}
    everything, _, _ = build_rows(db, "all")
    top, _, _ = build_rows(db, "all", limit=3)
    assert [r["place_id"] for r in top] == [r["place_id"] for r in everything[:3]]


def test_top_targets_rank_busy_unregistered_and_under_declared_places_first(store) -> None:
    db, ids = store
    targets = top_targets(db, n=3)
    assert [t.rank for t in targets] == [1, 2, 3]
    assert targets[0].place_id == ids["script"]  # 500 reviews, no register unit at all
    assert ids["parc"] in {t.place_id for t in targets}  # matched but declares 1 worker
    assert ids["grand"] not in {t.place_id for t in top_targets(db, n=6)}  # 35 workers
    assert all(not (t.name or "").startswith("Frituur") for t in top_targets(db, n=8))


def test_cli_export_writes_the_file_and_prints_one_summary(store, tmp_path) -> None:
    out = tmp_path / "cli.xlsx"
    result = subprocess.run(
        [sys.executable, "-m", "horeca", "--db", str(tmp_path / "h.db"), "--analyst", "cli-a",
         "export", "no-match", "-o", str(out), "--limit", "2"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "wrote 2 places" in result.stderr and out.exists()


def test_cli_export_mistake_is_one_line_without_traceback(store, tmp_path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "horeca", "--db", str(tmp_path / "h.db"), "export", "all",
         "-o", str(tmp_path / "x.pdf")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "--format" in bad.stderr
