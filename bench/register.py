"""Benchmark: `horeca register import` on a full-size national KBO extract.

    .venv/bin/python -m bench.register                 # generate if missing, then both runs
    .venv/bin/python -m bench.register --only region   # just Brussels
    .venv/bin/python -m bench.register --data DIR      # an extract you already have

The extract is made by the demo-world generator at national scale (1.9 M enterprises,
1.7 M units, 3.3 M denominations, 2.8 M addresses, 36 M activity rows) into bench/data/
(git-ignored). Each import runs as its own process under /usr/bin/time -v, so the figures
are the command's wall time and peak resident memory as a user would see them. Results go
to bench/results/register.json; docs/benchmarks.md ("Register import") quotes them.

Targets (issue 5): one region <= 120 s and <= 1.5 GB peak; the whole country <= 10 min.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
TARGETS = {"region": {"seconds": 120, "peak_mb": 1536}, "national": {"seconds": 600}}


def generate(out: Path) -> float:
    """Write the national extract with the fixtures generator; returns seconds taken."""
    started = time.monotonic()
    subprocess.run([PYTHON, "-m", "horeca.fixtures.generate_demo", "--kbo-only",
                    "--scale", "national", "--out", str(out)], check=True, cwd=ROOT)
    return time.monotonic() - started


def extract_facts(folder: Path) -> dict:
    """Row counts and sizes of the extract (counted by lines; values hold no newlines)."""
    facts = {}
    for name in ("enterprise", "establishment", "denomination", "address", "contact",
                 "activity"):
        path = folder / f"{name}.csv"
        with open(path, "rb") as f:
            rows = sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 24), b"")) - 1
        facts[name] = {"rows": rows, "mb": round(path.stat().st_size / 1e6, 1)}
    return facts


def _time_v(output: str) -> dict:
    def grab(label: str) -> str:
        match = re.search(rf"{re.escape(label)}: (.+)", output)
        return match.group(1).strip() if match else ""

    wall = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    parts = [float(p) for p in wall.split(":")] if wall else []
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return {"wall_s": round(seconds, 1), "peak_mb": round(int(grab(
        "Maximum resident set size (kbytes)") or 0) / 1024, 1),
        "user_s": float(grab("User time (seconds)") or 0),
        "system_s": float(grab("System time (seconds)") or 0)}


def run_import(name: str, extract: Path, args: list[str]) -> dict:
    db = DATA / f"bench-{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    tmp = DATA / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    command = [str(ROOT / ".venv" / "bin" / "horeca"), "--db", str(db), "register", "import",
               str(extract), *args, "--tmp-dir", str(tmp)]
    shown = "horeca --db " + " ".join(
        str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c for c in command[2:])
    print(f"[{name}] {shown}", flush=True)
    proc = subprocess.run(["/usr/bin/time", "-v", *command], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, "COLUMNS": "100"})
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"[{name}] import failed with status {proc.returncode}")
    figures = _time_v(proc.stderr)
    with sqlite3.connect(db) as conn:
        counts = json.loads(conn.execute(
            "SELECT counts FROM register_snapshots WHERE status = 'active'").fetchone()[0])
    summary = [line for line in proc.stderr.splitlines()
               if line.startswith(("register snapshot", "  "))
               and not line.startswith("  Command")][:6]
    result = {"command": shown, **figures,
              "units": counts["units"], "horeca_units": counts["horeca_units"],
              "activity_rows_staged": counts.get("activity_rows"),
              "phase_seconds": counts.get("phase_seconds"),
              "phase_cpu_seconds": counts.get("phase_cpu_seconds"),
              "target": TARGETS[name], "summary": summary}
    target = TARGETS[name]
    result["met"] = figures["wall_s"] <= target["seconds"] and (
        "peak_mb" not in target or figures["peak_mb"] <= target["peak_mb"])
    result["store_mb"] = round(sum(Path(f"{db}{suffix}").stat().st_size
                                   for suffix in ("", "-wal")
                                   if Path(f"{db}{suffix}").exists()) / 1e6, 1)
    print(json.dumps(result, indent=2), flush=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return result


def compare_readers(activity: Path, lines: int = 5_000_000) -> dict:
    """Seconds to filter the first `lines` rows of activity.csv down to ~10 % of entities:
    the importer's raw-line key filter vs the csv module vs pandas' chunked reader."""
    import csv
    import itertools

    import pandas as pd

    from horeca.register.reader import KeyFilter, entity_digits

    with open(activity, "rb") as f:
        next(f)
        entities = sorted({line[1:line.index(b'"', 1)].decode()
                           for line in itertools.islice(f, lines)})
    keys = KeyFilter.of(entity_digits(e) for e in entities[::10])
    timings: dict[str, float] = {}

    started = time.perf_counter()
    with open(activity, "rb", buffering=1 << 20) as f:
        next(f)
        kept_raw = sum(1 for line in itertools.islice(f, lines) if line[1:14] in keys.fast)
    timings["raw key filter (importer)"] = time.perf_counter() - started

    started = time.perf_counter()
    with open(activity, encoding="utf-8", newline="", buffering=1 << 20) as f:
        reader = csv.reader(f)
        next(reader)
        kept_csv = sum(1 for row in itertools.islice(reader, lines)
                       if entity_digits(row[0]) in keys.digits)
    timings["csv.reader"] = time.perf_counter() - started

    started = time.perf_counter()
    kept_pd = 0
    for chunk in pd.read_csv(activity, usecols=[0, 2, 3, 4], dtype=str, nrows=lines,
                             chunksize=1_000_000):
        numbers = chunk["EntityNumber"].str.replace(".", "", regex=False)
        kept_pd += int(numbers.isin(keys.digits).sum())
    timings["pandas read_csv(chunksize, usecols)"] = time.perf_counter() - started
    assert kept_raw == kept_csv == kept_pd, (kept_raw, kept_csv, kept_pd)
    result = {"lines": lines, "kept": kept_raw,
              "seconds": {k: round(v, 2) for k, v in timings.items()}}
    print(json.dumps(result, indent=2), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA / "kbo-national",
                        help="national extract folder (generated there when missing)")
    parser.add_argument("--only", choices=["readers", "region", "national"], default=None)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args(argv)
    extract: Path = args.data
    report: dict = {"machine": {"python": platform.python_version(),
                                "cpus": os.cpu_count(), "platform": platform.platform()}}
    if args.regenerate and extract.exists():
        shutil.rmtree(extract)
    if not (extract / "activity.csv").exists() or not (extract / "meta.csv").stat().st_size:
        report["generate_s"] = round(generate(extract), 1)
    report["extract"] = extract_facts(extract)
    report["runs"] = {}
    if args.only in (None, "readers"):
        report["readers"] = compare_readers(extract / "activity.csv")
    if args.only in (None, "region"):
        report["runs"]["region"] = run_import("region", extract, ["--region", "brussels"])
    if args.only in (None, "national"):
        report["runs"]["national"] = run_import("national", extract, [])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "register.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update({k: v for k, v in report.items() if k != "runs"})
    previous.setdefault("runs", {}).update(report["runs"])
    out.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"results in {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
