"""Generic CSV registers: a mapping names the columns; filters, normalisation, declared
activity, and every bad-input case reported with file, line and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from horeca.errors import UserError
from horeca.region import Region
from horeca.register import ImportRequest, active_snapshot, import_register, iter_units
from horeca.register.csv_register import load_mapping
from horeca.store import open_db

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
BRUSSELS = Region("brussels", postcode_ranges=((1000, 1299),))

MAPPING = """
[csv]
delimiter = ","
default_country = "BE"

[columns]
id = "ID"
names = ["NAME", "LEGAL"]
street = "STREET"
house_number = "NR"
postcode = "ZIP"
locality = "CITY"
phone = "TEL"
website = "WEB"
activity_code = "NACE"
declared_workers = "STAFF"
"""
HEADER = "ID,NAME,LEGAL,STREET,NR,ZIP,CITY,TEL,WEB,NACE,STAFF\n"


def write(tmp_path: Path, rows: list[str], mapping: str = MAPPING, header: str = HEADER,
          encoding: str = "utf-8") -> tuple[Path, Path]:
    data = tmp_path / "register.csv"
    data.write_bytes((header + "".join(r + "\n" for r in rows)).encode(encoding))
    mapping_path = tmp_path / "mapping.toml"
    mapping_path.write_text(mapping, encoding="utf-8")
    return data, mapping_path


ROWS = [
    "A1,Chez Paul,Paul SRL,Rue Haute,12,1000,Bruxelles,02 513 51 51,www.chez-paul.example,56101,3",
    "A2,Hotel Nord,,Rue du Nord,1,1210,Saint-Josse,,,55100,",
    "A3,Bakkerij,,Kerkstraat,4,9000,Gent,,,10711,1",
    "A4,Garage Sud,,Rue du Sud,2,1060,Saint-Gilles,,,45200,",
]


def run(db, data: Path, mapping: Path, region: Region | None = BRUSSELS, **kwargs):
    return import_register(db, ImportRequest(
        paths=[data], fmt="csv", mapping=mapping, region=region,
        region_key=kwargs.pop("region_key", region.name if region else "all"), **kwargs))


def units(db, region: str = "brussels") -> dict[str, dict]:
    snap = active_snapshot(db, region)
    return {u["unit_id"]: u for u in iter_units(db, snap["id"])}


@pytest.fixture
def db(tmp_path: Path):
    return open_db(tmp_path / "h.db")


def test_columns_are_mapped_and_normalised(db, tmp_path):
    result = run(db, *write(tmp_path, ROWS))
    got = units(db)
    assert set(got) == {"A1", "A2", "A4"}
    a1 = got["A1"]
    assert a1["names"] == [
        {"name": "Chez Paul", "type": "legal", "lang": "", "level": "establishment"},
        {"name": "Paul SRL", "type": "commercial", "lang": "", "level": "establishment"}]
    assert (a1["street_fr"], a1["street_nl"], a1["house_number"], a1["postcode"],
            a1["municipality_fr"]) == ("Rue Haute", "Rue Haute", "12", "1000", "Bruxelles")
    assert a1["phones"] == ["+3225135151"]
    assert a1["websites"][0].startswith("http://www.chez-paul.example")
    assert a1["nace"][0]["code"] == "56101" and a1["horeca"] == 1
    assert (a1["declared_workers"], a1["declared_level"]) == (3.0, "establishment")
    assert got["A2"]["declared_workers"] is None and got["A2"]["declared_level"] is None
    assert got["A4"]["horeca"] == 0
    assert result.counts["outside_region"] == 1 and result.counts["horeca_units"] == 2
    assert result.snapshot_date is None


def test_nace_filter_while_streaming(db, tmp_path):
    result = run(db, *write(tmp_path, ROWS), nace=("55", "56"))
    assert set(units(db)) == {"A1", "A2"}
    assert result.counts["outside_nace_filter"] == 1


def test_full_address_column_is_parsed(db, tmp_path):
    mapping = """
