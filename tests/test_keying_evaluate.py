"""Keying end to end: the demo world against its truth (the issue's targets), the CLI on a
real store (`horeca key`, `horeca evaluate`), metrics, and clear errors for bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from horeca.cli import app
from horeca.errors import UserError
from horeca.fixtures.generate_demo import generate
from horeca.keying.blocking import block
from horeca.keying.config import DEFAULT_CONFIG, load_config
from horeca.keying.engine import key_places
from horeca.keying.evaluate import (
    PlaceOutcome,
    TruthRow,
    digits,
    evaluate,
    load_truth,
    outcomes_from_run,
    target_status,
)
from horeca.keying.store_io import prepare_places
from horeca.keying.synthetic import listings_from_world, units_from_world
from horeca.legal_gate.audit import verify
from horeca.store import open_db
from horeca.store.runs import now_iso

APPROVED = ("gustoreviews", "tablebook", "staybrussels", "overpass")


def _truth(world) -> dict[tuple[str, str], TruthRow]:
    return {(r["source"], r["source_id"]): TruthRow(
        digits(r["unit_id"]), r["business_id"], tuple(r["difficulties"].split(";")),
        r["in_region"] == "1") for r in world.truth}


def test_demo_world_meets_the_keying_targets() -> None:
    """The committed demo region (same generator, same seed), as the approved sources
    publish it, keyed against its register: every target of issue 7."""
    world = generate(None)
    listings = listings_from_world(world, APPROVED)
    places = prepare_places(listings, {}, DEFAULT_CONFIG)
    cands = block(places, units_from_world(world), DEFAULT_CONFIG.blocking,
                  sample_size=DEFAULT_CONFIG.scoring.sample_units,
                  seed=DEFAULT_CONFIG.scoring.seed)
    run = key_places(places, cands, DEFAULT_CONFIG)
    report = evaluate(outcomes_from_run(run, places), _truth(world))
    met = target_status(report)
    assert all(met.values()), {k: report[k] for k in met}
    assert report["by_difficulty"]["clean"]["match_ok"] > 0.95 * sum(
        report["by_difficulty"]["clean"].values())


def test_metrics_on_hand_made_outcomes() -> None:
    truth = {("s", "1"): TruthRow("2100000001", "B1", ("clean",), True),
             ("s", "2"): TruthRow("2100000002", "B2", ("moved",), True),
             ("s", "3"): TruthRow("", "B3", ("absent",), True),
             ("s", "4"): TruthRow("", "B4", ("absent",), True)}
    outcomes = [
        PlaceOutcome("P1", ["s:1"], "match", "2.100.000.001", ["2.100.000.001"]),
        PlaceOutcome("P2", ["s:2"], "doubt", None, []),
        PlaceOutcome("P3", ["s:3"], "no-match", None, []),
        PlaceOutcome("P4", ["s:4"], "match", "2.100.000.009", ["2.100.000.009"]),
        PlaceOutcome("P5", ["other:1"], "match", "x", []),   # no truth: not judged
    ]
    r = evaluate(outcomes, truth)
    assert (r["places"], r["places_without_truth"]) == (4, 1)
    assert r["match_precision"] == 0.5 and r["match_recall"] == 0.5
    assert r["doubt_share"] == 0.25 and r["no_match_precision"] == 1.0
    assert r["blocking_recall"] == 0.5
    assert r["by_difficulty"]["absent"] == {"match_ok": 0, "match_wrong": 0, "doubt": 0,
                                            "no_match": 0, "absent_match": 1,
                                            "absent_doubt": 0, "absent_no_match": 1}


def test_bad_truth_and_config_files_are_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "truth.csv"
    bad.write_text("name,city\nx,y\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"truth.csv:1: not a truth file"):
        load_truth(bad)
    with pytest.raises(UserError, match="truth file not found"):
        load_truth(tmp_path / "missing.csv")
    conf = tmp_path / "keying.toml"
    conf.write_text("[keying.scoring]\nmatch_probabilty = 0.9\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"unknown setting \[keying.scoring\] match_probabilty"):
        load_config(conf)
    conf.write_text("[keying.scoring]\nmatch_probability = 0.001\n", encoding="utf-8")
    with pytest.raises(UserError, match="doubt_probability < match_probability"):
        load_config(conf)
    conf.write_text("[keying]\ncountry = 'NL'\n[keying.grades]\nname_same = 96\n"
                    "[keying.weights.phone]\nA = [0.9, 0.001]\nF = [0.1, 0.999]\n",
                    encoding="utf-8")
    config = load_config(conf)
    assert config.country == "NL" and config.grades.name_same == 96.0
    assert config.fixed_weights["phone"]["A"] == (0.9, 0.001)
    conf.write_text("[keying.grades\n", encoding="utf-8")
    with pytest.raises(UserError, match="malformed TOML"):
        load_config(conf)


# ----------------------------------------------------------------------------- the CLI


UNIT_COLUMNS = ("unit_id", "enterprise_number", "establishment_number", "names", "street_fr",
                "street_nl", "house_number", "box", "postcode", "seat_street_fr",
                "seat_street_nl", "seat_house_number", "seat_postcode", "phones", "websites",
                "emails", "nace", "horeca", "natural_person", "lat", "lon")
LISTING_COLUMNS = ("id", "source", "source_id", "url", "name", "alt_names", "address_raw",
                   "street", "house_number", "box", "postcode", "locality", "phone_raw",
                   "phone", "website", "lat", "lon", "category", "review_count", "legal_name",
                   "vat")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store holding a small generated world: listings and an active register."""
    folder = tmp_path_factory.mktemp("keying")
    world = generate(None, seed=3, units=900, horeca_units=300)
    db = open_db(folder / "h.db")
    now = now_iso()
    snapshot = db.conn.execute("INSERT INTO register_snapshots (region, format, imported_at, "
                               "status) VALUES ('brussels', 'kbo', ?, 'active')",
                               [now]).lastrowid
    with db.conn:
        db.conn.executemany(
            f"INSERT INTO register_units (snapshot_id, {', '.join(UNIT_COLUMNS)}) VALUES "
            f"(?, {', '.join('?' for _ in UNIT_COLUMNS)})",
            [(snapshot, *(u.get(c) for c in UNIT_COLUMNS)) for u in units_from_world(world)])
        db.conn.executemany(
            f"INSERT INTO listings ({', '.join(LISTING_COLUMNS)}, first_seen, last_seen) "
            f"VALUES ({', '.join('?' for _ in LISTING_COLUMNS)}, ?, ?)",
            [(*(r.get(c) for c in LISTING_COLUMNS), now, now)
             for r in listings_from_world(world, APPROVED)])
    db.conn.close()
    truth = folder / "truth.csv"
    with open(truth, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(world.truth[0]))
        writer.writeheader()
        writer.writerows(world.truth)
    return folder / "h.db", truth


