"""The review loop: export -> inspectors fill verdicts -> import -> verdicts carried forward."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from horeca.errors import UserError
from horeca.exports import (
    ReviewImportError,
    apply_verdicts,
    build_rows,
    export_places,
    import_review,
    review_labels,
    verdict_overrides,
)
from horeca.exports.review import normalise_verdict, parse_review_date
from horeca.exports.sample import create_sample_store
from horeca.exports.verdicts import format_register_number, parse_register_number
from horeca.legal_gate import audit
from horeca.store import open_db

ACTOR, PURPOSE = "analyst-a", "testing reviews"


@pytest.fixture()
def store(tmp_path: Path):
    db = open_db(tmp_path / "h.db")
    return db, create_sample_store(db)


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]], *,
           delimiter: str = ",", encoding: str = "utf-8-sig") -> None:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.DictWriter(fh, header, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


def _fill(path: Path, verdicts: dict[str, dict[str, str]], out: Path, **kw) -> None:
    """Fill the verdict columns of an exported CSV, as an inspector would."""
    header, rows = _read(path)
    for row in rows:
        row.update(verdicts.get(row["place_id"], {}))
    _write(out, header, rows, **kw)


def _export_csv(db, tmp_path: Path, name: str = "targets.csv", kind: str = "all") -> Path:
    path = tmp_path / name
    export_places(db, kind, "csv", path, actor=ACTOR, purpose=PURPOSE)
    return path


def _verdict_count(db) -> int:
    return db.execute("SELECT count(*) FROM verdicts").fetchone()[0]


def test_round_trip_stores_verdicts_idempotently_and_carries_them_forward(store, tmp_path):
    db, ids = store
    exported = _export_csv(db, tmp_path)
    filled = tmp_path / "filled.csv"
    _fill(exported, {
        ids["frituur-jan-peeters"]: {"verdict": "registered_under",
                                     "register_number": "BE 0700 000 104",
                                     "reviewed_on": "2026-10-05"},
        ids["script"]: {"verdict": "confirmed", "comment": "=no staff declared",
                        "reviewed_on": "05/10/2026"},
        ids["formula"]: {"verdict": "Not visited"},
        ids["tiny"]: {"verdict": "closed", "comment": "shutters down"},
    }, filled)

    first = import_review(db, filled, "Inspector B", ACTOR, PURPOSE)
    assert (first.added, first.changed, first.unchanged) == (4, 0, 0)
    assert first.with_verdict == 4 and first.without_verdict == 4
    stored = {r["place_id"]: r for r in db.query("SELECT * FROM verdicts")}
    assert stored[ids["script"]]["comment"] == "=no staff declared"  # quote stripped back
    assert stored[ids["script"]]["reviewed_at"] == "2026-10-05"
    assert stored[ids["formula"]]["verdict"] == "not_visited"
    assert stored[ids["tiny"]]["reviewed_at"].startswith("20")  # the export's timestamp
    registered = stored[ids["frituur-jan-peeters"]]
    assert registered["register_number"] == "0700.000.104"
    # The pseudonymised listing id in the file was mapped back to the real one.
    assert json.loads(registered["listing_ids"]) == ["gustoreviews:frituur-jan-peeters"]

    # "registered under" became a match to that enterprise's unit.
    result = db.execute("SELECT outcome, unit_id, reason FROM keying_results WHERE place_id=?",
                        [ids["frituur-jan-peeters"]]).fetchone()
    assert result[0] == "match" and result[1] == "2.100.000.114" and "Inspector B" in result[2]
    assert first.keying_results_changed == 1

    again = import_review(db, filled, "Inspector B", ACTOR, PURPOSE)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 4)
    assert _verdict_count(db) == 4 and apply_verdicts(db) == 0

    overrides = verdict_overrides(db)
    assert set(overrides) == {"gustoreviews:frituur-jan-peeters", "gustoreviews:script",
                              "gustoreviews:tiny"}  # not_visited settles nothing
    rows, _, left_out = build_rows(db, "all")
    assert left_out == 3
    shown = {r["place_id"]: r for r in rows}
    assert ids["script"] not in shown and ids["tiny"] not in shown
    assert shown[ids["formula"]]["previous_verdict"].startswith("not_visited by Inspector B")
    everything, _, _ = build_rows(db, "all", include_reviewed=True, reveal=True)
    frituur = next(r for r in everything if r["place_id"] == ids["frituur-jan-peeters"])
    assert frituur["outcome"] == "match" and frituur["register_unit"] == "2.100.000.114"

    actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions.count("review_import") == 2 and audit.verify(db) is None


def test_a_corrected_file_updates_the_verdict_instead_of_adding_one(store, tmp_path):
    db, ids = store
    exported = _export_csv(db, tmp_path)
    filled = tmp_path / "f.csv"
    _fill(exported, {ids["script"]: {"verdict": "confirmed", "reviewed_on": "2026-10-05"}},
          filled)
    import_review(db, filled, "B", ACTOR, PURPOSE)
    _fill(exported, {ids["script"]: {"verdict": "false_positive", "reviewed_on": "2026-10-05",
                                     "comment": "a private club"}}, filled)
    summary = import_review(db, filled, "B", ACTOR, PURPOSE)
    assert (summary.added, summary.changed) == (0, 1)
    assert [r["verdict"] for r in db.query("SELECT verdict FROM verdicts")] == [
        "false_positive"]


def test_verdicts_survive_a_change_of_place_ids(store, tmp_path):
    db, ids = store
    exported = _export_csv(db, tmp_path)
    filled = tmp_path / "f.csv"
    _fill(exported, {ids["script"]: {"verdict": "confirmed", "reviewed_on": "2026-10-05"}},
          filled)
    import_review(db, filled, "B", ACTOR, PURPOSE)
    # Keying runs again and the place gets another id (e.g. a new listing joined it).
    with db.conn:
        db.conn.execute("INSERT INTO places (id, listing_ids, name) SELECT 'pl-new', "
                        "listing_ids, name FROM places WHERE id = ?", [ids["script"]])
        db.conn.execute("UPDATE keying_results SET place_id = 'pl-new' WHERE place_id = ?",
                        [ids["script"]])
        db.conn.execute("DELETE FROM places WHERE id = ?", [ids["script"]])
    rows, _, left_out = build_rows(db, "all")
    assert left_out == 1 and "pl-new" not in {r["place_id"] for r in rows}
    again = import_review(db, filled, "B", ACTOR, PURPOSE)  # old place id, same listings
    assert (again.added, again.unchanged) == (0, 1) and _verdict_count(db) == 1


def test_xlsx_round_trip_with_dates_typed_by_excel(store, tmp_path):
    db, ids = store
    path = tmp_path / "doubt.xlsx"
    export_places(db, "doubt", "xlsx", path, actor=ACTOR, purpose=PURPOSE)
    wb = load_workbook(path)
    ws = wb["places"]
    header = [c.value for c in ws[1]]
    col = {name: i + 1 for i, name in enumerate(header)}
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, col["place_id"]).value == ids["geocoded"]:
            ws.cell(r, col["verdict"]).value = "false_positive"
            ws.cell(r, col["reviewed_on"]).value = datetime(2026, 10, 7)
            ws.cell(r, col["comment"]).value = "a private kitchen"
    wb.save(path)
    summary = import_review(db, path, "C", ACTOR, PURPOSE)
    assert summary.added == 1
    row = next(db.query("SELECT * FROM verdicts"))
    assert (row["place_id"], row["verdict"], row["reviewed_at"]) == (
        ids["geocoded"], "false_positive", "2026-10-07")


def test_csv_resaved_by_a_belgian_excel_still_imports(store, tmp_path):
    """Excel in a nl-BE/fr-BE locale saves ';'-separated CSV in the Windows code page."""
    db, ids = store
    exported = _export_csv(db, tmp_path)
    filled = tmp_path / "excel.csv"
    _fill(exported, {ids["parc"]: {"verdict": "confirmed", "reviewed_on": "6/10/2026",
                                   "comment": "déclaration vérifiée"}},
          filled, delimiter=";", encoding="cp1252")
    import_review(db, filled, "D", ACTOR, PURPOSE)
    row = next(db.query("SELECT * FROM verdicts"))
    assert row["comment"] == "déclaration vérifiée" and row["reviewed_at"] == "2026-10-06"


@pytest.mark.parametrize(("cells", "message"), [
    ({"verdict": "maybe"}, "unknown verdict 'maybe'"),
    ({"verdict": "registered_under"}, "needs a register number"),
    ({"verdict": "registered_under", "register_number": "0123.456.789"},
     "not a valid enterprise or establishment number"),
    ({"verdict": "confirmed", "register_number": "0700.000.104"}, "a register number with"),
    ({"verdict": "confirmed", "reviewed_on": "next tuesday"}, "unreadable date"),
    ({"verdict": "confirmed", "reviewed_on": "2999-01-01"}, "in the future"),
    ({"verdict": "confirmed", "place_id": "pl-unknown", "listing_ids": "nowhere:1"},
     "unknown place id 'pl-unknown'"),
    ({"comment": "went there"}, "but no verdict"),
])
def test_invalid_rows_are_refused_with_file_and_line_and_nothing_stored(
        store, tmp_path, cells, message):
    db, _ = store
    exported = _export_csv(db, tmp_path)
    _, rows = _read(exported)
    good_id = rows[0]["place_id"]
    bad_id = rows[2]["place_id"]
    filled = tmp_path / "bad.csv"
    _fill(exported, {good_id: {"verdict": "confirmed", "reviewed_on": "2026-10-05"},
                     bad_id: cells}, filled)
    with pytest.raises(ReviewImportError) as err:
        import_review(db, filled, "E", ACTOR, PURPOSE)
    assert f"{filled}:4: " in str(err.value) and message in str(err.value)
    assert "nothing was stored" in str(err.value)
    assert _verdict_count(db) == 0
    assert db.execute("SELECT count(*) FROM audit_log WHERE action='review_import'"
                      ).fetchone()[0] == 0

    summary = import_review(db, filled, "E", ACTOR, PURPOSE, skip_invalid=True)
    assert summary.added == 1 and summary.skipped_invalid == 1
    assert summary.problems[0].line == 4 and _verdict_count(db) == 1


def test_conflicting_rows_for_one_place_are_refused(store, tmp_path):
    db, _ = store
    exported = _export_csv(db, tmp_path)
    header, rows = _read(exported)
    row = dict(rows[0], verdict="confirmed", reviewed_on="2026-10-05")
    twin = dict(rows[0], verdict="closed", reviewed_on="2026-10-05")
    filled = tmp_path / "twins.csv"
    _write(filled, header, [row, twin])
    with pytest.raises(ReviewImportError, match="line 2"):
        import_review(db, filled, "F", ACTOR, PURPOSE)


def test_files_that_are_not_exports_are_refused_clearly(store, tmp_path):
    db, _ = store
    plain = tmp_path / "notes.csv"
    plain.write_text("name,comment\nx,y\n", encoding="utf-8")
    with pytest.raises(UserError, match="missing column"):
        import_review(db, plain, "G", ACTOR, PURPOSE)
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    with pytest.raises(UserError, match=r"cannot import \.pdf"):
        import_review(db, pdf, "G", ACTOR, PURPOSE)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read this XLSX"):
        import_review(db, broken, "G", ACTOR, PURPOSE)
    with pytest.raises(UserError, match="not found"):
        import_review(db, tmp_path / "missing.csv", "G", ACTOR, PURPOSE)
    with pytest.raises(UserError, match="no reviewer"):
        import_review(db, plain, "  ", ACTOR, PURPOSE)


def test_cli_review_import_prints_what_it_stored(store, tmp_path):
    db, ids = store
    exported = _export_csv(db, tmp_path)
    filled = tmp_path / "filled.csv"
    _fill(exported, {ids["parc"]: {"verdict": "confirmed", "reviewed_on": "2026-10-05"}},
          filled)
    cmd = [sys.executable, "-m", "horeca", "--db", str(tmp_path / "h.db"), "review",
           "import", str(filled), "--reviewer", "Inspector H"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "1 verdicts by Inspector H: 1 added" in first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert "0 added, 0 changed, 1 already stored" in second.stderr


@pytest.mark.parametrize(("text", "expected"), [
    ("0123.456.749", "0123456749"), ("BE0123456749", "0123456749"),
    ("123456749", "0123456749"), ("2.100.000.015", "2100000015"),
    ("0123.456.789", None), ("2.100.000.016", None), ("", None), ("abc", None),
])
def test_register_numbers_are_checked(text, expected) -> None:
    assert parse_register_number(text) == expected


@given(st.integers(0, 99_999_999), st.sampled_from(["0", "1", "2", "5", "9"]))
def test_register_numbers_round_trip_through_their_formatting(base, first) -> None:
    base8 = int(first + f"{base:07d}"[-7:])
    digits = f"{base8:08d}{97 - base8 % 97:02d}"
    assert parse_register_number(format_register_number(digits)) == digits


@pytest.mark.parametrize(("text", "expected"), [
    ("Registered under", "registered_under"), ("false-positive", "false_positive"),
    (" CONFIRMED ", "confirmed"), ("not visited", "not_visited"), ("gone", None),
])
def test_verdicts_are_read_leniently(text, expected) -> None:
    assert normalise_verdict(text) == expected


def test_review_dates() -> None:
    assert parse_review_date("2026-10-05") == "2026-10-05"
    assert parse_review_date("5/10/2026") == "2026-10-05"
    assert parse_review_date("05.10.2026") == "2026-10-05"
    assert parse_review_date("2026-10-01T08:00:00+00:00") == "2026-10-01T08:00:00+00:00"
    assert parse_review_date("soon") is None


def test_verdicts_become_keying_labels_that_follow_listings(store, tmp_path):
    db, ids = store
    exported = _export_csv(db, tmp_path)
    filled = tmp_path / "f.csv"
    day = {"reviewed_on": "2026-10-05"}
    _fill(exported, {
        ids["parc"]: {"verdict": "confirmed", **day},          # a match, right unit
        ids["grand"]: {"verdict": "false_positive", **day},    # a match, wrong unit
        ids["script"]: {"verdict": "confirmed", **day},        # a no-match, truly absent
        ids["tiny"]: {"verdict": "closed", **day},             # nothing to learn
        ids["frituur-jan-peeters"]: {"verdict": "registered_under",
                                     "register_number": "0700000104", **day},
    }, filled)
    import_review(db, filled, "B", ACTOR, PURPOSE)
    stored = {r["place_id"]: r for r in db.query("SELECT * FROM verdicts")}
    assert (stored[ids["parc"]]["outcome"], stored[ids["parc"]]["unit_id"]) == (
        "match", "2.100.000.015")
    assert (stored[ids["script"]]["outcome"], stored[ids["script"]]["unit_id"]) == (
        "no-match", None)

    places = [(r["id"], json.loads(r["listing_ids"])) for r in db.query("SELECT * FROM places")]
    places.append(("P-rekeyed", ["gustoreviews:script"]))  # same listing, new place id
    labels = review_labels(db, places)
    assert labels.pairs == {(ids["parc"], "2.100.000.015"): 1,
                            (ids["grand"], "2.100.000.213"): 0}
    assert labels.absent == {ids["script"], "P-rekeyed"}
    assert labels.registered_under == {ids["frituur-jan-peeters"]: "2.100.000.114"}


def test_a_pseudonymised_matched_unit_is_mapped_back_on_import(store, tmp_path):
    db, ids = store
    exported = _export_csv(db, tmp_path)
    filled = tmp_path / "f.csv"
    _fill(exported, {ids["frituur-jan-peeters"]: {
        "verdict": "registered_under", "register_number": "0700.000.104",
        "reviewed_on": "2026-10-05"}}, filled)
    import_review(db, filled, "B", ACTOR, PURPOSE)
    # A second inspector sees the (now matched, pseudonymised) row and confirms it.
    second = tmp_path / "second.csv"
    export_places(db, "match", "csv", second, actor=ACTOR, purpose=PURPOSE,
                  include_reviewed=True)
    _, rows = _read(second)
    row = next(r for r in rows if r["place_id"] == ids["frituur-jan-peeters"])
    assert row["register_unit"].startswith("unit-")
    _fill(second, {ids["frituur-jan-peeters"]: {"verdict": "confirmed",
                                                "reviewed_on": "2026-10-09"}}, filled)
    import_review(db, filled, "C", ACTOR, PURPOSE)
    latest = next(db.query("SELECT * FROM verdicts WHERE reviewer = 'C'"))
    assert (latest["outcome"], latest["unit_id"]) == ("match", "2.100.000.114")
