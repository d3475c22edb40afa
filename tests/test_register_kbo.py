"""KBO Open Data import: units built from every table, region and NACE filters applied
while streaming, update extracts, bad input reported with file and line."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.errors import UserError
from horeca.region import Region, resolve_region
from horeca.register import ImportRequest, active_snapshot, import_register, iter_units
from horeca.register.kbo import nace_json, pack_nace, phone_e164
from horeca.register.kbo_format import write_extract, write_table
from horeca.store import open_db

BRUSSELS = Region("brussels", postcode_ranges=((1000, 1299),))


def ent(n: int) -> str:
    """A valid (mod 97) enterprise number, dotted as in the extract."""
    first8 = f"0{200_0000 + n:07d}"
    digits = f"{first8}{97 - int(first8) % 97:02d}"
    return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"


def est(n: int) -> str:
    return f"2.{n:03d}.000.{n:03d}"


def digits(number: str) -> str:
    return number.replace(".", "")


def addr(entity: str, kind: str, zipcode: str, street_fr: str, street_nl: str, number: str,
         muni_fr: str = "Bruxelles", muni_nl: str = "Brussel", box: str = "",
         **extra: str) -> dict[str, str]:
    return {"EntityNumber": entity, "TypeOfAddress": kind, "Zipcode": zipcode,
            "MunicipalityFR": muni_fr, "MunicipalityNL": muni_nl, "StreetFR": street_fr,
            "StreetNL": street_nl, "HouseNumber": number, "Box": box, **extra}


def act(entity: str, code: str, version: str = "2008", cls: str = "MAIN",
        group: str = "001") -> dict[str, str]:
    return {"EntityNumber": entity, "ActivityGroup": group, "NaceVersion": version,
            "NaceCode": code, "Classification": cls}


def world() -> dict[str, list[dict[str, str]]]:
    """Six enterprises around Brussels.

    E1 restaurant company: seat 1000, unit U1 in 1050 (in), unit U2 in Gent (out).
    E2 hotel without any unit, seat 1040: kept through its seat.
    E3 natural person, no seat, unit U3 in 1000, NACE 2003 bar code.
    E4 seat 1000 but its only unit U4 in Antwerp: nothing in Brussels.
    E5 seat in Antwerp, unit U5 in 1000: in, with its seat outside.
    E6 supermarket with unit U6 in 1000: in, not HoReCa.
    """
    e1, e2, e3, e4, e5, e6 = (ent(i) for i in range(1, 7))
    return {
        "enterprise": [
            {"EnterpriseNumber": e1, "Status": "AC", "TypeOfEnterprise": "2",
             "JuridicalForm": "610", "StartDate": "01-02-2015"},
            {"EnterpriseNumber": e2, "Status": "AC", "TypeOfEnterprise": "2",
             "JuridicalForm": "014", "StartDate": "15-06-2001"},
            {"EnterpriseNumber": e3, "Status": "AC", "TypeOfEnterprise": "1",
             "StartDate": "03-01-1986"},
            {"EnterpriseNumber": e4, "Status": "AC", "TypeOfEnterprise": "2"},
            {"EnterpriseNumber": e5, "Status": "AC", "TypeOfEnterprise": "2"},
            {"EnterpriseNumber": e6, "Status": "AC", "TypeOfEnterprise": "2"},
        ],
        "establishment": [
            {"EstablishmentNumber": est(1), "StartDate": "01-03-2015", "EnterpriseNumber": e1},
            {"EstablishmentNumber": est(2), "StartDate": "01-03-2016", "EnterpriseNumber": e1},
            {"EstablishmentNumber": est(3), "StartDate": "05-05-2005", "EnterpriseNumber": e3},
            {"EstablishmentNumber": est(4), "StartDate": "01-01-2020", "EnterpriseNumber": e4},
            {"EstablishmentNumber": est(5), "StartDate": "01-01-2021", "EnterpriseNumber": e5},
            {"EstablishmentNumber": est(6), "StartDate": "01-01-2022", "EnterpriseNumber": e6},
        ],
        "denomination": [
            {"EntityNumber": e1, "Language": "1", "TypeOfDenomination": "001",
             "Denomination": "Marie SRL"},
            {"EntityNumber": e1, "Language": "2", "TypeOfDenomination": "001",
             "Denomination": "Marie BV"},
            {"EntityNumber": e1, "Language": "1", "TypeOfDenomination": "002",
             "Denomination": "MSRL"},
            {"EntityNumber": est(1), "Language": "1", "TypeOfDenomination": "003",
             "Denomination": "Chez Marie"},
            {"EntityNumber": est(2), "Language": "2", "TypeOfDenomination": "003",
             "Denomination": "Bij Marie Gent"},
            {"EntityNumber": e2, "Language": "1", "TypeOfDenomination": "001",
             "Denomination": 'Hôtel "Le Parc", Etterbeek'},
            {"EntityNumber": e3, "Language": "0", "TypeOfDenomination": "001",
             "Denomination": "Peeters, Jan"},
            {"EntityNumber": est(3), "Language": "2", "TypeOfDenomination": "003",
             "Denomination": "Café Jan"},
            {"EntityNumber": e4, "Language": "2", "TypeOfDenomination": "001",
             "Denomination": "Antwerp Only NV"},
            {"EntityNumber": e5, "Language": "2", "TypeOfDenomination": "001",
             "Denomination": "Frituur Noord BV"},
            {"EntityNumber": e6, "Language": "1", "TypeOfDenomination": "001",
             "Denomination": "Super Marché SA"},
        ],
        "address": [
            addr(e1, "REGO", "1000", "Rue Neuve", "Nieuwstraat", "1"),
            addr(est(1), "BAET", "1050", "Chaussée de Wavre", "Waversesteenweg", "17-20",
                 "Ixelles", "Elsene", box="3", ExtraAddressInfo="rez-de-chaussée"),
            addr(est(2), "BAET", "9000", "", "Veldstraat", "5", "", "Gent"),
            addr(e2, "REGO", "1040", "Avenue de Tervueren", "Tervurenlaan", "50",
                 "Etterbeek", "Etterbeek"),
            addr(est(3), "BAET", "1000", "Rue de la Fourche", "Greepstraat", "33"),
            addr(e4, "REGO", "1000", "Rue Haute", "Hoogstraat", "9"),
            addr(est(4), "BAET", "2000", "", "Meir", "1", "", "Antwerpen"),
            addr(e5, "REGO", "2000", "", "Groenplaats", "2", "", "Antwerpen"),
            addr(est(5), "BAET", "1000", "Boulevard Anspach", "Anspachlaan", "100"),
            addr(e6, "REGO", "1000", "Rue du Midi", "Zuidstraat", "7"),
            addr(est(6), "BAET", "1000", "Rue du Midi", "Zuidstraat", "7"),
        ],
        "contact": [
            {"EntityNumber": e1, "EntityContact": "ENT", "ContactType": "TEL",
             "Value": "02/513.51.51"},
            {"EntityNumber": e1, "EntityContact": "ENT", "ContactType": "WEB",
             "Value": "WWW.Chez-Marie.be"},
            {"EntityNumber": est(1), "EntityContact": "EST", "ContactType": "TEL",
             "Value": "0475 12 34 56"},
            {"EntityNumber": est(1), "EntityContact": "EST", "ContactType": "EMAIL",
             "Value": "Info@Chez-Marie.be"},
            {"EntityNumber": est(1), "EntityContact": "EST", "ContactType": "FAX",
             "Value": "02 513 51 52"},
            {"EntityNumber": e2, "EntityContact": "ENT", "ContactType": "TEL",
             "Value": "not a phone"},
        ],
        "activity": [
            act(e1, "56101"), act(e1, "56101", group="003"), act(e1, "56110", "2025"),
            act(est(1), "56101"), act(est(1), "56102", cls="SECO"),
            act(est(2), "56101"),
            act(e2, "55100"),
            act(e3, "55401", "2003"), act(est(3), "47110", cls="SECO"),
            act(e4, "56101"),
            act(e5, "68201"), act(est(5), "56102"),
            act(e6, "47110"), act(est(6), "47110"),
        ],
    }


def write_world(folder: Path, tables: dict | None = None, **kwargs) -> Path:
    return write_extract(folder, tables or world(), **kwargs)


def run(db, *paths: Path, region: Region | None = BRUSSELS, **kwargs):
    key = kwargs.pop("region_key", region.name if region else "all")
    return import_register(db, ImportRequest(paths=list(paths), region=region,
                                             region_key=key, **kwargs))


def units_by_id(db, region: str = "brussels") -> dict[str, dict]:
    snap = active_snapshot(db, region)
    assert snap is not None
    return {u["unit_id"]: u for u in iter_units(db, snap["id"])}


@pytest.fixture
def db(tmp_path: Path):
    return open_db(tmp_path / "h.db")


# ------------------------------------------------------------------ building units


def test_brussels_units_are_those_with_an_address_or_seat_only_in_the_region(db, tmp_path):
    result = run(db, write_world(tmp_path / "kbo"))
    units = units_by_id(db)
    assert set(units) == {digits(est(1)), digits(ent(2)), digits(est(3)), digits(est(5)),
                          digits(est(6))}
    assert result.counts["units"] == 5
    assert result.counts["establishment_units"] == 4
    assert result.counts["seat_only_units"] == 1
    assert result.counts["horeca_units"] == 4  # U1, E2, U3 (55401 under NACE 2003), U5
    assert result.snapshot_date == "2025-03-01" and result.extract_number == "140"


def test_unit_carries_names_of_unit_and_enterprise_in_every_language(db, tmp_path):
    run(db, write_world(tmp_path / "kbo"))
    u1 = units_by_id(db)[digits(est(1))]
    assert u1["names"] == [
        {"name": "Chez Marie", "type": "commercial", "lang": "fr", "level": "establishment"},
        {"name": "Marie SRL", "type": "legal", "lang": "fr", "level": "enterprise"},
        {"name": "Marie BV", "type": "legal", "lang": "nl", "level": "enterprise"},
        {"name": "MSRL", "type": "abbreviation", "lang": "fr", "level": "enterprise"},
    ]
    assert u1["enterprise_number"] == digits(ent(1))
    assert u1["establishment_number"] == digits(est(1))


def test_unit_address_in_both_languages_with_box_and_extra_and_seat_apart(db, tmp_path):
    run(db, write_world(tmp_path / "kbo"))
    u1 = units_by_id(db)[digits(est(1))]
    assert (u1["street_fr"], u1["street_nl"], u1["house_number"], u1["box"], u1["postcode"],
            u1["municipality_fr"], u1["municipality_nl"], u1["address_extra"]) == (
        "Chaussée de Wavre", "Waversesteenweg", "17-20", "3", "1050", "Ixelles", "Elsene",
        "rez-de-chaussée")
    assert (u1["seat_street_fr"], u1["seat_house_number"], u1["seat_postcode"]) == (
        "Rue Neuve", "1", "1000")


def test_contacts_from_unit_and_enterprise_normalised(db, tmp_path):
    result = run(db, write_world(tmp_path / "kbo"))
    units = units_by_id(db)
    u1 = units[digits(est(1))]
    assert u1["phones"] == ["+32475123456", "+3225135151"]  # unit's own number first
    assert u1["websites"] == ["http://www.chez-marie.be/"] or u1["websites"] == [
        "http://www.chez-marie.be"]
    assert u1["emails"] == ["info@chez-marie.be"]
    assert units[digits(ent(2))]["phones"] == []
    assert result.counts["contacts_unusable"]["phone"] == 1


def test_nace_codes_of_both_levels_with_version_and_classification(db, tmp_path):
    run(db, write_world(tmp_path / "kbo"))
    u1 = units_by_id(db)[digits(est(1))]
    assert u1["nace"] == [
        {"code": "56101", "version": "2008", "classification": "MAIN", "level": "establishment"},
        {"code": "56102", "version": "2008", "classification": "SECO", "level": "establishment"},
        {"code": "56101", "version": "2008", "classification": "MAIN", "level": "enterprise"},
        {"code": "56110", "version": "2025", "classification": "MAIN", "level": "enterprise"},
    ]  # the repeat under activity group 003 is dropped
    assert u1["horeca"] == 1
    assert units_by_id(db)[digits(est(6))]["horeca"] == 0


def test_unsorted_activity_file_gives_the_same_units(db, tmp_path):
    run(db, write_world(tmp_path / "sorted"))
    expected = units_by_id(db)
    tables = world()
    tables["activity"] = tables["activity"][::-1]  # every entity's rows apart and reversed
    tables["activity"].insert(3, act(ent(1), "56101", group="006"))
    run(db, write_world(tmp_path / "unsorted", tables))
    got = units_by_id(db)
    assert got.keys() == expected.keys()
    for unit_id, unit in got.items():
        assert sorted(map(str, unit["nace"])) == sorted(map(str, expected[unit_id]["nace"]))
        assert unit["horeca"] == expected[unit_id]["horeca"]


def test_enterprise_without_unit_is_kept_through_its_seat(db, tmp_path):
    run(db, write_world(tmp_path / "kbo"))
    e2 = units_by_id(db)[digits(ent(2))]
    assert e2["establishment_number"] is None
    assert (e2["street_fr"], e2["postcode"], e2["seat_postcode"]) == (
        "Avenue de Tervueren", "1040", "1040")
    assert e2["names"][0]["name"] == 'Hôtel "Le Parc", Etterbeek'  # quotes and comma survive
    assert e2["juridical_form"] == "014" and e2["start_date"] == "2001-06-15"


def test_natural_person_without_seat_is_found_through_its_unit(db, tmp_path):
    run(db, write_world(tmp_path / "kbo"))
    u3 = units_by_id(db)[digits(est(3))]
    assert u3["natural_person"] == 1
    assert u3["seat_postcode"] is None
    assert {n["name"] for n in u3["names"]} == {"Café Jan", "Peeters, Jan"}
    assert u3["start_date"] == "2005-05-05"
    assert {(e["code"], e["version"]) for e in u3["nace"]} == {("47110", "2008"),
                                                                ("55401", "2003")}


def test_unit_of_an_enterprise_seated_elsewhere_gets_the_far_seat(db, tmp_path):
    run(db, write_world(tmp_path / "kbo"))
    u5 = units_by_id(db)[digits(est(5))]
    assert (u5["postcode"], u5["seat_postcode"], u5["seat_municipality_nl"]) == (
        "1000", "2000", "Antwerpen")


# ------------------------------------------------------------------ filters


def test_postcode_filter_selects_by_unit_address(db, tmp_path):
    folder = write_world(tmp_path / "kbo")
    run(db, folder, region=Region("custom", postcode_ranges=((1050, 1050),)),
        region_key="postcodes:1050")
    assert set(units_by_id(db, "postcodes:1050")) == {digits(est(1))}


def test_nace_filter_keeps_units_with_a_matching_code_at_either_level(db, tmp_path):
    folder = write_world(tmp_path / "kbo")
    result = run(db, folder, nace=("55",), region_key="brussels-55")
    assert set(units_by_id(db, "brussels-55")) == {digits(ent(2)), digits(est(3))}
    assert result.counts["units_outside_nace_filter"] == 3
    run(db, folder, nace=("56",), region_key="brussels-56")
    assert set(units_by_id(db, "brussels-56")) == {digits(est(1)), digits(est(5))}


def test_whole_country_import_keeps_every_unit(db, tmp_path):
    result = run(db, write_world(tmp_path / "kbo"), region=None)
    units = units_by_id(db, "all")
    assert set(units) == {digits(est(i)) for i in range(1, 7)} | {digits(ent(2))}
    assert result.counts["units"] == 7


def test_foreign_postcode_with_belgian_digits_is_not_in_the_region(db, tmp_path):
    tables = world()
    tables["address"].append(addr(ent(7), "REGO", "1050", "", "", "1", "Luxembourg",
                                  "Luxemburg", CountryNL="Luxemburg", CountryFR="Luxembourg"))
    tables["enterprise"].append({"EnterpriseNumber": ent(7), "TypeOfEnterprise": "2"})
    run(db, write_world(tmp_path / "kbo", tables))
    assert digits(ent(7)) not in units_by_id(db)


def test_activity_rows_outside_the_region_are_never_staged(db, tmp_path, monkeypatch):
    """The filter works while streaming: only wanted entities' rows reach the staging."""
    from horeca.register import kbo

    staged: list[int] = []
    original = kbo.Staging.load

    def counting_load(self, sql, rows):
        n = original(self, sql, rows)
        if sql.startswith("INSERT INTO act"):
            staged.append(n)
        return n

    monkeypatch.setattr(kbo.Staging, "load", counting_load)
    run(db, write_world(tmp_path / "kbo"))
    # 14 rows for 11 entities in the file; U2 (Gent) and E4 (unit in Antwerp) stay out,
    # and each remaining entity's rows are packed into one staging row
    assert staged == [9]


