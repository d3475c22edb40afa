"""The side-by-side benchmark's harness without Splink: world, horeca side, scoring.

Splink itself is a benchmark-only extra (`make bench`); CI runs the horeca side of the
harness on a tiny generated world, the Splink input preparation (plain Python), the
per-listing scoring both sides share, and the benchmark runner's errors. No figures are
asserted here: speed and memory belong to bench/ and docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from horeca.keying.evaluate import TruthRow, load_truth

ROOT = Path(__file__).resolve().parents[1]
# bench/ is a folder of scripts beside the package (run as `python -m bench` from the
# repository root), not part of the installed `horeca` package.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from bench import compare_horeca, splink_model  # noqa: E402
from bench.compare_metrics import f1, horeca_answers, listing_scores, splink_answers  # noqa: E402
from bench.compare_world import APPROVED, generated_world, raw_record  # noqa: E402
from bench.splink_compare import run_child, tree_rss_kb  # noqa: E402

TINY = {"units": 400, "horeca_units": 120, "businesses": 100,
        "generic_streets_per_postcode": 2}


def _truth(**units: str) -> dict[tuple[str, str], TruthRow]:
    return {("s", k): TruthRow(v, f"B{k}", (), True) for k, v in units.items()}


def test_listing_scores_count_right_wrong_and_absent_matches() -> None:
    truth = _truth(a="2111111111", b="2222222222", c="", d="2444444444")
    answers = {"s:a": "2.111.111.111",   # right (digits compared)
               "s:b": "2.333.333.333",   # wrong unit
               "s:c": "2.555.555.555",   # matched, but the business is not registered
               "s:d": None,              # registered, not matched
               "s:zz": "2.999.999.999"}  # no truth row: not judged
    s = listing_scores(answers, truth)
    assert (s["listings"], s["registered"], s["matched"], s["correct"]) == (4, 3, 3, 1)
    assert (s["wrong_unit"], s["matched_but_absent"]) == (1, 1)
    assert s["precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["f1"] == pytest.approx(1 / 3, abs=1e-4)


def test_f1_is_none_without_matches_and_zero_when_nothing_is_right() -> None:
    assert f1(None, 0.0) is None
    assert f1(0.0, 0.0) == 0.0
    assert f1(1.0, 0.5) == pytest.approx(2 / 3, abs=1e-4)


def test_splink_answers_give_every_listing_an_answer_or_none() -> None:
    got = splink_answers(["s:a", "s:b"], {"s:a": ["2111111111", 0.97]})
    assert got == {"s:a": "2111111111", "s:b": None}


def test_splink_preparation_folds_names_domains_and_numbers() -> None:
    assert splink_model.clean_name("Brasserie L'Été SRL") == "brasserie l ete"
    assert splink_model.domain("https://www.Chez-Leon.be/menu?x=1") == "chez-leon.be"
    assert splink_model.domain("chez-leon.be") == "chez-leon.be"
    assert splink_model.domain(None) is None
    assert splink_model.house_digits("17-19 bte 2") == "17"
    assert splink_model.house_digits("bis") is None


def test_missing_splink_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "splink", None)  # import splink -> ImportError
    with pytest.raises(SystemExit) as exit_:
        splink_model.require_splink()
    assert "make bench" in str(exit_.value)


def test_generated_world_holds_raw_listings_of_the_approved_sources(tmp_path: Path) -> None:
    world = generated_world(tmp_path / "w", "tiny", TINY)
    assert set(world.listings) == set(APPROVED)
    first = json.loads(world.listings["gustoreviews"].read_text().splitlines()[0])
    # What a spider reads off the page, not the generator's parsed fields.
    assert "address_raw" in first and "street" not in first and "phone" not in first
    assert raw_record({"name": "X", "street": "Rue Y", "alt_names": []}) == {"name": "X"}
    again = generated_world(tmp_path / "w", "tiny", TINY)  # reused, not regenerated
    assert again.sizes == world.sizes


def test_horeca_side_and_splink_inputs_on_a_tiny_world(tmp_path: Path) -> None:
    world = generated_world(tmp_path / "w", "tiny", TINY)
    db = tmp_path / "store.db"
    prep = compare_horeca.prepare(db, world, proxy=None)
    assert set(prep["seconds"]) == {"register import", "listings import",
                                    "gazetteer import", "geocode"}
    kept = sum(s["kept"] for s in prep["facts"]["listings"].values())
    assert kept > 0

    listings, units = splink_model.read_store(db)
    assert len(listings) == kept and len(units) == prep["facts"]["register"]["units"]
    row = next(r for r in listings if r["phones"])
    assert row["phone"] == row["phones"][0] and row["phone"].startswith("+32")
    assert all(r["names"] is None or all(r["names"]) for r in (*listings, *units))

    # horeca key as the benchmark runs it: its own process, measured from outside.
    key = run_child("horeca key", ["-m", "bench.compare_horeca", "key", "--db", str(db),
                                   "--out", str(tmp_path / "key.json")], tmp_path / "key.json")
    assert key["tree_peak_mb"] > 0 and key["cpu_s"] > 0 and key["outside_wall_s"] > 0
    assert sum(key["facts"]["outcomes"].values()) == key["facts"]["places"]
    answers, shares = horeca_answers(db)
    assert len(answers) == kept
    assert sum(shares["places"].values()) == key["facts"]["places"]
    scores = listing_scores(answers, load_truth(world.truth))
    assert scores["listings"] == kept
    # The real chain on a clean, tiny world: most registered listings are found and
    # nearly every match is right (a broken harness would score near zero).
    assert scores["precision"] >= 0.9 and scores["recall"] >= 0.7


def test_tree_memory_counts_a_child_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; b = b'x' * 60_000_000;"
                              " print('ready', flush=True); time.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        alone = tree_rss_kb(child.pid)
        assert alone >= 55_000  # KiB: the child's 60 MB buffer is resident
        assert tree_rss_kb(os.getpid()) >= alone  # this process's tree includes the child
    finally:
        child.kill()
        child.wait()


def test_bench_runner_rejects_unknown_names() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "nonsense"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown benchmark 'nonsense'" in proc.stderr
    assert "compare" in proc.stderr
