"""Register snapshots: atomic replacement, failed imports leave the old snapshot intact,
identical re-imports are no-ops, every import is audited; the CLI around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from horeca.cli import app
from horeca.legal_gate.audit import verify
from horeca.region import Region
from horeca.register import (
    ImportRequest,
    active_snapshot,
    import_register,
    iter_units,
    kbo,
    snapshots,
)
from horeca.register.kbo_format import write_extract, write_table
from horeca.register.units import unit_row
from horeca.store import open_db

BRUSSELS = Region("brussels", postcode_ranges=((1000, 1299),))


def ent(n: int) -> str:
    first8 = f"0{300_0000 + n:07d}"
    digits = f"{first8}{97 - int(first8) % 97:02d}"
    return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"


def small_world(folder: Path, n_units: int = 8, name_suffix: str = "") -> Path:
    """`n_units` cafés in Brussels, one enterprise each, plus one in Liège."""
    tables: dict[str, list] = {k: [] for k in ("enterprise", "establishment", "denomination",
                                               "address", "contact", "activity")}
    for i in range(n_units + 1):
        e, u = ent(i), f"2.{i:03d}.111.{i:03d}"
        zipcode = "4000" if i == n_units else f"10{i % 10}0"
        tables["enterprise"].append({"EnterpriseNumber": e, "TypeOfEnterprise": "2"})
        tables["establishment"].append({"EstablishmentNumber": u, "EnterpriseNumber": e})
        tables["denomination"].append({"EntityNumber": u, "Language": "1",
                                       "TypeOfDenomination": "003",
                                       "Denomination": f"Café {i}{name_suffix}"})
        tables["address"].append({"EntityNumber": u, "TypeOfAddress": "BAET",
                                  "Zipcode": zipcode, "StreetFR": "Rue Haute",
                                  "HouseNumber": str(i + 1)})
        tables["activity"].append({"EntityNumber": u, "ActivityGroup": "001",
                                   "NaceVersion": "2008", "NaceCode": "56301",
                                   "Classification": "MAIN"})
    return write_extract(folder, tables)


def request(*paths: Path, **kwargs) -> ImportRequest:
    return ImportRequest(paths=list(paths), region=kwargs.pop("region", BRUSSELS),
                         region_key=kwargs.pop("region_key", "brussels"), **kwargs)


def unit_contents(db, snapshot_id: int) -> list[dict]:
    return [{k: v for k, v in u.items() if k != "snapshot_id"}
            for u in iter_units(db, snapshot_id)]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "h.db"


def test_reimport_replaces_the_snapshot_and_removes_the_old_units(db_path, tmp_path):
    db = open_db(db_path)
    first = import_register(db, request(small_world(tmp_path / "a")))
    second = import_register(db, request(small_world(tmp_path / "b", name_suffix=" bis")))
    assert second.superseded == [first.snapshot_id]
    assert active_snapshot(db, "brussels")["id"] == second.snapshot_id
    statuses = dict(db.execute("SELECT id, status FROM register_snapshots").fetchall())
    assert statuses == {first.snapshot_id: "superseded", second.snapshot_id: "active"}
    assert db.execute("SELECT count(*) FROM register_units WHERE snapshot_id = ?",
                      [first.snapshot_id]).fetchone()[0] == 0
    names = {u["names"][0]["name"] for u in iter_units(db, second.snapshot_id)}
    assert names == {f"Café {i} bis" for i in range(8)}


def test_failure_midway_leaves_the_old_snapshot_active_and_readable(db_path, tmp_path,
                                                                     monkeypatch):
    db = open_db(db_path)
    old = import_register(db, request(small_world(tmp_path / "a")))
    before = unit_contents(db, old.snapshot_id)
    seen_during: dict = {}
    real_build = kbo.KboImport._build

    def failing_build(self):
        for n, row in enumerate(real_build(self), 1):
            if n == 6:  # after two batches of two were committed
                other = open_db(db_path)  # another process's view while the import runs
                seen_during["active"] = active_snapshot(other, "brussels")["id"]
                seen_during["old_units"] = len(unit_contents(other, old.snapshot_id))
                seen_during["building"] = other.execute(
                    "SELECT count(*) FROM register_units u JOIN register_snapshots s "
                    "ON s.id = u.snapshot_id WHERE s.status = 'building'").fetchone()[0]
                raise OSError("disk full (simulated)")
            yield row

    monkeypatch.setattr(kbo.KboImport, "_build", failing_build)
    monkeypatch.setattr(snapshots, "WRITE_BATCH", 2)
    with pytest.raises(OSError, match="disk full"):
        import_register(db, request(small_world(tmp_path / "b", name_suffix=" bis")))
    assert seen_during == {"active": old.snapshot_id, "old_units": 8, "building": 4}
    assert active_snapshot(db, "brussels")["id"] == old.snapshot_id
    assert unit_contents(db, old.snapshot_id) == before
    failed = db.execute("SELECT id, error FROM register_snapshots WHERE status = 'failed'"
                        ).fetchall()
    assert len(failed) == 1 and "disk full" in failed[0][1]
    assert db.execute("SELECT count(*) FROM register_units WHERE snapshot_id = ?",
                      [failed[0][0]]).fetchone()[0] == 0


def test_interrupt_midway_also_keeps_the_old_snapshot(db_path, tmp_path, monkeypatch):
    db = open_db(db_path)
    old = import_register(db, request(small_world(tmp_path / "a")))

    def interrupted(self):
        yield from ()
        raise KeyboardInterrupt

    monkeypatch.setattr(kbo.KboImport, "_build", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_register(db, request(small_world(tmp_path / "b")))
    assert active_snapshot(db, "brussels")["id"] == old.snapshot_id


def test_leftovers_of_a_killed_import_are_cleared_by_the_next(db_path, tmp_path):
    db = open_db(db_path)
    killed = snapshots.begin_snapshot(db, region="brussels", fmt="kbo", source_path="x",
                                      sources=["x"], extract_type="full", snapshot_date=None,
                                      extract_number=None, filters={}, fingerprint="f",
                                      run_id=None)
    snapshots.write_units(db, killed, [unit_row({"unit_id": "u1", "horeca": 0})])
    result = import_register(db, request(small_world(tmp_path / "a")))
    assert result.counts["units"] == 8
    row = db.execute("SELECT status, error FROM register_snapshots WHERE id = ?",
                     [killed]).fetchone()
    assert row == ("failed", "interrupted before completion")
    assert db.execute("SELECT count(*) FROM register_units WHERE snapshot_id = ?",
                      [killed]).fetchone()[0] == 0


def test_identical_reimport_is_a_no_op_and_force_rebuilds_the_same_units(db_path, tmp_path):
    db = open_db(db_path)
    folder = small_world(tmp_path / "a")
    first = import_register(db, request(folder))
    again = import_register(db, request(folder))
    assert again.status == "unchanged" and again.snapshot_id == first.snapshot_id
    before = unit_contents(db, first.snapshot_id)
    forced = import_register(db, request(folder, force=True))
    assert forced.status == "imported" and forced.snapshot_id != first.snapshot_id
    assert len(before) == 8
    assert unit_contents(db, forced.snapshot_id) == before
    assert db.execute("SELECT count(*) FROM register_units").fetchone()[0] == 8


def test_changed_filters_are_not_mistaken_for_an_identical_import(db_path, tmp_path):
    db = open_db(db_path)
    folder = small_world(tmp_path / "a")
    import_register(db, request(folder))
    narrowed = import_register(db, request(folder, nace=("55",)))
    assert narrowed.status == "imported" and narrowed.counts["units"] == 0


def test_regions_have_independent_snapshots(db_path, tmp_path):
    db = open_db(db_path)
    folder = small_world(tmp_path / "a")
    bru = import_register(db, request(folder))
    liege = import_register(db, request(folder, region=Region("liege", postcode_ranges=(
        (4000, 4999),)), region_key="liege"))
    assert liege.counts["units"] == 1
    assert active_snapshot(db, "brussels")["id"] == bru.snapshot_id
    assert len(unit_contents(db, bru.snapshot_id)) == 8


def test_every_import_is_audited_with_its_extract_and_counts(db_path, tmp_path):
    db = open_db(db_path)
    result = import_register(db, request(small_world(tmp_path / "a")), actor="analyst-a",
                             purpose="testing")
    entries = list(db.query("SELECT * FROM audit_log WHERE action = 'register_import'"))
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["actor"], entry["rows"], entry["purpose"]) == ("analyst-a", 8, "testing")
    assert entry["target"] == f"register_snapshots:{result.snapshot_id}"
    details = json.loads(entry["details"])
    assert details["snapshot_date"] == "2025-03-01" and details["region"] == "brussels"
    assert verify(db) is None


# ---------------------------------------------------------------------- CLI

runner = CliRunner()


def test_cli_import_prints_a_summary_and_status_lists_the_snapshot(db_path, tmp_path):
    folder = small_world(tmp_path / "a")
    result = runner.invoke(app, ["--db", str(db_path), "register", "import", str(folder),
                                 "--region", "brussels"])
    assert result.exit_code == 0, result.output
    assert "is now active: 8 units, 8 HoReCa" in result.output
    assert "2025-03-01, extract 140" in result.output
    status = runner.invoke(app, ["--db", str(db_path), "register", "status", "--json"])
    rows = json.loads(status.stdout)
    assert [(r["region"], r["status"], r["counts"]["units"]) for r in rows] == [
        ("brussels", "active", 8)]
    again = runner.invoke(app, ["--db", str(db_path), "register", "import", str(folder),
                                "--region", "brussels"])
    assert "nothing to do" in again.output
    run = open_db(db_path).execute(
        "SELECT status, counts FROM runs WHERE command = 'register import' ORDER BY id LIMIT 1"
    ).fetchone()
    assert run[0] == "ok" and json.loads(run[1])["units"] == 8


def test_cli_import_indexes_the_snapshot_for_keying_and_index_redoes_it_on_demand(
        db_path, tmp_path):
    folder = small_world(tmp_path / "a")
    result = runner.invoke(app, ["--db", str(db_path), "register", "import", str(folder),
                                 "--region", "brussels"])
    assert "indexed 8 units for keying" in result.output
    db = open_db(db_path)
    assert db.execute("SELECT count(*) FROM register_unit_keys").fetchone()[0] == 8
    db.conn.close()
    again = runner.invoke(app, ["--db", str(db_path), "register", "index"])
    assert again.exit_code == 0 and "already indexed" in again.output
    forced = runner.invoke(app, ["--db", str(db_path), "register", "index", "--rebuild",
                                 "--region", "brussels"])
    assert forced.exit_code == 0 and "indexed 8 units" in forced.output
    assert open_db(db_path).execute(
        "SELECT count(*) FROM register_unit_keys").fetchone()[0] == 8
    unknown = runner.invoke(app, ["--db", str(db_path), "register", "index", "--region",
                                  "antwerp"])
    assert unknown.exit_code == 2
    assert "no active register snapshot for 'antwerp'" in unknown.output


def test_cli_bad_input_is_one_line_without_traceback(db_path, tmp_path):
    folder = small_world(tmp_path / "a")
    write_table(folder / "activity.csv", "activity", [], columns=("EntityNumber", "Nace"))
    result = runner.invoke(app, ["--db", str(db_path), "register", "import", str(folder),
                                 "--region", "brussels"])
    # Rendering the error as one line with status 2 is cli.py's job; what this command
    # owes it is a UserError naming the file, the line and the expected header.
    assert result.exit_code != 0
    said = result.output + str(result.exception or "")
    assert "activity.csv:1: unexpected header: missing column(s) NaceVersion" in said
    assert '(fix: the header must be "EntityNumber","ActivityGroup"' in said
    assert open_db(db_path).execute("SELECT count(*) FROM register_snapshots").fetchone()[0] == 0


def test_cli_rejects_a_bad_nace_option(db_path, tmp_path):
    result = runner.invoke(app, ["--db", str(db_path), "register", "import",
                                 str(small_world(tmp_path / "a")), "--nace", "hotels"])
    assert result.exit_code != 0
    assert "--nace: 'hotels' is not a NACE code prefix" in result.output + str(result.exception)