# ------------------------------------------------------------------ zip and updates


def test_zip_with_files_in_a_subfolder_is_read_like_a_folder(db, tmp_path):
    folder = write_world(tmp_path / "kbo")
    archive = tmp_path / "KboOpenData_0140_2025_03_Full.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in folder.iterdir():
            zf.write(f, f"extract/{f.name}")
    result = run(db, archive)
    assert result.counts["units"] == 5


def update_tables() -> dict[str, list]:
    """Update 141: U6 closes; U1 renamed; a new hotel E7 (no unit) opens in 1000."""
    e7 = ent(7)
    return {
        "enterprise_delete": [[ent(6)]],
        "enterprise_insert": [{"EnterpriseNumber": ent(6), "TypeOfEnterprise": "2"},
                              {"EnterpriseNumber": e7, "TypeOfEnterprise": "2",
                               "StartDate": "01-03-2025"}],
        "establishment_delete": [[est(6)]],
        "establishment_insert": [],
        "denomination_delete": [[est(1)]],
        "denomination_insert": [
            {"EntityNumber": est(1), "Language": "1", "TypeOfDenomination": "003",
             "Denomination": "Chez Marie & Fils"},
            {"EntityNumber": e7, "Language": "1", "TypeOfDenomination": "001",
             "Denomination": "Hôtel Neuf"}],
        "address_delete": [[est(6)]],
        "address_insert": [addr(e7, "REGO", "1000", "Rue Neuve", "Nieuwstraat", "2")],
        "contact_delete": [],
        "contact_insert": [],
        "activity_delete": [],
        "activity_insert": [act(e7, "55100")],
    }


