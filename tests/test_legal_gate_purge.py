"""Retention purge (with dry run) and the audit commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from horeca.cli import app
from horeca.legal_gate import audit
from horeca.legal_gate.config import parse_sources
from horeca.legal_gate.purge import purge
from horeca.store import open_db

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SOURCES = """\
[defaults]
retention_days = 365

[sources.gusto]
spider = "structured"
status = "pending"
allowed_domains = ["gustoreviews.example"]
start_urls = ["http://gustoreviews.example/"]
retention_days = 30
"""


def _iso(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat(timespec="seconds")


def _world(path: Path):
    db = open_db(path)
    listings = [
        ("gusto:old", "gusto", _iso(31)),        # expired (30 days)
        ("gusto:new", "gusto", _iso(5)),
        ("gusto:undated", "gusto", None),        # no date: cannot show it is recent
        ("gone:old", "gone", _iso(400)),         # unconfigured source: default 365 days
        ("gone:new", "gone", _iso(100)),
    ]
    for lid, source, seen in listings:
        db["listings"].insert({"id": lid, "source": source, "source_id": lid.split(":")[1],
                               "name": lid, "last_seen": seen, "first_seen": seen})
    for lid, _, _ in listings:
        db["entity_geocodes"].insert({"entity_kind": "listing", "entity_id": lid, "lat": 50.8,
                                      "lon": 4.3})
    db["entity_geocodes"].insert({"entity_kind": "unit", "entity_id": "gusto:old"})
    db["places"].insert_all([
        {"id": "p-mixed", "listing_ids": json.dumps(["gusto:old", "gusto:new"])},
        {"id": "p-fresh", "listing_ids": json.dumps(["gusto:new", "gone:new"])},
        {"id": "p-gone", "listing_ids": json.dumps(["gone:old"])},
    ])
    db["keying_results"].insert_all([{"place_id": p, "outcome": "match"}
                                     for p in ("p-mixed", "p-fresh", "p-gone")])
    return db


def _ids(db, table: str, column: str = "id") -> set[str]:
    return {row[0] for row in db.execute(f"SELECT {column} FROM {table}").fetchall()}


def test_dry_run_counts_and_changes_nothing(tmp_path: Path) -> None:
    db = _world(tmp_path / "h.db")
    before = {t: db[t].count for t in ("listings", "entity_geocodes", "places",
                                       "keying_results", "audit_log")}
    counts = {c.source: c for c in purge(db, parse_sources(SOURCES), True, actor="t",
                                         purpose="p", now=NOW)}
    assert counts["gusto"].listings == 2 and counts["gone"].listings == 1
    assert counts["gusto"].places == 1 and counts["gusto"].keying_results == 1
    assert counts["gusto"].entity_geocodes == 2
    assert {t: db[t].count for t in before} == before


def test_purge_deletes_expired_listings_and_what_derives_from_them(tmp_path: Path) -> None:
    db = _world(tmp_path / "h.db")
    purge(db, parse_sources(SOURCES), False, actor="tester", purpose="retention", now=NOW)
    assert _ids(db, "listings") == {"gusto:new", "gone:new"}
    assert _ids(db, "entity_geocodes", "entity_id") == {"gusto:new", "gone:new", "gusto:old"}
    assert db.execute("SELECT entity_kind FROM entity_geocodes WHERE entity_id = 'gusto:old'"
                      ).fetchone()[0] == "unit"  # a register unit with a lookalike id stays
    assert _ids(db, "places") == {"p-fresh"}
    assert _ids(db, "keying_results", "place_id") == {"p-fresh"}


def test_every_purge_is_audited_per_source(tmp_path: Path) -> None:
    db = _world(tmp_path / "h.db")
    purge(db, parse_sources(SOURCES), False, actor="tester", purpose="retention", now=NOW)
    rows = {r["source"]: r for r in db.query("SELECT * FROM audit_log WHERE action = 'purge'")}
    assert set(rows) == {"gusto", "gone"}
    assert rows["gusto"]["rows"] == 2 and rows["gusto"]["actor"] == "tester"
    assert json.loads(rows["gusto"]["details"])["retention_days"] == 30
    assert audit.verify(db) is None


def test_purge_twice_deletes_nothing_more(tmp_path: Path) -> None:
    db = _world(tmp_path / "h.db")
    purge(db, parse_sources(SOURCES), False, now=NOW)
    again = purge(db, parse_sources(SOURCES), False, now=NOW)
    assert sum(c.listings for c in again) == 0
    assert _ids(db, "listings") == {"gusto:new", "gone:new"}


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HORECA_DB", str(tmp_path / "h.db"))
    (tmp_path / "sources.toml").write_text(SOURCES)
    monkeypatch.setenv("HORECA_SOURCES", str(tmp_path / "sources.toml"))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_purge_command_dry_run_writes_no_audit_entry(cli, tmp_path: Path) -> None:
    db = _world(tmp_path / "h.db")
    result = cli("purge", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would delete" in result.output
    assert db["listings"].count == 5 and db["audit_log"].count == 0
    result = cli("purge")
    assert result.exit_code == 0, result.output
    assert db["audit_log"].count == 2


def test_audit_verify_passes_then_names_the_tampered_entry(cli, tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    for i in range(4):
        audit.record(db, "crawl", actor="a", source=f"s{i}", rows=i, purpose="p")
    ok = cli("audit", "verify")
    assert ok.exit_code == 0 and "intact: 4 entries" in ok.output
    db.conn.execute("DROP TRIGGER audit_log_no_update")
    db.conn.execute("UPDATE audit_log SET rows = 999 WHERE id = 3")
    broken = cli("audit", "verify")
    assert broken.exit_code == 1
    assert "broken at entry 3" in broken.output


def test_audit_show_filters_by_action(cli, tmp_path: Path) -> None:
    db = open_db(tmp_path / "h.db")
    audit.record(db, "approve", actor="reviewer-a", source="gusto", purpose="p")
    audit.record(db, "crawl_refused", actor="analyst-b", source="eatlocal", purpose="p")
    result = cli("audit", "show", "--action", "crawl_refused")
    assert result.exit_code == 0, result.output
    assert "analyst-b" in result.output and "reviewer-a" not in result.output
