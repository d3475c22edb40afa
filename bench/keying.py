"""Benchmark: `horeca key` against a region-sized and a national-sized register.

    .venv/bin/python -m bench.keying                    # both cases (builds the stores once)
    .venv/bin/python -m bench.keying --only region      # 7,500 listings vs 150,000 units
    .venv/bin/python -m bench.keying --only national    # 10,000 listings vs 1.7 M units
    .venv/bin/python -m bench.keying --rebuild          # make the stores again

Each case builds a store in bench/data/ (git-ignored) once: the demo-world generator makes a
Brussels world (listings with their ground truth, and its register), and synthetic filler
units bring the register to size: more Brussels units for the region case, the rest of the
country for the national one (names, streets, phones and coordinates drawn from the same
kind of vocabulary, so common words are common and blocking has real work to do). Then
`horeca register index --rebuild` writes keying's index of the register from scratch (what
`register import` adds to an import), and `horeca key` runs twice: the first run on the
snapshot (it prepares its candidate units and keeps them) and a later one (the headline
figure: the usual re-run after a crawl). Each runs as its own process under
/usr/bin/time -v (wall time and peak resident memory as a user would see them), and
`horeca evaluate` measures quality on the world's listings. Results go to
bench/results/keying.json; docs/benchmarks.md ("Keying") quotes them.

Targets (issue 7): region <= 10 s; national <= 60 s with peak memory <= 2 GB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import compile_package, reference_loop_seconds

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
HORECA = str(ROOT / ".venv" / "bin" / "horeca")
SEED = 11

CASES: dict[str, dict[str, Any]] = {
    # world: the generator's Brussels (listings + truth + its register); filler: units
    # added to reach the register size; listings: how many the world's listings are cut to.
    "region": {"world_units": 40_000, "horeca_units": 6_800, "streets_per_postcode": 28,
               "register_units": 150_000, "listings": 7_500, "snapshot_region": "brussels",
               "target": {"seconds": 10}},
    "national": {"world_units": 40_000, "horeca_units": 9_000, "streets_per_postcode": 28,
                 "register_units": 1_700_000, "listings": 10_000,
                 "brussels_units": 150_000, "snapshot_region": "belgium",
                 "target": {"seconds": 60, "peak_mb": 2048}},
}
SOURCES = ("gustoreviews", "tablebook", "staybrussels", "overpass", "eatlocal", "nomine")
BBOX_BRUSSELS = (50.7630, 4.2435, 50.9136, 4.4826)
BBOX_BELGIUM = (49.55, 2.60, 51.45, 6.30)
UNIT_COLUMNS = ("snapshot_id", "unit_id", "enterprise_number", "establishment_number", "names",
                "street_fr", "street_nl", "house_number", "box", "postcode", "municipality_fr",
                "municipality_nl", "seat_street_fr", "seat_street_nl", "seat_house_number",
                "seat_postcode", "phones", "websites", "emails", "nace", "horeca",
                "natural_person", "lat", "lon")


# ----------------------------------------------------------------------------- filler


class Filler:
    """Synthetic register units, streamed (never all in memory)."""

    def __init__(self, seed: int) -> None:
        import horeca.fixtures.world_data as wd

        self.rng = random.Random(seed)
        syllables = ["ba", "be", "bo", "da", "de", "di", "do", "ka", "ke", "ko", "la", "le",
                     "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "no", "ra", "re", "ri",
                     "ro", "sa", "se", "so", "ta", "te", "to", "va", "ve", "vo", "ze", "zo",
                     "ber", "man", "ens", "aert", "ckx", "mans", "ssen", "ier", "ault"]
        made = {w.lower() for w in wd.LAST_NAMES}
        words: list[str] = list(wd.LAST_NAMES)
        while len(words) < 30_000:  # surnames and coined words: most are rare, as in life
            w = "".join(self.rng.choice(syllables) for _ in range(self.rng.randint(2, 4)))
            if w not in made:
                made.add(w)
                words.append(w.capitalize())
        self.words = words
        self.first = list(wd.FIRST_NAMES)
        self.suffix = [*wd.OTHER_NAME_SUFFIX, "Consult", "Immo", "Bouw", "Transport",
                       "Design", "Coiffure", "Boulangerie"]
        self.horeca_kinds = ["Café", "Brasserie", "Snack", "Restaurant", "Pizzeria", "Bar",
                             "Friterie", "Hotel", "Taverne", "Bistro"]
        self.forms = ["SRL", "BV", "SA", "NV", "SPRL", "BVBA", "", "", ""]
        self.n = 0

    def _name(self) -> tuple[list[dict[str, str]], bool, bool]:
        r = self.rng
        if r.random() < 0.3:  # a natural person
            return [{"name": f"{r.choice(self.words)}, {r.choice(self.first)}",
                     "type": "legal", "lang": "", "level": "enterprise"}], True, False
        horeca = r.random() < 0.08
        if horeca:
            text = f"{r.choice(self.horeca_kinds)} {r.choice(self.words)}"
        else:
            text = f"{r.choice(self.words)} {r.choice(self.suffix)}"
        names = [{"name": f"{text} {r.choice(self.forms)}".strip(), "type": "legal",
                  "lang": "fr", "level": "enterprise"}]
        if r.random() < 0.2:
            names.append({"name": f"{r.choice(self.words)} {r.choice(self.words)}",
                          "type": "commercial", "lang": "", "level": "establishment"})
        return names, False, horeca

    def units(self, count: int, *, postcodes: list[str], bbox: tuple[float, ...],
              prefix: str) -> Iterator[tuple]:
        r = self.rng
        south, west, north, east = bbox
        streets_per_pc = 80
        for k in range(count):
            self.n += 1
            pc = postcodes[k % len(postcodes)]
            s = r.randrange(streets_per_pc)
            word = self.words[(zlib.crc32(f'{pc}/{s}'.encode())) % len(self.words)]
            street_fr, street_nl = f"Rue {word}", f"{word}straat"
            names, natural, horeca = self._name()
            # positions cluster around each postcode's own centre
            h = (zlib.crc32(pc.encode()) & 0xFFFF) / 0xFFFF
            clat = south + (north - south) * h
            clon = west + (east - west) * ((zlib.crc32(pc.encode() + b"x") & 0xFFFF) / 0xFFFF)
            lat = min(north, max(south, clat + r.gauss(0, 0.01)))
            lon = min(east, max(west, clon + r.gauss(0, 0.015)))
            phones = [f"+32{r.randint(10_000_000, 99_999_999)}"] if r.random() < 0.25 else []
            web = [f"www.{names[0]['name'].split()[0].lower()}{self.n}.be"] \
                if r.random() < 0.05 else []
            nace = "56101" if horeca else r.choice(["47110", "62010", "69201", "43210"])
            unit_id = f"{prefix}{self.n:09d}"
            yield (unit_id, f"0{self.n:09d}", unit_id, json.dumps(names, ensure_ascii=False),
                   street_fr, street_nl, str(r.randint(1, 250)), None, pc, word, word,
                   None, None, None, None,
                   json.dumps(phones) if phones else None, json.dumps(web) if web else None,
                   None, json.dumps([{"code": nace, "version": "2008",
                                      "classification": "MAIN"}]),
                   int(horeca), int(natural), round(lat, 6), round(lon, 6))


# ----------------------------------------------------------------------------- store


def _world(case: dict[str, Any]):
    import horeca.fixtures.world_data as wd
    from horeca.fixtures.generate_demo import generate

    saved = wd.GENERIC_PER_POSTCODE
    wd.GENERIC_PER_POSTCODE = case["streets_per_postcode"]
    try:
        return generate(None, seed=SEED, units=case["world_units"],
                        horeca_units=case["horeca_units"])
    finally:
        wd.GENERIC_PER_POSTCODE = saved


def build_store(name: str, case: dict[str, Any]) -> dict[str, Any]:
    """A store with listings, one active register snapshot and (for truth) a CSV."""
    from horeca.keying.synthetic import listings_from_world, units_from_world
    from horeca.store import open_db
    from horeca.store.runs import now_iso

    db_path, truth_path = DATA / f"keying-{name}.db", DATA / f"keying-{name}-truth.csv"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    started = time.monotonic()
    world = _world(case)
    listings = listings_from_world(world)
    random.Random(SEED).shuffle(listings)
    listings = sorted(listings[:case["listings"]], key=lambda r: r["id"])
    db = open_db(db_path)
    now = now_iso()
    cur = db.conn.execute(
        "INSERT INTO register_snapshots (region, format, imported_at, status) "
        "VALUES (?, 'kbo', ?, 'active')", [case["snapshot_region"], now])
    snapshot = cur.lastrowid
    placeholders = ",".join("?" for _ in UNIT_COLUMNS)
    insert = f"INSERT INTO register_units ({','.join(UNIT_COLUMNS)}) VALUES ({placeholders})"
    world_units = units_from_world(world)
    rows = [(snapshot, *(u.get(c) for c in UNIT_COLUMNS[1:])) for u in world_units]
    with db.conn:
        db.conn.executemany(insert, rows)
    filler = Filler(SEED)
    import horeca.fixtures.world_data as wd

    brussels = list(wd.MUNICIPALITIES)
    in_brussels = case.get("brussels_units", case["register_units"]) - len(world_units)
    batches = [(max(0, in_brussels), brussels, BBOX_BRUSSELS, "8")]
    if case["snapshot_region"] == "belgium":
        others = sorted({f"{pc}" for pc in range(1300, 9999, 7)})
        rest = case["register_units"] - len(world_units) - max(0, in_brussels)
        batches.append((rest, others, BBOX_BELGIUM, "9"))
    for count, postcodes, bbox, prefix in batches:
        stream = filler.units(count, postcodes=postcodes, bbox=bbox, prefix=prefix)
        while True:
            chunk = [(snapshot, *u) for _, u in zip(range(50_000), stream, strict=False)]
            if not chunk:
                break
            with db.conn:
                db.conn.executemany(insert, chunk)
    columns = ("id", "source", "source_id", "url", "name", "alt_names", "address_raw", "street",
               "house_number", "box", "postcode", "locality", "country", "phone_raw", "phone",
               "website", "lat", "lon", "category", "review_count", "rating", "price_range",
               "rooms", "opening_hours", "legal_name", "vat")
    with db.conn:
        db.conn.executemany(
            f"INSERT INTO listings ({','.join(columns)}, region, first_seen, last_seen) "
            f"VALUES ({','.join('?' for _ in columns)}, 'brussels', ?, ?)",
            [(*(li.get(c) for c in columns), now, now) for li in listings])
    units = db.execute("SELECT count(*) FROM register_units").fetchone()[0]
    db.conn.close()
    keep = {(li["source"], li["source_id"]) for li in listings}
    with open(truth_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(world.truth[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(t for t in world.truth if (t["source"], t["source_id"]) in keep)
    facts = {"listings": len(listings), "register_units": units,
             "world_units": len(world_units), "build_s": round(time.monotonic() - started, 1)}
    (DATA / f"keying-{name}.json").write_text(json.dumps(facts))
    return facts


# ----------------------------------------------------------------------------- measuring


def _time_v(output: str) -> dict[str, float]:
    def grab(label: str) -> str:
        match = re.search(rf"{re.escape(label)}: (.+)", output)
        return match.group(1).strip() if match else ""

    wall = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    parts = [float(p) for p in wall.split(":")] if wall else []
    return {"wall_s": round(sum(p * 60 ** i for i, p in enumerate(reversed(parts))), 2),
            "peak_mb": round(int(grab("Maximum resident set size (kbytes)") or 0) / 1024, 1),
            "user_s": float(grab("User time (seconds)") or 0),
            "system_s": float(grab("System time (seconds)") or 0)}


def _tree_rss_kb(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as fh:
                pages = int(fh.read().split()[1])
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def _run_watched(command: list[str]) -> subprocess.CompletedProcess:
    """Run a command, sampling the resident memory of its whole process tree (the scan's
    worker processes included) every 0.2 s; the peak goes to `tree_peak_mb`."""
    proc = subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "100"})
    peak = 0
    import threading

    out: dict[str, str] = {}

    def drain(name: str, stream) -> None:
        out[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, st)) for n, st in
               (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.2)
    for r in readers:
        r.join()
    done = subprocess.CompletedProcess(command, proc.returncode, out.get("stdout", ""),
                                       out.get("stderr", ""))
    done.tree_peak_kb = peak  # type: ignore[attr-defined]
    return done


def measure(name: str, case: dict[str, Any], rebuild: bool) -> dict[str, Any]:
    db_path, truth_path = DATA / f"keying-{name}.db", DATA / f"keying-{name}-truth.csv"
    facts_path = DATA / f"keying-{name}.json"
    if rebuild or not db_path.exists() or not facts_path.exists():
        print(f"[{name}] building the store (once)...", flush=True)
        facts = build_store(name, case)
    else:
        facts = json.loads(facts_path.read_text())
    # 1. keying's index of the snapshot, from scratch (what `register import` adds)
    index_cmd = [HORECA, "--db", str(db_path), "register", "index", "--rebuild"]
    print(f"[{name}] horeca register index --rebuild", flush=True)
    proc = _run_watched(["/usr/bin/time", "-v", *index_cmd])
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"[{name}] horeca register index failed ({proc.returncode})")
    index = _time_v(proc.stderr)
    # 2. the first key run on the snapshot (prepares its candidates and keeps them), then
    # 3. a later run (the same listings: the usual re-run after a crawl), the headline
    command = [HORECA, "--db", str(db_path), "key", "--region", "brussels",
               "--snapshot-region", case["snapshot_region"], "--json"]
    shown = " ".join(["horeca", "--db", str(db_path.relative_to(ROOT)), *command[3:]])
    runs = []
    for label in ("first run", "later run"):
        print(f"[{name}] {shown}  ({label})", flush=True)
        load_before = [round(x, 2) for x in os.getloadavg()]
        # this machine's speed drifts from minute to minute: measured around the run
        loop_before = reference_loop_seconds()
        proc = _run_watched(["/usr/bin/time", "-v", *command])
        loop_after = reference_loop_seconds()
        load_after = [round(x, 2) for x in os.getloadavg()]
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"[{name}] horeca key failed with status {proc.returncode}")
        runs.append(proc)
    first = _time_v(runs[0].stderr)
    first["phase_seconds"] = json.loads(runs[0].stdout)["seconds"]
    proc = runs[1]
    figures = _time_v(proc.stderr)
    figures["tree_peak_mb"] = round(proc.tree_peak_kb / 1024, 1)  # type: ignore[attr-defined]
    summary = json.loads(proc.stdout)
    quality = json.loads(subprocess.run(
        [HORECA, "--db", str(db_path), "evaluate", "--truth", str(truth_path), "--json"],
        cwd=ROOT, text=True, capture_output=True, check=True).stdout)
    seconds = summary["seconds"]
    pairs, random_pairs = summary["pairs"], summary.get("random_pairs") or 0
    compared_s = max(1e-9, seconds.get("compare_score_assign", 0))
    result = {
        "command": shown, **figures, **facts,
        "index": {"command": "horeca register index --rebuild", **index},
        "first_run": first,
        "places": summary["places"], "units_scanned": summary["units_scanned"],
        "pairs": pairs, "random_pairs": random_pairs, "phase_seconds": seconds,
        "phase_cpu_seconds": summary.get("cpu_seconds", {}),
        "comparisons_per_second": round((pairs + random_pairs) / compared_s),
        "units_scanned_per_second": round(summary["units_scanned"] / max(1e-9,
                                                                      seconds["block"])),
        "outcomes": {k: summary[k] for k in ("match", "doubt", "no-match")},
        "quality": {k: quality[k] for k in ("match_precision", "match_recall", "doubt_share",
                                            "no_match_precision", "blocking_recall")},
        "target": case["target"],
        "load_average": {"before": load_before, "after": load_after},
        "reference_loop_s": {"before": loop_before, "after": loop_after}}
    target = case["target"]
    result["met"] = figures["wall_s"] <= target["seconds"] and (
        "peak_mb" not in target or max(figures["peak_mb"], figures["tree_peak_mb"])
        <= target["peak_mb"])
    print(json.dumps(result, indent=2), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=list(CASES))
    parser.add_argument("--rebuild", action="store_true", help="build the stores again")
    args = parser.parse_args(argv)
    DATA.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    compile_package()
    out_path = RESULTS / "keying.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "load_average": [round(x, 2) for x in os.getloadavg()],
                          "platform": platform.platform(),
                          "reference_loop_s": reference_loop_seconds()}
    # per case too: other components' benchmarks and tests share these two CPUs
    for name, case in CASES.items():
        if args.only and name != args.only:
            continue
        results[name] = measure(name, case, args.rebuild)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results in {out_path.relative_to(ROOT)}")
    return 0 if all(results[n].get("met") for n in CASES if n in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
