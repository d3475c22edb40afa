"""End to end through the CLI: `horeca demo` on the bundled region meets the keying targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"


def _horeca(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "horeca", *args], cwd=cwd,
                          capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("demo")
    result = _horeca("demo", "--out", "out", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work, result


def test_demo_meets_keying_targets_against_truth(demo_run) -> None:
    work, _ = demo_run
    result = _horeca("--db", "out/horeca.db", "evaluate", "--truth", str(DEMO / "truth.csv"),
                     "--json", cwd=work)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    targets = report["targets"]
    assert all(targets.values()), report


def test_demo_summary_shows_classes_refusals_targets_and_files(demo_run) -> None:
    _, result = demo_run
    text = result.stderr
    for expected in ("Places by class", "match", "no-match", "Top targets",
                     "eatlocal", "refused", "nomine", "no-match.xlsx"):
        assert expected in text, expected


def test_demo_exports_open_and_rank_no_match_rows(demo_run) -> None:
    work, _ = demo_run
    sheet = openpyxl.load_workbook(work / "out" / "no-match.xlsx").active
    header = [c.value for c in sheet[1]]
    assert str(sheet.freeze_panes).endswith("2")  # the header row stays in view
    ranks = [row[header.index("rank")] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert ranks and ranks == sorted(ranks)
    geo = json.loads((work / "out" / "no-match.geojson").read_text(encoding="utf-8"))
    assert geo["type"] == "FeatureCollection" and geo["features"]


def test_demo_rerun_is_idempotent(demo_run) -> None:
    work, _ = demo_run
    import sqlite3

    def counts() -> tuple[int, ...]:
        con = sqlite3.connect(work / "out" / "horeca.db")
        try:
            return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                         for t in ("listings", "register_units", "keying_results"))
        finally:
            con.close()

    before = counts()
    again = _horeca("demo", "--out", "out", cwd=work)
    assert again.returncode == 0, again.stderr[-3000:]
    assert counts() == before


def test_run_keys_the_stored_region_against_its_active_snapshot(demo_run) -> None:
    work, _ = demo_run
    result = _horeca("--db", "out/horeca.db", "run", "--region", "brussels", "--no-crawl",
                     "--out", "run-out", "--formats", "csv", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Places by class" in result.stderr
    assert (work / "run-out" / "no-match.csv").stat().st_size > 0
    assert (work / "run-out" / "doubt.csv").stat().st_size > 0


def test_run_without_any_register_is_one_clear_error(tmp_path: Path) -> None:
    result = _horeca("--db", "empty.db", "run", "--region", "brussels", "--no-crawl",
                     cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no register imported for region 'brussels'" in result.stderr
    assert "--register" in result.stderr
