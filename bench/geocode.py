"""Benchmark: offline geocoding throughput and the online path's request rate.

    .venv/bin/python -m bench.geocode                   # everything (about a minute)
    .venv/bin/python -m bench.geocode --only offline    # demo + BeST-scale gazetteers
    .venv/bin/python -m bench.geocode --only online     # local Nominatim emulator
    .venv/bin/python -m bench.geocode --listings 200000 --best-streets 600
    .venv/bin/python -m bench.geocode --only offline --workers 1   # one process only

Offline, two gazetteers:

* `demo`: the committed demo gazetteer (fixtures/demo/gazetteer.csv, street segments);
* `best`: a synthetic BeST Address file (EPSG:4326_lat, ..., streetname_fr/nl, one row per
  number and box) with `--best-streets` streets in each of 19 Brussels postcodes,
  imported with `import_best` (the import rate is reported too; it includes storing
  the gazetteer's index, which runs then read).

For each, `--listings` listings are written to a fresh store with the address variants
platforms produce (French or Dutch name, abbreviations, capitals, boxes, ranges, a typo,
no number, no postcode) and `geocode_pending` runs end to end: read, dedupe, cache
lookup, index build, matching, writes. Reported: entities and distinct addresses per
second for the whole run, matching alone (index prebuilt), precision reached, distance
to the true position by variant, and the re-runs (nothing pending; all from the cache).
Each gazetteer's case runs in a fresh interpreter, as a `horeca geocode` command does.
Rates are given per CPU second as well as per wall second: on a machine shared with other
work, wall time measures the neighbours as much as the code. CPU counts both processes
when the run matched in a second one (`matching_process`: `--workers 0`, the default,
uses one when a core is idle; 1 never; 2 always).

Online: `geocode_pending --online` against the local emulator (geocode/emulator.py) with
`min_delay_seconds = 1.0`, the public server's floor, on addresses the gazetteer cannot
place (each twice, spelt differently); reported: requests, the sustained rate, the
smallest gap between two sends (client clock) and two arrivals (server clock), and the
requests of a re-run.

Results go to bench/results/geocode.json; docs/benchmarks.md ("Geocoding") quotes them.
Target (issue 6): offline >= 20,000 addresses/s; online <= 1 request/s, 0 on a re-run.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench import reference_loop_seconds
from horeca import bulk
from horeca.geocode.config import GeocodeConfig
from horeca.geocode.emulator import serve_nominatim
from horeca.geocode.gazetteer import load_areas, load_gazetteer, needed_postcodes
from horeca.geocode.geo import haversine_m
from horeca.geocode.loaders import import_best, import_segments
from horeca.geocode.online import OnlineGeocoder
from horeca.geocode.query import listing_query
from horeca.geocode.run import geocode_pending
from horeca.store import open_db, upsert

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEMO_GAZETTEER = ROOT / "fixtures" / "demo" / "gazetteer.csv"
TARGET_PER_SECOND = 20_000

POSTCODES = {"1000": ("Bruxelles", "Brussel"), "1020": ("Bruxelles", "Brussel"),
             "1030": ("Schaerbeek", "Schaarbeek"), "1040": ("Etterbeek", "Etterbeek"),
             "1050": ("Ixelles", "Elsene"), "1060": ("Saint-Gilles", "Sint-Gillis"),
             "1070": ("Anderlecht", "Anderlecht"), "1080": ("Molenbeek-Saint-Jean",
                                                            "Sint-Jans-Molenbeek"),
             "1081": ("Koekelberg", "Koekelberg"), "1082": ("Berchem-Sainte-Agathe",
                                                           "Sint-Agatha-Berchem"),
             "1083": ("Ganshoren", "Ganshoren"), "1090": ("Jette", "Jette"),
             "1120": ("Bruxelles", "Brussel"), "1140": ("Evere", "Evere"),
             "1150": ("Woluwe-Saint-Pierre", "Sint-Pieters-Woluwe"),
             "1160": ("Auderghem", "Oudergem"), "1170": ("Watermael-Boitsfort",
                                                        "Watermaal-Bosvoorde"),
             "1180": ("Uccle", "Ukkel"), "1190": ("Forest", "Vorst")}
FR_TYPES = [("Rue", "straat"), ("Avenue", "laan"), ("Boulevard", "laan"),
            ("Chaussée de", "steenweg"), ("Place", "plein")]
ABBREVIATIONS = {"Avenue": "Av.", "Boulevard": "Bd", "Chaussée": "Chau.", "Place": "Pl.",
                 "Rue": "R."}
SYLLABLES = ["ber", "lan", "mor", "tel", "vin", "sar", "dor", "kel", "mon", "rif", "gal", "pen",
             "tor", "lis", "ven", "cor", "bal", "nes", "quin", "ross"]


class Truth:
    """A street with a function giving the true position of a number on it."""

    def __init__(self, fr: str, nl: str, postcode: str, municipality: str, numbers: range,
                 position: Any) -> None:
        self.fr, self.nl, self.postcode, self.municipality = fr, nl, postcode, municipality
        self.numbers, self.position = numbers, position


# ---------------------------------------------------------------- gazetteers

def demo_truths() -> list[Truth]:
    truths = []
    with DEMO_GAZETTEER.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            lo, hi = int(row["house_from"]), int(row["house_to"])
            a = (float(row["lat_start"]), float(row["lon_start"]))
            b = (float(row["lat_end"]), float(row["lon_end"]))

            def position(n: int, lo: int = lo, hi: int = hi, a=a, b=b) -> tuple[float, float]:
                t = 0.5 if hi == lo else (n - lo) / (hi - lo)
                return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)

            truths.append(Truth(row["street_fr"], row["street_nl"], row["postcode"],
                                row["municipality_fr"], range(lo, hi + 1), position))
    return truths


def _street_name(rng: random.Random, used: set[str]) -> tuple[str, str]:
    while True:
        core = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        fr_type, nl_type = rng.choice(FR_TYPES)
        fr = f"{fr_type} {core}"
        nl = f"{core}{'se' if fr_type.startswith('Chaussée') else ''}{nl_type}"
        if fr not in used:
            used.add(fr)
            return fr, nl


def write_synthetic_best(path: Path, streets_per_postcode: int, seed: int = 11
                         ) -> tuple[list[Truth], int]:
    """A BeST-format CSV: every number of each street (both sides), some with boxes."""
    rng = random.Random(seed)
    truths: list[Truth] = []
    rows = 0
    header = ["EPSG:31370_x", "EPSG:31370_y", "EPSG:4326_lat", "EPSG:4326_lon", "address_id",
              "box_number", "house_number", "municipality_id", "municipality_name_de",
              "municipality_name_fr", "municipality_name_nl", "postcode", "postname_fr",
              "postname_nl", "street_id", "streetname_de", "streetname_fr", "streetname_nl",
              "region_code", "status"]
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)
        for postcode, (mfr, mnl) in POSTCODES.items():
            used: set[str] = set()
            for _ in range(streets_per_postcode):
                fr, nl = _street_name(rng, used)
                last = rng.randint(20, 120)
                lat0, lon0 = rng.uniform(50.78, 50.90), rng.uniform(4.28, 4.45)
                dlat, dlon = rng.uniform(-1, 1) * 1e-4, rng.uniform(-1, 1) * 1e-4
                # Odd numbers on one side, even on the other, 12 m apart.
                points = {n: (lat0 + dlat * n / 2 + (0.0001 if n % 2 else 0.0),
                              lon0 + dlon * n / 2) for n in range(1, last + 1)}
                # Some numbers do not exist (gaps to interpolate over).
                missing = set(rng.sample(range(1, last + 1), k=last // 10))
                for n, (lat, lon) in points.items():
                    if n in missing:
                        continue
                    for box in ([""] if rng.random() > 0.2 else ["", "1", "2", "3"]):
                        out.writerow(["0", "0", f"{lat:.7f}", f"{lon:.7f}", str(rows), box,
                                      str(n), "21000", "", mfr, mnl, postcode, "", "", "1",
                                      "", fr, nl, "BE-BRU", "current"])
                        rows += 1
                truths.append(Truth(fr, nl, postcode, mfr, range(1, last + 1),
                                    lambda n, p=points: p[n]))
    return truths, rows


# ---------------------------------------------------------------- listings

def _typo(name: str, rng: random.Random) -> str:
    words = name.split()
    i = max(range(len(words)), key=lambda k: len(words[k]))
    w = words[i]
    if len(w) < 6:
        return name
    j = rng.randint(1, len(w) - 3)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def _abbreviate(fr: str) -> str:
    first, _, rest = fr.partition(" ")
    return f"{ABBREVIATIONS.get(first, first)} {rest}"


VARIANTS = [("fr", 0.35), ("nl", 0.20), ("abbreviated", 0.12), ("capitals", 0.05),
            ("box", 0.10), ("range", 0.05), ("typo", 0.05), ("no_number", 0.04),
            ("no_postcode", 0.04)]


def make_listings(truths: list[Truth], n: int, seed: int = 5
                  ) -> tuple[list[dict[str, Any]], dict[str, tuple[str, Truth, int | None]]]:
    rng = random.Random(seed)
    names, weights = zip(*VARIANTS, strict=True)
    rows, truth_of = [], {}
    for i in range(n):
        t = rng.choice(truths)
        number = rng.choice(t.numbers)
        variant = rng.choices(names, weights)[0]
        street, house, postcode, locality = t.fr, str(number), t.postcode, None
        if variant == "nl":
            street, locality = t.nl, "Brussel"
        elif variant == "abbreviated":
            street = _abbreviate(t.fr)
        elif variant == "capitals":
            street = t.fr.upper()
        elif variant == "box":
            house = f"{number} bte {rng.randint(1, 9)}"
        elif variant == "range" and number + 2 in t.numbers:
            house = f"{number}-{number + 2}"
        elif variant == "typo":
            street = _typo(t.fr, rng)
        elif variant == "no_number":
            house, number = "", None
        elif variant == "no_postcode":
            postcode, locality = None, t.municipality
        lid = f"bench:{i}"
        rows.append({"id": lid, "source": "bench", "source_id": str(i), "street": street,
                     "house_number": house or None, "postcode": postcode,
                     "locality": locality, "lat": None, "lon": None})
        truth_of[lid] = (variant, t, number)
    return rows, truth_of


# ---------------------------------------------------------------- runs

def _store(tmp: Path, name: str):
    path = tmp / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return open_db(path)


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def offline_case(name: str, db, truths: list[Truth], listings: int, workers: int,
                 extra: dict[str, Any]) -> dict[str, Any]:
    rows, truth_of = make_listings(truths, listings)
    for i in range(0, len(rows), 20_000):
        upsert(db, "listings", rows[i:i + 20_000], key="id")
    config = GeocodeConfig(workers=workers)
    load_at_start = os.getloadavg()[0]
    started, cpu, child = time.perf_counter(), time.process_time(), _children_cpu()
    with bulk.collector_paused():   # as `geocode_pending` runs, for the timings below
        summary = geocode_pending(db, config=config)
        first_s, first_cpu = time.perf_counter() - started, time.process_time() - cpu
        # The matching process's CPU, if the run used one (it has ended by now).
        match_process_cpu = _children_cpu() - child
        both_cpu = first_cpu + match_process_cpu

        # The index: built from the tables (what `geocode import-*` stores), and read back.
        queries = {q.key: q for q in (listing_query(r) for r in rows) if q is not None}
        postcodes = needed_postcodes(db, queries.values())
        cpu = time.process_time()
        load_gazetteer(db, postcodes)
        index_build_cpu = time.process_time() - cpu
        cpu = time.process_time()
        gazetteer = load_areas(db, postcodes)
        index_read_cpu = time.process_time() - cpu
        # Matching alone, against the loaded index.
        cpu = time.process_time()
        for q in queries.values():
            gazetteer.match(q)
        match_cpu = time.process_time() - cpu

    started = time.perf_counter()
    rerun = geocode_pending(db, config=config)
    rerun_s = time.perf_counter() - started
    started = time.perf_counter()
    forced = geocode_pending(db, config=config, redo_all=True)
    forced_s = time.perf_counter() - started

    errors: dict[str, list[float]] = defaultdict(list)
    reached: dict[str, Counter[str]] = defaultdict(Counter)
    for eid, lat, lon, precision in db.conn.execute(
            "SELECT entity_id, lat, lon, precision FROM entity_geocodes"):
        variant, truth, number = truth_of[eid]
        reached[variant][precision or "none"] += 1
        if lat is not None and number is not None and precision == "house_number":
            errors[variant].append(haversine_m(lat, lon, *truth.position(number)))
    accuracy = {v: {"house_number_share": round(reached[v]["house_number"]
                                                / max(1, sum(reached[v].values())), 3),
                    "median_error_m": round(statistics.median(e), 2) if e else None,
                    "within_25m": round(sum(x <= 25 for x in e) / len(e), 3) if e else None}
                for v, e in sorted(errors.items())}
    for v in reached:
        accuracy.setdefault(v, {"house_number_share": 0.0})
        accuracy[v]["precision"] = dict(reached[v])
    result = {
        "gazetteer": name, **extra, "listings": listings, "distinct_addresses": summary.queries,
        "workers_setting": workers, "load_average_at_start": round(load_at_start, 2),
        "matching_process": match_process_cpu > 0,
        "first_run_wall_s": round(first_s, 2), "first_run_cpu_s": round(first_cpu, 2),
        "first_run_matching_process_cpu_s": round(match_process_cpu, 2),
        "entities_per_s_wall": round(listings / first_s),
        "entities_per_cpu_s": round(listings / both_cpu),
        "distinct_addresses_per_cpu_s": round(summary.queries / both_cpu),
        "index_build_cpu_s": round(index_build_cpu, 2),
        "index_read_cpu_s": round(index_read_cpu, 2), "match_only_cpu_s": round(match_cpu, 2),
        "match_only_per_cpu_s": round(len(queries) / match_cpu),
        "rerun_pending": rerun.pending, "rerun_s": round(rerun_s, 2),
        "forced_rerun_cache_hits": forced.cache_hits, "forced_rerun_s": round(forced_s, 2),
        "by_precision": dict(summary.by_precision), "accuracy_by_variant": accuracy,
        "meets_target_cpu": listings / both_cpu >= TARGET_PER_SECOND,
        "meets_target_wall": listings / first_s >= TARGET_PER_SECOND,
    }
    print(json.dumps(result, indent=2), flush=True)
    return result


def demo_case(tmp: Path, listings: int, workers: int) -> dict[str, Any]:
    db = _store(tmp, "demo")
    import_segments(db, DEMO_GAZETTEER)
    return offline_case("demo (fixtures/demo/gazetteer.csv, segments)", db, demo_truths(),
                        listings, workers, {"gazetteer_rows": db["gazetteer_streets"].count})


def best_case(tmp: Path, listings: int, best_streets: int, workers: int) -> dict[str, Any]:
    db = _store(tmp, "best")
    csv_path = tmp / "best-synthetic.csv"
    truths, csv_rows = write_synthetic_best(csv_path, best_streets)
    cpu = time.process_time()
    imported = import_best(db, csv_path)
    import_s = time.process_time() - cpu
    return offline_case(
        "synthetic BeST Address (points)", db, truths, listings, workers,
        {"best_csv_rows": csv_rows, "best_points_kept": imported.rows_kept,
         "streets": len(truths), "import_cpu_s": round(import_s, 2),
         "import_rows_per_cpu_s": round(csv_rows / import_s)})


def in_fresh_process(case: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run one case in a new interpreter, as a `horeca geocode` command runs: not after the
    other case, whose heap and memoised normalisations would weigh on it."""
    # A process of its own rather than a pool's (daemonic) worker, which could not start
    # the run's matching process.
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_run_case, args=(send, case, *args))
    process.start()
    send.close()
    result = receive.recv()
    process.join()
    return result


