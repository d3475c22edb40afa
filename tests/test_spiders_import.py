"""`horeca listings import`: CSV and JSON lines with a mapping, the same normalisation and
minimisation as a crawl, idempotent re-import, and bad files reported by file and line
with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from horeca.cli import app
from horeca.errors import UserError
from horeca.legal_gate.config import load_sources
from horeca.region import resolve_region
from horeca.spiders.importer import import_listings, load_mapping
from horeca.store import open_db

SOURCES = """
[defaults]
user_agent = "horeca-test/0.1 (+mailto:t@inspection.example)"

[sources.othertool]
spider = "structured"
status = "approved"
allowed_domains = ["other.example"]
start_urls = ["http://other.example/"]
reviewer = "A. Reviewer"
reviewed_on = 2026-10-01
legal_basis = "test"
purpose = "test"
terms_url = "http://other.example/terms/"
terms_sha256 = "{sha}"
allowed_fields = ["name", "address", "geo", "website"]

[sources.waiting]
spider = "structured"
status = "pending"
allowed_domains = ["wait.example"]
start_urls = ["http://wait.example/"]
""".replace("{sha}", "0" * 64)

CSV = """\ufeffRef;Business name;Adres;Tel;Site;Lat;Lon;Reviewer
a1;"Chez  L&eacute;on";Rue des Bouchers 18 bte 2, 1000 Bruxelles;02/511.14.15;\
www.chezleon.be;50,8478;4.3542;Marie Dupont
a2;Frituur Één;Meir 1, 2000 Antwerpen;03 000 00 00;;51.2;4.4;
a3;;Rue Haute 1, 1000 Bruxelles;;;;;
a4;Jan Peeters;Rue Haute 2, 1000 Bruxelles;;;;;
"""

MAPPING = """
[columns]
source_id = "Ref"
name = "Business name"
address_raw = "Adres"
phone_raw = "Tel"
website = "Site"
lat = "Lat"
lon = "Lon"