def test_update_applies_deletes_then_inserts_over_the_full_extract(db, tmp_path):
    full = write_world(tmp_path / "full")
    update = write_extract(tmp_path / "u141", update_tables(), kind="update",
                           meta={"ExtractNumber": "141", "SnapshotDate": "01-04-2025"})
    result = run(db, full, update)
    units = units_by_id(db)
    assert digits(est(6)) not in units
    assert digits(ent(7)) in units and units[digits(ent(7))]["horeca"] == 1
    assert [n["name"] for n in units[digits(est(1))]["names"]
            if n["level"] == "establishment"] == ["Chez Marie & Fils"]
    assert result.snapshot_date == "2025-04-01" and result.extract_number == "141"


def test_lone_update_applies_to_the_active_snapshots_extract(db, tmp_path):
    full = write_world(tmp_path / "full")
    run(db, full)
    update = write_extract(tmp_path / "u141", update_tables(), kind="update",
                           meta={"ExtractNumber": "141"})
    result = run(db, update)
    assert result.extract_number == "141"
    assert digits(ent(7)) in units_by_id(db)
    assert active_snapshot(db, "brussels")["sources"] == [str(full.resolve()),
                                                           str(update.resolve())]


def test_update_out_of_order_is_refused(db, tmp_path):
    full = write_world(tmp_path / "full")
    update = write_extract(tmp_path / "u142", update_tables(), kind="update",
                           meta={"ExtractNumber": "142"})
    with pytest.raises(UserError, match="update 142 does not follow extract 140"):
        run(db, full, update)


