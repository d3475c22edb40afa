"""Benchmark: horeca and Splink side by side on the same data, from the same run.

    .venv/bin/python -m bench compare                  # the demo region (about 2 minutes)
    .venv/bin/python -m bench compare --scale large    # 10x register and businesses
    .venv/bin/python -m bench compare --scale all      # both
    (the same as .venv/bin/python -m bench.splink_compare ...)

For each scale, four processes run one after the other, each measured on its own
(wall time from outside, CPU time, peak resident memory):

1. horeca prepare (bench/compare_horeca.py): register import, listings, gazetteer,
   offline geocoding into a fresh store. Demo: a real crawl of the fixture sites through
   the legal gate. Large: the generated records loaded through `listings import` (the
   spiders' own minimisation and parsing steps), no crawl.
2. Splink (bench/splink_model.py): reads that prepared store and links listings to
   register units, trained without labels, match probability >= 0.9, best unit per
   listing.
3. horeca key (bench/compare_horeca.py): keys the same store.
4. Scoring (bench/compare_metrics.py): precision, recall, F1 of matches per listing
   against the world's truth file, identically for both; horeca's doubt share.

Results go to bench/results/compare-<scale>.json; docs/benchmarks.md ("Side by side with
Splink") quotes them. Splink is a benchmark-only extra: `make bench` installs it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.compare_metrics import horeca_answers, listing_scores, splink_answers
from bench.compare_world import DATA, ROOT, WorldFiles, world_for
from bench.splink_model import INSTALL_HINT

RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
THRESHOLD = 0.9
SWEEP = (0.5, 0.8, 0.9, 0.95, 0.99)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": os.getloadavg()[0]}


def code_version() -> dict[str, Any]:
    """The commit measured, and the tracked files changed since (others work in this tree)."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no")
               .splitlines() if line.strip()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "changed_files": changed}


def source_digest() -> str:
    """SHA-256 of horeca's own Python sources (not bench/ or tests/): equal at the start
    and end of a run means every round measured the same code."""
    import hashlib

    digest = hashlib.sha256()
    skip = {".venv", "bench", "tests", "build", ".git", "__pycache__", "demo", "out"}
    paths = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in skip and not d.startswith(".")]
        paths += [Path(folder) / f for f in files if f.endswith(".py")]
    for path in sorted(paths):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def splink_installed() -> bool:
    probe = subprocess.run([PYTHON, "-c", "import splink, duckdb"], capture_output=True)
    return probe.returncode == 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            out.extend(int(c) for c in task.read_text().split())
    return out


def tree_rss_kb(root: int) -> int:
    """Resident memory of `root` and all its descendants now (Linux /proc), in KiB.

    A sum of RSS counts pages a forked worker still shares with its parent twice, so for
    horeca's parallel register scan this is an upper bound of what the tree really holds.
    """
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page_kb
        todo.extend(_children(pid))
    return total


def run_child(label: str, args: list[str], report: Path, *, sample_s: float = 0.2
              ) -> dict[str, Any]:
    """Run one measured process. Returns its own report plus the wall and CPU time seen
    from outside (its worker processes included) and the peak resident memory of its
    process tree, sampled every `sample_s` seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    peak_kb = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        proc = subprocess.Popen([PYTHON, *args], cwd=ROOT, stderr=err, text=True)
        while proc.poll() is None:
            peak_kb = max(peak_kb, tree_rss_kb(proc.pid))
            time.sleep(sample_s)
        wall = time.perf_counter() - started
        err.seek(0)
        stderr = err.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for line in stderr.splitlines():
        if line.startswith(("[horeca]", "[splink]")):
            print(f"  {line}", flush=True)
    if proc.returncode != 0:
        print(stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"[{label}] failed with status {proc.returncode}")
    out = json.loads(report.read_text())
    out["outside_wall_s"] = round(wall, 2)
    out["cpu_s"] = round((after.ru_utime - before.ru_utime)
                         + (after.ru_stime - before.ru_stime), 2)
    out["tree_peak_mb"] = round(peak_kb / 1024, 1)
    return out


def _fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def prepare(world: WorldFiles, db: Path, work: Path) -> dict[str, Any]:
    args = ["-m", "bench.compare_horeca", "prepare", "--scale", world.scale, "--db", str(db),
            "--out", str(work / "prepare.json")]
    if world.sites is None:
        return run_child("horeca prepare", args, work / "prepare.json")
    from horeca.fixtures.server import serve_sites

    with serve_sites(world.sites) as proxy:
        return run_child("horeca prepare", [*args, "--proxy", proxy], work / "prepare.json")


def sweep(predictions: dict[str, list], listing_ids: list[str], truth: Any
          ) -> dict[str, dict[str, Any]]:
    """Splink's scores at other thresholds (the best unit per listing does not change)."""
    out = {}
    for t in SWEEP:
        kept = {lid: v for lid, v in predictions.items() if v[1] >= t}
        s = listing_scores(splink_answers(listing_ids, kept), truth)
        out[str(t)] = {k: s[k] for k in ("matched", "precision", "recall", "f1")}
    return out