def _run_case(send: Any, case: Callable[..., dict[str, Any]], *args: Any) -> None:
    send.send(case(*args))


def bench_offline(tmp: Path, listings: int, best_streets: int,
                  workers: int) -> list[dict[str, Any]]:
    return [in_fresh_process(demo_case, tmp, listings, workers),
            in_fresh_process(best_case, tmp, listings, best_streets, workers)]


def bench_online(tmp: Path, queries: int = 12) -> dict[str, Any]:
    db = _store(tmp, "online")
    import_segments(db, DEMO_GAZETTEER)
    rows = [{"id": f"o:{i}", "source": "o", "source_id": str(i),
             "street": f"Rue Absente {i}", "house_number": "1", "postcode": "1000",
             "lat": None, "lon": None} for i in range(queries)]
    # Duplicates in other spellings: deduplicated before anything is sent.
    rows += [{**r, "id": f"o:dup{i}", "source_id": f"dup{i}",
              "street": r["street"].upper(), "house_number": "1 bte 2"}
             for i, r in enumerate(rows)]
    upsert(db, "listings", rows, key="id")
    with serve_nominatim() as (domain, state):
        config = GeocodeConfig(online=True, domain=domain, scheme="http",
                               user_agent="horeca-bench/0.1 (bench@example.org)",
                               min_delay_seconds=1.0)
        geocoder = OnlineGeocoder(config)
        started = time.perf_counter()
        first = geocode_pending(db, config=config, online_geocoder=geocoder)
        first_s = time.perf_counter() - started
        sent = list(geocoder.request_times)          # when our client sent each request
        arrived = [r.at for r in state.requests]     # when the server saw each one
        rerun = geocode_pending(db, config=config, redo_all=True, online_geocoder=geocoder)
        seen_on_rerun = len(state.requests) - len(arrived)
    sent_gaps = [b - a for a, b in pairwise(sent)]
    arrival_gaps = [b - a for a, b in pairwise(arrived)]
    span = sent[-1] - sent[0] if len(sent) > 1 else 0.0
    result = {
        "listings": len(rows), "distinct_addresses": first.queries,
        "requests": first.online_requests, "elapsed_s": round(first_s, 2),
        "sustained_requests_per_s": round((len(sent) - 1) / span, 3) if span else None,
        "min_gap_between_sends_s": round(min(sent_gaps), 4) if sent_gaps else None,
        "min_gap_between_arrivals_s": round(min(arrival_gaps), 4) if arrival_gaps else None,
        "rerun_requests": rerun.online_requests,
        "rerun_requests_seen_by_server": seen_on_rerun,
        "by_precision": dict(first.by_precision),
    }
    print(json.dumps(result, indent=2), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.geocode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["offline", "online"])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--best-streets", type=int, default=200,
                        help="streets per postcode in the synthetic BeST file (19 postcodes)")
    parser.add_argument("--workers", type=int, default=0, choices=[0, 1, 2],
                        help="offline matching processes, as [geocode] workers (0: a "
                             "second one when a core is idle)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(),
                    "reference_loop_s": reference_loop_seconds()},
        "command": "python -m bench.geocode " + " ".join(argv or sys.argv[1:]),
    }
    with tempfile.TemporaryDirectory(prefix="horeca-bench-geocode-") as tmp:
        if args.only in (None, "offline"):
            results["offline"] = bench_offline(Path(tmp), args.listings, args.best_streets,
                                               args.workers)
        if args.only in (None, "online"):
            results["online"] = bench_online(Path(tmp))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "geocode.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update(results)
    out.write_text(json.dumps(previous, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