def test_update_without_a_base_is_refused(db, tmp_path):
    update = write_extract(tmp_path / "u141", update_tables(), kind="update",
                           meta={"ExtractNumber": "141"})
    with pytest.raises(UserError, match="pass the full extract first"):
        run(db, update)


# ------------------------------------------------------------------ bad input


def test_missing_file_in_the_zip_is_named(db, tmp_path):
    folder = write_world(tmp_path / "kbo")
    (folder / "activity.csv").unlink()
    with pytest.raises(UserError, match=r"lacks activity\.csv"):
        run(db, folder)
    assert active_snapshot(db, "brussels") is None


def test_not_a_kbo_extract_says_how_to_import_another_register(db, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "readme.txt").write_text("hello")
    with pytest.raises(UserError, match="--format csv --mapping"):
        run(db, tmp_path / "x")


def test_wrong_header_names_the_file_and_the_expected_header(db, tmp_path):
    folder = write_world(tmp_path / "kbo")
    text = (folder / "enterprise.csv").read_text(encoding="utf-8")
    (folder / "enterprise.csv").write_text(text.replace("TypeOfEnterprise", "EntType", 1),
                                           encoding="utf-8", newline="")
    with pytest.raises(UserError) as info:
        run(db, folder)
    message = str(info.value)
    assert "enterprise.csv:1" in message and "TypeOfEnterprise" in message
    assert '"EnterpriseNumber","Status","JuridicalSituation"' in message