[columns]
id = "ID"
names = "NAME"
address = "ADDRESS"
"""
    data, mapping_path = write(tmp_path, [
        'B1,Le Coin,"Av. Louise 17-20 bte 3, 1050 Ixelles"',
        'B2,Far Away,"Meir 1, 2000 Antwerpen"'], mapping=mapping, header="ID,NAME,ADDRESS\n")
    run(db, data, mapping_path)
    b1 = units(db)
    assert list(b1) == ["B1"]
    assert (b1["B1"]["street_fr"], b1["B1"]["house_number"], b1["B1"]["box"],
            b1["B1"]["postcode"], b1["B1"]["municipality_fr"]) == (
        "Av. Louise", "17-20", "3", "1050", "Ixelles")


def test_default_country_reads_national_phone_numbers(db, tmp_path):
    data, mapping = write(tmp_path, [
        "F1,Bistro,,Rue X,1,1000,Bruxelles,01 42 68 53 00,,56101,"])
    run(db, data, mapping, default_country="FR")
    assert units(db)["F1"]["phones"] == ["+33142685300"]


def test_semicolon_latin1_file_with_options(db, tmp_path):
    header = HEADER.replace(",", ";")
    rows = [r.replace(",", ";") for r in ROWS]
    rows[0] = rows[0].replace("Chez Paul", "Chez Paulé")
    data, mapping = write(tmp_path, rows, header=header, encoding="latin-1")
    with pytest.raises(UserError) as info:
        run(db, data, mapping, encoding="latin-1")
    assert "--delimiter ';'" in str(info.value)
    with pytest.raises(UserError) as info:
        run(db, data, mapping, delimiter=";")
    assert "not valid utf-8" in str(info.value) and "register.csv:2" in str(info.value)
    run(db, data, mapping, delimiter=";", encoding="latin-1")
    assert units(db)["A1"]["names"][0]["name"] == "Chez Paulé"


def test_missing_column_names_file_and_column(db, tmp_path):
    data, mapping = write(tmp_path, ROWS, mapping=MAPPING.replace('"STAFF"', '"WORKERS"'))
    with pytest.raises(UserError) as info:
        run(db, data, mapping)
    assert "register.csv:1" in str(info.value) and "missing column(s) WORKERS" in str(info.value)
    assert active_snapshot(db, "brussels") is None


def test_duplicate_and_missing_ids_are_skipped_and_reported(db, tmp_path):
    rows = [*ROWS, ROWS[0].replace("Chez Paul", "Chez Paul again"),
            ",No Id,,Rue Y,1,1000,Bruxelles,,,56101,"]
    result = run(db, *write(tmp_path, rows))
    skipped = result.issues.as_dict()
    assert skipped["duplicate_key"]["count"] == 1
    assert "register.csv:6" in skipped["duplicate_key"]["examples"][0]
    assert skipped["missing_id"]["count"] == 1
    assert units(db)["A1"]["names"][0]["name"] == "Chez Paul"
    with pytest.raises(UserError, match=r"register\.csv:6: .*duplicate key"):
        run(db, *write(tmp_path, rows), strict=True, force=True)


def test_wrong_column_count_and_bad_numbers_are_reported(db, tmp_path):
    rows = [*ROWS, "A9,Too,Few", "A8,Bar X,,Rue Z,1,1000,Bruxelles,,,56301,many"]
    result = run(db, *write(tmp_path, rows))
    skipped = result.issues.as_dict()
    assert skipped["wrong_column_count"]["examples"][0].endswith(
        "register.csv:6: 3 columns where the header has 11")
    assert skipped["bad_number"]["count"] == 1
    assert units(db)["A8"]["declared_workers"] is None


def test_invalid_enterprise_number_is_counted_and_the_row_kept(db, tmp_path):
    mapping = MAPPING.replace('id = "ID"', 'id = "ID"\nenterprise_number = "VAT"')
    header = HEADER.rstrip("\n") + ",VAT\n"
    rows = [ROWS[0] + ",BE 0123.456.749", ROWS[1] + ",0123.456.700"]
    result = run(db, *write(tmp_path, rows, mapping=mapping, header=header))
    got = units(db)
    assert got["A1"]["enterprise_number"] == "0123456749"
    assert got["A2"]["enterprise_number"] is None
    assert result.issues.counts["invalid_enterprise_number"] == 1


@pytest.mark.parametrize("text, message", [
    ('[columns]\nnames = "N"\n', "has no id"),
    ('[columns]\nid = "I"\n', "has no names"),
    ('[columns]\nid = "I"\nnames = "N"\nphonenumber = "P"\n', "unknown key(s) in [columns]: "
                                                            "phonenumber"),
    ('[columns]\nid = "I"\nnames = "N"\naddress = "A"\nstreet = "S"\n', "both address and"),
    ('[columns]\nid = "I"\nnames = "N"\n[names]\nN = "nickname"\n', "unknown name type"),
    ('[columns\nid = "I"\n', "malformed TOML"),
])
def test_mapping_mistakes_name_the_key(tmp_path, text, message):
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as info:
        load_mapping(path)
    assert message in str(info.value) and "m.toml" in str(info.value)


def test_csv_without_mapping_is_refused_with_a_fix(db, tmp_path):
    data, _ = write(tmp_path, ROWS)
    with pytest.raises(UserError, match="--format csv --mapping"):
        import_register(db, ImportRequest(paths=[data], region=BRUSSELS,
                                          region_key="brussels"))


def test_the_shipped_example_mapping_imports_the_example_register(db):
    result = run(db, EXAMPLES / "register-example.csv", EXAMPLES / "register-mapping.toml")
    got = units(db)
    assert set(got) == {"L-0001", "L-0002", "L-0003", "L-0004"}
    assert result.counts["outside_region"] == 1 and result.counts["horeca_units"] == 3
    hotel = got["L-0003"]
    assert hotel["enterprise_number"] == "0403170701"
    assert hotel["phones"] == ["+3227360000"]
    assert hotel["websites"] == ["https://hotel-parc.example/fr/"]
    assert (hotel["declared_workers"], hotel["declared_turnover"]) == (12.0, 1250000.5)
    assert (hotel["lat"], hotel["lon"]) == (50.838, 4.401)
    assert {n["type"] for n in hotel["names"]} == {"commercial", "legal"}
    assert got["L-0002"]["phones"] == ["+32475123456"]
    assert [e["code"] for e in got["L-0002"]["nace"]] == ["56102", "56301"]