def place_level(db: Path, truth_path: Path) -> dict[str, Any] | None:
    """horeca's own evaluation (per place), when keying provides it."""
    try:
        from horeca.keying.evaluate import evaluate_store
        from horeca.store import open_db
    except ImportError:
        return None
    report = evaluate_store(open_db(db), truth_path)
    keep = ("places", "match_precision", "match_recall", "doubt_share", "no_match_precision",
            "blocking_recall")
    return {k: report.get(k) for k in keep}


def _peak_detail(run: dict[str, Any]) -> dict[str, float]:
    """The process's own peak (getrusage), its largest finished child's, and the sampled
    peak of the whole process tree."""
    own = run["peak_mb"]
    own = own if isinstance(own, dict) else {"self": own, "children": 0.0}
    return {**own, "tree_sampled": run["tree_peak_mb"]}


def _peak(run: dict[str, Any]) -> float:
    """The headline peak: the largest of the three (sampling can miss a short peak that
    getrusage catches; getrusage cannot see workers running side by side)."""
    return max(_peak_detail(run).values())


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median wall time (the machine is shared: one round can be slowed
    by a neighbour; the median is the figure a user would typically see)."""
    ordered = sorted(runs, key=lambda r: r["outside_wall_s"])
    return ordered[(len(ordered) - 1) // 2]


def same_threshold(db: Path, work: Path, threshold: float, truth: Any) -> dict[str, Any]:
    """horeca keyed once more with its match probability set to Splink's threshold
    (quality only: the default run above gives the time and memory)."""
    config = work / "keying-threshold.toml"
    config.write_text(f"[keying.scoring]\nmatch_probability = {threshold}\n",
                      encoding="utf-8")
    print(f"[+] horeca: key with match probability {threshold}, as Splink", flush=True)
    run_child("horeca key", ["-m", "bench.compare_horeca", "key", "--db", str(db), "--out",
                             str(work / "key-threshold.json"), "--config", str(config)],
              work / "key-threshold.json")
    answers, shares = horeca_answers(db)
    return {"match_probability": threshold, "scores": listing_scores(answers, truth),
            **shares}


def compare(scale: str, *, threshold: float, keep: bool, regenerate: bool,
            repeat: int = 1) -> dict[str, Any]:
    from horeca.keying.evaluate import load_truth

    print(f"== {scale}", flush=True)
    world = world_for(scale, regenerate=regenerate)
    work = DATA / f"compare-{scale}" / "run"
    work.mkdir(parents=True, exist_ok=True)
    db = work / "store.db"
    _fresh(db)
    result: dict[str, Any] = {
        "scale": scale, "machine": machine(), "code": code_version(), "threshold": threshold,
        "source_digest_at_start": source_digest(),
        "command": f".venv/bin/python -m bench compare --scale {scale}"
                   + (f" --repeat {repeat}" if repeat > 1 else ""),
        "listings_loaded_by": world.loading, "world_sizes": world.sizes,
        "world_generate_s": world.generate_s}
    print("[1/3] horeca: register import, listings, gazetteer, geocode", flush=True)
    prep = prepare(world, db, work)
    lowest = min(*SWEEP, threshold)
    spl_runs, key_runs, answers_seen = [], [], []
    for r in range(repeat):
        round_ = f" (round {r + 1} of {repeat})" if repeat > 1 else ""
        print(f"[2/3] Splink: prepare, train (no labels), predict{round_}", flush=True)
        spl_runs.append(run_child("splink", [
            "-m", "bench.splink_model", "--db", str(db), "--out", str(work / "splink.json"),
            "--threshold", str(lowest)], work / "splink.json"))
        print(f"[3/3] horeca: key{round_}", flush=True)
        key_runs.append(run_child("horeca key", [
            "-m", "bench.compare_horeca", "key", "--db", str(db), "--out",
            str(work / "key.json")], work / "key.json"))
        answers_seen.append((horeca_answers(db)[0], spl_runs[-1]["predictions"]))
    spl, key = _median_run(spl_runs), _median_run(key_runs)

    truth = load_truth(world.truth)
    answers, shares = horeca_answers(db)
    ids = list(answers)
    predictions = spl.pop("predictions")
    chosen = {lid: v for lid, v in predictions.items() if v[1] >= threshold}
    result["horeca"] = {
        "scores": listing_scores(answers, truth), **shares,
        "key": {"wall_s": key["outside_wall_s"], "cpu_s": key["cpu_s"],
                "peak_mb": _peak(key), "peak_detail_mb": _peak_detail(key),
                "inside_s": key["seconds"], "facts": key["facts"]},
        "prepare": {"wall_s": prep["outside_wall_s"], "cpu_s": prep["cpu_s"],
                    "peak_mb": _peak(prep), "peak_detail_mb": _peak_detail(prep),
                    "stages_s": prep["seconds"],
                    "facts": prep["facts"]},
        "chain_wall_s": round(prep["outside_wall_s"] + key["outside_wall_s"], 2),
        "place_level": place_level(db, world.truth)}
    result["splink"] = {
        "scores": listing_scores(splink_answers(ids, chosen), truth),
        "wall_s": spl["outside_wall_s"], "cpu_s": spl["cpu_s"], "peak_mb": _peak(spl),
        "peak_detail_mb": _peak_detail(spl),
        "inside_s": spl["seconds"], "model": spl["model"], "sweep": sweep(predictions, ids,
                                                                           truth)}
    result["horeca_at_splink_threshold"] = same_threshold(db, work, threshold, truth)
    result["source_digest_at_end"] = source_digest()
    if result["source_digest_at_end"] != result["source_digest_at_start"]:
        print("warning: horeca's sources changed during this run; run it again for figures "
              "of one version", file=sys.stderr)
    result["repeat"] = repeat
    result["same_answers_every_round"] = {
        "horeca": all(a[0] == answers_seen[0][0] for a in answers_seen),
        "splink": all(a[1] == answers_seen[0][1] for a in answers_seen)}
    result["rounds"] = {
        "horeca_key": [{k: r[k] for k in ("outside_wall_s", "cpu_s")} | {
            "peak_mb": _peak(r)} for r in key_runs],
        "splink": [{k: r[k] for k in ("outside_wall_s", "cpu_s")} | {"peak_mb": _peak(r)}
                   for r in spl_runs]}
    result["listings"] = len(ids)
    result["register_units"] = spl["units"]
    if not keep:
        _fresh(db)
        shutil.rmtree(work / "tmp", ignore_errors=True)
    return result


def table(r: dict[str, Any]) -> str:
    """The markdown rows docs/benchmarks.md quotes."""
    h, s, t = r["horeca"], r["splink"], r["horeca_at_splink_threshold"]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f} %"

    rows = [
        f"| | horeca (default settings) | Splink 4, DuckDB (threshold {r['threshold']}) |",
        "|---|---|---|",
        f"| precision of matches | {pct(h['scores']['precision'])} | "
        f"{pct(s['scores']['precision'])} |",
        f"| recall of matches | {pct(h['scores']['recall'])} | {pct(s['scores']['recall'])} |",
        f"| F1 | {pct(h['scores']['f1'])} | {pct(s['scores']['f1'])} |",
        f"| listings matched (correct / wrong unit / not registered) | "
        f"{h['scores']['matched']} ({h['scores']['correct']} / {h['scores']['wrong_unit']} / "
        f"{h['scores']['matched_but_absent']}) | {s['scores']['matched']} "
        f"({s['scores']['correct']} / {s['scores']['wrong_unit']} / "
        f"{s['scores']['matched_but_absent']}) |",
        f"| both at match probability {t['match_probability']}: precision / recall / F1 | "
        f"{pct(t['scores']['precision'])} / {pct(t['scores']['recall'])} / "
        f"{pct(t['scores']['f1'])} | {pct(s['scores']['precision'])} / "
        f"{pct(s['scores']['recall'])} / {pct(s['scores']['f1'])} |",
        f"| doubt (left to a person) | {pct(h['doubt_share_places'])} of places, "
        f"{pct(h['doubt_share_listings'])} of listings | - |",
        f"| keying wall time | {h['key']['wall_s']:.1f} s | {s['wall_s']:.1f} s |",
        f"| keying CPU time | {h['key']['cpu_s']:.1f} s | {s['cpu_s']:.1f} s |",
        f"| keying peak RSS | {h['key']['peak_mb']:.0f} MB | {s['peak_mb']:.0f} MB |",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=["demo", "large", "all"], default="demo")
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help="Splink's match probability threshold (default 0.9)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run Splink and horeca key this many times each and report the "
                        "round with the median wall time (default 1)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the prepared store in bench/data/compare-<scale>/run/")
    parser.add_argument("--regenerate", action="store_true",
                        help="regenerate the large world even if it exists")
    args = parser.parse_args(argv)
    if not splink_installed():
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    scales = ["demo", "large"] if args.scale == "all" else [args.scale]
    for scale in scales:
        result = compare(scale, threshold=args.threshold, keep=args.keep,
                         regenerate=args.regenerate, repeat=max(1, args.repeat))
        out = RESULTS / f"compare-{scale}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(table(result))
        with contextlib.suppress(ValueError):
            out = out.relative_to(ROOT)
        print(f"results in {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