def test_semicolon_extract_is_recognised_as_such_and_imports_with_delimiter(db, tmp_path):
    folder = write_world(tmp_path / "kbo")
    for f in folder.glob("*.csv"):
        rows = list(csv.reader(f.open(encoding="utf-8", newline="")))
        with f.open("w", encoding="utf-8", newline="") as out:
            csv.writer(out, delimiter=";").writerows(rows)
    with pytest.raises(UserError, match="--delimiter ';'"):
        run(db, folder)
    result = run(db, folder, delimiter=";")
    assert result.counts["units"] == 5
    assert units_by_id(db)[digits(ent(2))]["names"][0]["name"] == 'Hôtel "Le Parc", Etterbeek'


def test_wrong_encoding_is_named_with_line_and_encoding_option_fixes_it(db, tmp_path):
    folder = write_world(tmp_path / "kbo")
    for f in folder.glob("*.csv"):
        f.write_bytes(f.read_text(encoding="utf-8").encode("latin-1"))
    with pytest.raises(UserError) as info:
        run(db, folder)
    assert "not valid utf-8" in str(info.value) and "--encoding" in str(info.value)
    # found by the check of every file's first block, before any streaming
    assert "denomination.csv:7" in str(info.value)  # 'Hôtel' on the sixth data row
    assert run(db, folder, encoding="latin-1").counts["units"] == 5