def _rows(db_path: Path) -> list[tuple]:
    db = open_db(db_path)
    rows = db.execute("SELECT place_id, outcome, unit_id, score, grades, reason "
                      "FROM keying_results ORDER BY place_id").fetchall()
    db.conn.close()
    return rows


def test_key_writes_explained_results_idempotently_and_audits(
        small_store: tuple[Path, Path]) -> None:
    db_path, _ = small_store
    runner = CliRunner()
    first = runner.invoke(app, ["--db", str(db_path), "key", "--region", "brussels", "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout[first.stdout.index("{"):first.stdout.rindex("}") + 1])
    assert summary["places"] == sum(summary[o] for o in ("match", "doubt", "no-match")) > 0
    rows = _rows(db_path)
    assert len(rows) == summary["places"]
    assert all(r[5] for r in rows) and all(r[4] for r in rows if r[1] != "no-match")
    again = runner.invoke(app, ["--db", str(db_path), "key", "--region", "brussels"])
    assert again.exit_code == 0, again.output
    assert _rows(db_path) == rows
    db = open_db(db_path)
    entries = db.execute("SELECT action, rows FROM audit_log WHERE action = 'key'").fetchall()
    doubt = db.execute("SELECT candidates FROM keying_results WHERE outcome = 'doubt' "
                       "LIMIT 1").fetchone()
    assert verify(db) is None
    db.conn.close()
    assert len(entries) == 2 and entries[0][1] == summary["places"]
    if doubt:
        cands = json.loads(doubt[0])
        assert 1 <= len(cands) <= 3 and all("grades" in c and "waterfall" in c for c in cands)


def test_evaluate_prints_the_targets_and_json(small_store: tuple[Path, Path]) -> None:
    db_path, truth = small_store
    runner = CliRunner()
    assert runner.invoke(app, ["--db", str(db_path), "key"]).exit_code == 0
    text = runner.invoke(app, ["--db", str(db_path), "evaluate", "--truth", str(truth)])
    assert text.exit_code == 0, text.output
    assert "match precision" in text.stdout and "blocking recall" in text.stdout
    as_json = runner.invoke(app, ["--db", str(db_path), "evaluate", "--truth", str(truth),
                                  "--json"])
    report = json.loads(as_json.stdout)
    assert set(report["targets"]) == {"match_precision", "match_recall", "doubt_share",
                                      "no_match_precision", "blocking_recall"}
    assert report["match_precision"] > 0.95


def test_cli_user_mistakes_are_one_line(small_store: tuple[Path, Path],
                                        tmp_path: Path) -> None:
    db_path, _ = small_store
    runner = CliRunner()
    no_register = runner.invoke(app, ["--db", str(tmp_path / "empty.db"), "key"])
    assert no_register.exit_code == 2
    assert "no active register snapshot" in no_register.output
    both = runner.invoke(app, ["--db", str(db_path), "evaluate"])
    assert both.exit_code == 2 and "exactly one of --truth" in both.output
    missing = runner.invoke(app, ["--db", str(db_path), "evaluate", "--truth",
                                  str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "truth file not found" in missing.output


def test_verdicts_force_matches_and_serve_as_labels(small_store: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    import shutil

    db_path = tmp_path / "v.db"
    shutil.copy(small_store[0], db_path)
    runner = CliRunner()
    assert runner.invoke(app, ["--db", str(db_path), "key"]).exit_code == 0
    db = open_db(db_path)
    # a place keyed as doubt or no-match, reviewed as registered under some unit
    place_id, listing_ids = db.execute(
        "SELECT p.id, p.listing_ids FROM places p JOIN keying_results k ON k.place_id = p.id "
        "WHERE k.outcome != 'match' ORDER BY p.id LIMIT 1").fetchone()
    unit_id = db.execute("SELECT unit_id FROM register_units WHERE horeca = 1 "
                         "ORDER BY unit_id LIMIT 1").fetchone()[0]
    with db.conn:
        db.conn.execute(
            "INSERT INTO verdicts (place_id, listing_ids, verdict, register_number, outcome, "
            "reviewer, reviewed_at, imported_at) VALUES (?, ?, 'registered_under', ?, "
            "'doubt', 'inspector A', '2026-11-20', '2026-11-21')",
            [place_id, listing_ids, unit_id])
    db.conn.close()
    keyed = runner.invoke(app, ["--db", str(db_path), "key", "--json"])
    assert keyed.exit_code == 0, keyed.output
    db = open_db(db_path)
    outcome, matched, reason = db.execute(
        "SELECT outcome, unit_id, reason FROM keying_results WHERE place_id = ?",
        [place_id]).fetchone()
    db.conn.close()
    assert (outcome, matched) == ("match", unit_id) and "reviewer" in reason
    report = runner.invoke(app, ["--db", str(db_path), "evaluate", "--verdicts", "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["places"] == 1
