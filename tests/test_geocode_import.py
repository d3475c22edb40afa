"""Gazetteer imports: BeST Address (streamed, encodings, archives, bad rows) and segments."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest
import sqlite_utils
from typer.testing import CliRunner

from horeca.cli import app
from horeca.errors import UserError
from horeca.geocode.gazetteer import load_gazetteer
from horeca.geocode.loaders import SEGMENT_COLUMNS, import_best, import_segments
from horeca.geocode.model import AddressQuery
from horeca.region import resolve_region
from horeca.store import open_db

BEST_HEADER = ("EPSG:31370_x,EPSG:31370_y,EPSG:4326_lat,EPSG:4326_lon,address_id,box_number,"
               "house_number,municipality_id,municipality_name_de,municipality_name_fr,"
               "municipality_name_nl,postcode,postname_fr,postname_nl,street_id,streetname_de,"
               "streetname_fr,streetname_nl,region_code,status")


def best_row(lat: str, lon: str, number: str, street_fr: str, street_nl: str, *,
             box: str = "", postcode: str = "1000", status: str = "current",
             mun_fr: str = "Bruxelles", mun_nl: str = "Brussel") -> str:
    return (f"0,0,{lat},{lon},1,{box},{number},21004,,{mun_fr},{mun_nl},{postcode},,,1,,"
            f"{street_fr},{street_nl},BE-BRU,{status}")


BEST_ROWS = [
    best_row("50.84616", "4.36653", "16", "Rue de la Loi", "Wetstraat"),
    best_row("50.84616", "4.36653", "16", "Rue de la Loi", "Wetstraat", box="1"),
    best_row("50.84616", "4.36653", "16", "Rue de la Loi", "Wetstraat", box="2"),
    best_row("50.84700", "4.36400", "12A", "Rue de la Loi", "Wetstraat"),
    best_row("50.84500", "4.37000", "20", "Rue de la Loi", "Wetstraat", status="retired"),
    best_row("", "", "22", "Rue de la Loi", "Wetstraat"),
    best_row("50.84500", "4.37000", "24", "", ""),
    best_row("51.21000", "4.40000", "1", "Meir", "Meir", postcode="2000", mun_fr="Anvers",
             mun_nl="Antwerpen"),
]


def write_best(path: Path, rows: list[str] = BEST_ROWS, *, header: str = BEST_HEADER,
               encoding: str = "utf-8", delimiter: str = ",") -> Path:
    text = "\n".join([header, *rows]) + "\n"
    path.write_bytes(text.replace(",", delimiter).encode(encoding))
    return path


@pytest.fixture()
def db(tmp_path: Path) -> sqlite_utils.Database:
    return open_db(tmp_path / "h.db")


def points(db: sqlite_utils.Database) -> list[tuple]:
    """(postcode, street_fr, street_nl, house number, lat) of every stored point."""
    return db.conn.execute(
        "SELECT s.postcode, s.street_fr, s.street_nl, a.house_number, a.lat "
        "FROM gazetteer_addresses a JOIN gazetteer_address_streets s ON s.id = a.street_id "
        "ORDER BY s.postcode, a.house_number").fetchall()


def test_best_import_keeps_one_point_per_house_number_and_counts_what_it_skipped(
        db: sqlite_utils.Database, tmp_path: Path) -> None:
    summary = import_best(db, write_best(tmp_path / "best.csv"), actor="tester")
    assert summary.rows_read == 8
    assert summary.skipped == {"not_current": 1, "bad_coordinates": 1, "no_street": 1}
    assert summary.first_skipped_line == {"not_current": 6, "bad_coordinates": 7, "no_street": 8}
    assert [(p[0], p[3]) for p in points(db)] == [("1000", "12A"), ("1000", "16"),
                                                  ("2000", "1")]
    assert db["gazetteer_address_streets"].count == 2
    assert summary.rows_kept == 3
    source = db["gazetteer_sources"].get("best")
    assert source["kind"] == "addresses" and source["rows"] == 3
    audit_row = db.conn.execute("SELECT action, actor, target, rows FROM audit_log").fetchone()
    assert audit_row == ("import", "tester", "gazetteer_addresses", 3)


def test_best_import_with_a_region_keeps_only_its_postcodes(
        db: sqlite_utils.Database, tmp_path: Path) -> None:
    summary = import_best(db, write_best(tmp_path / "best.csv"),
                          region=resolve_region("brussels"))
    assert summary.skipped["outside_region"] == 1
    assert {p[0] for p in points(db)} == {"1000"}


def test_reimporting_a_source_replaces_it_and_drops_cached_gazetteer_answers(
        db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = write_best(tmp_path / "best.csv")
    import_best(db, path)
    db["geocodes"].insert({"key": "gazetteer#x|1|1000||be", "provider": "gazetteer",
                           "status": "ok"})
    db["geocodes"].insert({"key": "nominatim#x|1|1000||be", "provider": "nominatim",
                           "status": "ok"})
    write_best(path, BEST_ROWS[:1])
    import_best(db, path)
    assert db["gazetteer_addresses"].count == 1
    assert [r["provider"] for r in db["geocodes"].rows] == ["nominatim"]


def test_windows_1252_with_semicolons_is_read_with_its_accents(
        db: sqlite_utils.Database, tmp_path: Path) -> None:
    rows = [best_row("50.8300", "4.3800", "7", "Chaussée de Wavre", "Waversesteenweg",
                     postcode="1050", mun_fr="Ixelles", mun_nl="Elsene")]
    path = write_best(tmp_path / "best.csv", rows, encoding="cp1252", delimiter=";")
    summary = import_best(db, path)
    assert summary.encoding == "cp1252"
    assert points(db) == [("1050", "Chaussée de Wavre", "Waversesteenweg", "7", 50.83)]


def test_utf8_bom_and_mixed_case_header_are_accepted(db: sqlite_utils.Database,
                                                      tmp_path: Path) -> None:
    header = BEST_HEADER.replace("EPSG:4326_lat", "epsg:4326_Lat").replace("postcode", "PostCode")
    path = write_best(tmp_path / "best.csv", BEST_ROWS[:1], header=header, encoding="utf-8-sig")
    assert import_best(db, path).rows_kept == 1


@pytest.mark.parametrize("archive", ["gz", "zip"])
def test_compressed_files_are_streamed(db: sqlite_utils.Database, tmp_path: Path,
                                       archive: str) -> None:
    plain = write_best(tmp_path / "openaddress-bebru.csv")
    if archive == "gz":
        target = tmp_path / "openaddress-bebru.csv.gz"
        target.write_bytes(gzip.compress(plain.read_bytes()))
    else:
        target = tmp_path / "openaddress-bebru.zip"
        with zipfile.ZipFile(target, "w") as z:
            z.write(plain, "openaddress-bebru.csv")
    summary = import_best(db, target)
    assert summary.rows_kept == 3 and summary.source == "openaddress-bebru"


def test_missing_column_is_one_clear_error(db: sqlite_utils.Database, tmp_path: Path) -> None:
    header = BEST_HEADER.replace("EPSG:4326_lon", "longitude")
    path = write_best(tmp_path / "best.csv", BEST_ROWS[:1], header=header)
    with pytest.raises(UserError) as err:
        import_best(db, path)
    assert err.value.line == 1 and "EPSG:4326_lon" in str(err.value)
    assert db["gazetteer_addresses"].count == 0


def test_file_without_street_columns_is_refused(db: sqlite_utils.Database,
                                                tmp_path: Path) -> None:
    header = "EPSG:4326_lat,EPSG:4326_lon,house_number,postcode"
    path = tmp_path / "best.csv"
    path.write_text(header + "\n50.8,4.3,1,1000\n")
    with pytest.raises(UserError, match="no street name column"):
        import_best(db, path)


def test_bytes_of_another_encoding_deep_in_a_file_name_the_line(
        db: sqlite_utils.Database, tmp_path: Path) -> None:
    # 64 KiB of ASCII rows make the file look like UTF-8; a cp1252 'é' follows.
    ascii_rows = [best_row("50.84", "4.36", str(n), "Rue Neuve", "Nieuwstraat")
                  for n in range(1, 900)]
    path = tmp_path / "best.csv"
    text = "\n".join([BEST_HEADER, *ascii_rows]) + "\n"
    bad = best_row("50.84", "4.36", "901", "Rue Sainte-Gudule", "Sint-Goedelestraat")
    path.write_bytes(text.encode() + bad.replace("Gudule", "Gud\xe9le").encode("cp1252") + b"\n")
    assert path.stat().st_size > 65536
    with pytest.raises(UserError) as err:
        import_best(db, path)
    assert "--encoding" in str(err.value) and err.value.line is not None
    assert db["gazetteer_addresses"].count == 0   # nothing half-imported
    assert import_best(db, path, encoding="cp1252").rows_kept == 900


def test_empty_and_headerless_files_are_refused(db: sqlite_utils.Database,
                                                tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="empty"):
        import_best(db, empty)
    with pytest.raises(UserError, match="not found"):
        import_best(db, tmp_path / "nope.csv")


SEGMENTS = ",".join(SEGMENT_COLUMNS) + """
Rue de la Loi,Wetstraat,1000,Bruxelles,Brussel,1,99,50.8460,4.3600,50.8420,4.3800
Avenue Louise,Louizalaan,1050,Ixelles,Elsene,1,199,50.8350,4.3600,50.8200,4.3700
"""


def test_segments_import_and_load_merge_with_best_points_by_name(
        db: sqlite_utils.Database, tmp_path: Path) -> None:
    seg = tmp_path / "gazetteer.csv"
    seg.write_text(SEGMENTS)
    assert import_segments(db, seg).rows_kept == 2
    import_best(db, write_best(tmp_path / "best.csv"))
    gaz = load_gazetteer(db)
    # Rue de la Loi exists in both: one street with the segment and the BeST points.
    exact = gaz.match(AddressQuery(street="wetstraat", number=16, postcode="1000"))
    assert exact.method == "exact" and exact.lat == 50.84616
    along = gaz.match(AddressQuery(street="rue de la loi", number=51, postcode="1000"))
    assert along.method == "segment" and along.lat == pytest.approx(50.8440)
    only_1050 = load_gazetteer(db, {"1050"})
    assert set(only_1050.areas) == {"1050"}

def test_loaded_index_averages_a_number_written_twice_and_merges_one_street_of_two_files(
        db: sqlite_utils.Database, tmp_path: Path) -> None:
    import_best(db, write_best(tmp_path / "a.csv", [
        best_row("50.84000", "4.36000", "12a", "Rue de la Loi", "Wetstraat"),
        best_row("50.85000", "4.37000", "12A", "Rue de la Loi", "Wetstraat"),
        best_row("50.84100", "4.36100", "14", "Rue de la Loi", "Wetstraat"),
        best_row("50.84300", "4.36300", "18", "Rue Neuve", "Nieuwstraat")]))
    import_best(db, write_best(tmp_path / "b.csv", [
        best_row("50.84200", "4.36200", "16", "Rue Neuve", "Nieuwstraat"),
        best_row("50.84400", "4.36400", "18", "Rue Neuve", "Nieuwstraat")]))
    gaz = load_gazetteer(db)

    def at(street: str, number: int, suffix: str = "") -> tuple[float | None, float | None,
                                                                 str | None]:
        answer = gaz.match(AddressQuery(street=street, number=number, suffix=suffix,
                                        postcode="1000"))
        return answer.lat, answer.lon, answer.method

    # One file, "12a" and "12A": one address at their mean.
    assert at("rue de la loi", 12, "a") == (50.845, 4.365, "exact")
    assert at("rue de la loi", 12) == (50.845, 4.365, "exact")   # its lettered point
    assert at("rue de la loi", 14) == (50.841, 4.361, "exact")
    # Two files, one street: the points of both, a number in both at their mean.
    assert at("rue neuve", 16) == (50.842, 4.362, "exact")
    assert at("rue neuve", 18) == (50.8435, 4.3635, "exact")
    assert at("rue neuve", 20) == (50.8435, 4.3635, "nearest_number")
    assert at("rue neuve", 17)[2] == "street_centroid"            # no odd number here
    assert len(gaz) == 2


@pytest.mark.parametrize(("bad", "message", "line"), [
    ("Rue X,,1000,,,1,9,50.8,4.3,50.9,4.4", None, None),
    (",,1000,,,1,9,50.8,4.3,50.9,4.4", "neither street_fr nor street_nl", 3),
    ("Rue X,,10000,,,1,9,50.8,4.3,50.9,4.4", "postcode", 3),
    ("Rue X,,1000,,,one,9,50.8,4.3,50.9,4.4", "house_from", 3),
    ("Rue X,,1000,,,1,9,0,0,50.9,4.4", "WGS84", 3),
])
def test_segment_rows_are_checked_with_their_line(db: sqlite_utils.Database, tmp_path: Path,
                                                  bad: str, message: str | None,
                                                  line: int | None) -> None:
    path = tmp_path / "g.csv"
    path.write_text(SEGMENTS.splitlines()[0] + "\n" + SEGMENTS.splitlines()[1] + "\n" + bad + "\n")
    if message is None:
        assert import_segments(db, path).rows_kept == 2
        return
    with pytest.raises(UserError, match=message) as err:
        import_segments(db, path)
    assert err.value.line == line
    assert db["gazetteer_streets"].count == 0


def test_cli_imports_and_reports_bad_files_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    db_path = str(tmp_path / "h.db")
    ok = runner.invoke(app, ["--db", db_path, "geocode", "import-best",
                             str(write_best(tmp_path / "best.csv"))])
    assert ok.exit_code == 0, ok.output
    assert "3 rows kept of 8 read" in ok.output and "not_current" in ok.output
    broken = tmp_path / "broken.csv"
    broken.write_text("a,b,c\n1,2,3\n")
    bad = runner.invoke(app, ["--db", db_path, "geocode", "import-gazetteer", str(broken)])
    assert bad.exit_code != 0
    # The one-line rendering (exit status 2, no traceback) belongs to cli.py; what this
    # command owes it is a UserError naming the file, the line and the missing columns.
    said = bad.output + str(bad.exception or "")
    assert "broken.csv:1: missing column(s) postcode, house_from" in said
    assert "(fix: the header must name street_fr" in said