def test_rows_with_wrong_column_count_are_skipped_with_file_and_line(db, tmp_path):
    folder = write_world(tmp_path / "kbo")
    with (folder / "activity.csv").open("a", encoding="utf-8", newline="") as f:
        f.write(f'"{est(1)}","001","2008"\r\n')
    result = run(db, folder)
    skipped = result.issues.as_dict()["wrong_column_count"]
    assert skipped["count"] == 1
    assert skipped["examples"][0].startswith(f"{folder / 'activity.csv'}:16")
    assert result.counts["units"] == 5


def test_strict_makes_a_bad_row_fatal_and_leaves_no_snapshot(db, tmp_path):
    folder = write_world(tmp_path / "kbo")
    with (folder / "activity.csv").open("a", encoding="utf-8", newline="") as f:
        f.write(f'"{est(1)}","001","2008"\r\n')
    with pytest.raises(UserError, match=r"activity\.csv:16: .*wrong column count"):
        run(db, folder, strict=True)
    assert active_snapshot(db, "brussels") is None
    assert db.execute("SELECT count(*) FROM register_units").fetchone()[0] == 0
    assert [r["status"] for r in db.query("SELECT status FROM register_snapshots")] == [
        "failed"]


def test_invalid_enterprise_numbers_are_counted_and_skipped(db, tmp_path):
    tables = world()
    bad = "0200.000.199"
    tables["enterprise"].append({"EnterpriseNumber": bad, "TypeOfEnterprise": "2"})
    tables["address"].append(addr(bad, "REGO", "1000", "Rue X", "X-straat", "1"))
    tables["establishment"].append({"EstablishmentNumber": est(9), "EnterpriseNumber": bad})
    tables["address"].append(addr(est(9), "BAET", "1000", "Rue Y", "Y-straat", "2"))
    result = run(db, write_world(tmp_path / "kbo", tables))
    skipped = result.issues.as_dict()["invalid_enterprise_number"]
    assert skipped["count"] == 2  # the establishment row and the enterprise row
    assert any("establishment.csv:8" in e for e in skipped["examples"])
    assert digits(est(9)) not in units_by_id(db)
    assert result.counts["units"] == 5