[options]
delimiter = ";"
default_country = "BE"
"""


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "sources.toml").write_text(SOURCES)
    (tmp_path / "listings.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "mapping.toml").write_text(MAPPING)
    return {"dir": tmp_path, "sources": tmp_path / "sources.toml",
            "csv": tmp_path / "listings.csv", "mapping": tmp_path / "mapping.toml",
            "db": tmp_path / "h.db"}


def run_import(setup: dict[str, Path], file: Path | None = None, region: str | None = "brussels"):
    source = load_sources(setup["sources"]).get("othertool")
    db = open_db(setup["db"])
    return db, import_listings(db, file or setup["csv"], load_mapping(setup["mapping"]), source,
                               region=resolve_region(region) if region else None)


def test_csv_rows_are_normalised_minimised_and_region_scoped(setup) -> None:
    db, result = run_import(setup)
    assert (result.rows, result.kept) == (4, 2)
    assert result.dropped == {"missing_name": 1, "outside_region": 1}
    rows = {r["id"]: r for r in db.query("SELECT * FROM listings")}
    assert set(rows) == {"othertool:a1", "othertool:a4"}
    leon = rows["othertool:a1"]
    assert leon["name"] == "Chez Léon"
    assert (leon["street"], leon["house_number"], leon["box"], leon["postcode"]) == (
        "Rue des Bouchers", "18", "2", "1000")
    assert leon["website"] == "http://www.chezleon.be/" and leon["lat"] == 50.8478
    # phone is not in this source's allowed fields: the gate's minimiser removed it
    assert leon["phone"] is None and leon["phone_raw"] is None
    assert rows["othertool:a4"]["natural_person"] == 1
    assert "Marie Dupont" not in json.dumps(list(rows.values()))


def test_reimporting_the_same_file_changes_nothing(setup) -> None:
    db, first = run_import(setup)
    before = {r["id"]: r["first_seen"] for r in db.query("SELECT * FROM listings")}
    db, second = run_import(setup)
    after = {r["id"]: r["first_seen"] for r in db.query("SELECT * FROM listings")}
    assert (first.new, second.new, second.updated) == (2, 0, 2)
    assert before == after


def test_json_lines_with_nested_columns_and_no_id_column(setup) -> None:
    lines = [{"title": "Café Central", "addr": {"full": "Rue Borgval 14, 1000 Bruxelles"},
              "loc": {"lat": 50.848, "lon": 4.349}},
             {"title": "Café Central", "addr": {"full": "Rue Borgval 14, 1000 Bruxelles"}}]
    file = setup["dir"] / "listings.jsonl"
    file.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    setup["mapping"].write_text('[columns]\nname = "title"\naddress_raw = "addr.full"\n'
                                'lat = "loc.lat"\nlon = "loc.lon"\n')
    db, result = run_import(setup, file)
    # no id column: a stable hash of the business text, so the second row is a duplicate
    assert (result.kept, result.dropped) == (1, {"duplicate": 1})
    (row,) = db.query("SELECT id, street FROM listings")
    assert row["id"].startswith("othertool:h") and row["street"] == "Rue Borgval"


@pytest.mark.parametrize(("content", "line", "message"), [
    ("Ref;Business name;Adres;Tel;Site;Lat;Lon\na1;X;Y;Z;;1;2\na2;X;\"unclosed\n", 3, "cells"),
    ("Ref;Name\na1;X\n", 1, "'Business name'"),
    ("", None, "empty"),
])
def test_bad_csv_names_file_and_line_and_writes_nothing(setup, content, line, message) -> None:
    setup["csv"].write_text(content)
    with pytest.raises(UserError) as err:
        run_import(setup)
    assert err.value.path == str(setup["csv"]) and err.value.line == line
    assert message in str(err.value)
    assert open_db(setup["db"]).execute("SELECT count(*) FROM listings").fetchone()[0] == 0


def test_bad_json_line_rolls_back_the_rows_before_it(setup) -> None:
    file = setup["dir"] / "listings.jsonl"
    good = json.dumps({"Ref": "1", "Business name": "Chez Léon",
                       "Adres": "Rue des Bouchers 18, 1000 Bruxelles"})
    file.write_text(f"{good}\n{{oops\n")
    with pytest.raises(UserError) as err:
        run_import(setup, file)
    assert err.value.line == 2 and "invalid JSON" in str(err.value)
    assert open_db(setup["db"]).execute("SELECT count(*) FROM listings").fetchone()[0] == 0


def test_cp1252_file_is_read_with_the_encoding_option(setup) -> None:
    setup["csv"].write_bytes(CSV.lstrip("\ufeff").encode("cp1252"))
    with pytest.raises(UserError) as err:
        run_import(setup)
    assert "encoding" in str(err.value)
    setup["mapping"].write_text(MAPPING + 'encoding = "cp1252"\n')
    _, result = run_import(setup)
    assert result.kept == 2


@pytest.mark.parametrize(("mapping", "message"), [
    ("[columns]\nname = 3\n", "non-empty string"),
    ("[columns]\nreviews = \"R\"\nname = \"N\"\n", "not a listing field"),
    ("[columns]\nphone_raw = \"T\"\n", "has no name"),
    ("[columns]\nname = \"N\"\n[options]\nformat = \"xml\"\n", "csv or jsonl"),
    ("[columns\nname = \"N\"\n", "malformed TOML"),
])
def test_bad_mapping_is_a_user_error(tmp_path: Path, mapping: str, message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(mapping)
    with pytest.raises(UserError) as err:
        load_mapping(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_cli_imports_and_audits_and_refuses_unapproved_sources(setup) -> None:
    base = ["--db", str(setup["db"]), "listings", "import", str(setup["csv"]), "--mapping",
            str(setup["mapping"]), "--sources", str(setup["sources"])]
    result = CliRunner().invoke(app, [*base, "--source", "othertool", "--region", "brussels"])
    assert result.exit_code == 0, result.output
    assert "imported 2 of 4 rows" in result.output
    db = open_db(setup["db"])
    assert db.execute("SELECT action, source, rows FROM audit_log").fetchall() == [
        ("listings_import", "othertool", 2)]
    refused = CliRunner().invoke(app, [*base, "--source", "waiting"])
    assert refused.exit_code != 0
    assert "not approved" in refused.output