def test_duplicate_keys_are_reported_and_the_first_row_kept(db, tmp_path):
    tables = world()
    tables["establishment"].append({"EstablishmentNumber": est(1), "StartDate": "01-01-1999",
                                    "EnterpriseNumber": ent(1)})
    result = run(db, write_world(tmp_path / "kbo", tables))
    dup = result.issues.as_dict()["duplicate_key"]
    assert dup["count"] == 1 and "establishment.csv:8" in dup["examples"][0]
    assert units_by_id(db)[digits(est(1))]["start_date"] == "2015-03-01"
    with pytest.raises(UserError, match="duplicate key"):
        run(db, write_world(tmp_path / "kbo", tables), strict=True, force=True)


def test_struck_off_addresses_are_ignored(db, tmp_path):
    tables = world()
    for row in tables["address"]:
        if row["EntityNumber"] == est(6):
            row["DateStrikingOff"] = "01-01-2024"
    result = run(db, write_world(tmp_path / "kbo", tables))
    assert digits(est(6)) not in units_by_id(db)
    assert result.issues.counts["struck_off_address"] == 1


def test_multiline_quoted_value_is_read_as_one_row(db, tmp_path):
    tables = world()
    tables["denomination"].append({"EntityNumber": est(6), "Language": "1",
                                   "TypeOfDenomination": "003",
                                   "Denomination": "Super\nMarché du Midi"})
    run(db, write_world(tmp_path / "kbo", tables))
    names = [n["name"] for n in units_by_id(db)[digits(est(6))]["names"]]
    assert "Super\nMarché du Midi" in names


def test_declared_activity_is_attached_by_unit_then_enterprise(db, tmp_path):
    declared = tmp_path / "declared.csv"
    declared.write_text(f"number;workers;turnover\n{est(1)};4;250000,5\n"
                        f"BE {ent(2)};12;\n", encoding="utf-8")
    run(db, write_world(tmp_path / "kbo"), declared=declared)
    units = units_by_id(db)
    u1, e2 = units[digits(est(1))], units[digits(ent(2))]
    assert (u1["declared_workers"], u1["declared_turnover"], u1["declared_level"]) == (
        4.0, 250000.5, "establishment")
    assert (e2["declared_workers"], e2["declared_turnover"], e2["declared_level"]) == (
        12.0, None, "enterprise")


# ------------------------------------------------------------------ the demo extract

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "kbo"


def _read(name: str) -> list[dict[str, str]]:
    with open(DEMO / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.skipif(not (DEMO / "enterprise.csv").exists(), reason="demo extract not generated")
def test_demo_extract_unit_counts_match_the_files(db, tmp_path):
    """Expected counts computed independently with the csv module."""
    brussels = resolve_region("brussels")
    addresses = _read("address.csv")
    establishments = _read("establishment.csv")
    in_region = {a["EntityNumber"] for a in addresses if a["TypeOfAddress"] == "BAET"
                 and not a["DateStrikingOff"] and not a["CountryFR"]
                 and brussels.contains_postcode(a["Zipcode"])}
    with_units = {e["EnterpriseNumber"] for e in establishments}
    seats = {a["EntityNumber"] for a in addresses if a["TypeOfAddress"] == "REGO"
             and not a["DateStrikingOff"] and not a["CountryFR"]
             and brussels.contains_postcode(a["Zipcode"])}
    expected_units = {e["EstablishmentNumber"] for e in establishments} & in_region
    expected_seat_only = seats - with_units
    horeca_entities = {a["EntityNumber"] for a in _read("activity.csv")
                       if a["NaceCode"][:2] in ("55", "56")}
    unit_ent = {e["EstablishmentNumber"]: e["EnterpriseNumber"] for e in establishments}
    expected_horeca = sum(1 for u in expected_units
                          if u in horeca_entities or unit_ent[u] in horeca_entities)
    expected_horeca += len(expected_seat_only & horeca_entities)

    copy = tmp_path / "demo-kbo"
    shutil.copytree(DEMO, copy)
    result = run(db, copy, region=brussels)
    assert result.counts["establishment_units"] == len(expected_units)
    assert result.counts["seat_only_units"] == len(expected_seat_only)
    assert result.counts["horeca_units"] == expected_horeca
    assert result.issues.total == 0


def test_write_table_round_trips_through_the_csv_module(tmp_path):
    path = tmp_path / "denomination.csv"
    write_table(path, "denomination", [{"EntityNumber": ent(1), "Denomination": 'a "b", c'}])
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    assert rows[1] == [ent(1), "", "", 'a "b", c']


# ------------------------------------------------------------------ pure helpers

nace_items = st.lists(st.tuples(st.text("0123456789.", max_size=6),
                                st.sampled_from(["2003", "2008", "2025", ""]),
                                st.sampled_from(["MAIN", "SECO", "ANCI", "", 'x"y'])),
                      max_size=12)


@settings(max_examples=200, deadline=None)
@given(items=nace_items)
def test_packed_nace_items_come_back_once_each_in_order(items):
    packed = pack_nace(dict.fromkeys(items))
    objects = json.loads("[" + ",".join(nace_json(packed, "enterprise", set())) + "]")
    clean = {(c.replace(".", ""), v, k.replace('"', "")) for c, v, k in items
             if c.replace(".", "")}
    got = [(o["code"], o["version"], o["classification"]) for o in objects]
    assert sorted(got) == sorted(clean) and len(got) == len(set(got))
    order = {"MAIN": 0, "SECO": 1, "ANCI": 2}
    keys = [(order.get(k, 3), v, c) for c, v, k in got]
    assert keys == sorted(keys)
    assert all(o["level"] == "enterprise" for o in objects)


belgian_written = st.builds(
    lambda digits, seps: "".join(d + s for d, s in zip(digits, seps, strict=False)),
    st.text("0123456789", min_size=8, max_size=11).map(lambda d: "0" + d[1:]),
    st.lists(st.sampled_from(["", "", " ", ".", "/", "-"]), min_size=11, max_size=11))


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(belgian_written, st.text(max_size=20)),
       country=st.sampled_from(["BE", "BE", "FR", "NL"]))
def test_register_phone_shortcut_agrees_with_to_e164(raw, country):
    from horeca.normalize import to_e164
    assert phone_e164(raw, country) == to_e164(raw, country)
