"""Benchmark: crawl throughput on the fixture sites, end to end, with throttling off.

    .venv/bin/python -m bench.crawl                          # 2 sizes x parallel 1, 2
    .venv/bin/python -m bench.crawl --sizes 1500 --parallel 2

For each size, a demo world is generated with `horeca.fixtures.generate_demo`
(`--horeca-units` N; 1500 is the committed demo, about 1,600 listings on the four
approved sites) into bench/data/, its sites are served by `horeca.fixtures.server` (files
read before the clock starts: the server shares the cores with the crawl), and
`crawl_sources` crawls the four approved sources of fixtures/demo/sources.toml exactly as
`horeca crawl` does (legal-gate preflight, `--parallel` worker processes sharing the
sources, robots.txt and TDM checks, minimisation, every item pipeline, batched upserts
into a fresh SQLite store), with AutoThrottle off and the sources' request-rate cap
raised to 1,000,000/s. The gate still sends one request at a time per site.

Reported per run: listings kept per wall second for the whole call (worker start-up
and preflight included), per CPU second (crawl processes + this process, which also runs
the fixture server), the crawl processes' CPU per page on their own, pages per second
per source inside its crawl, the peak RSS of a crawl process, and the load average
before and after (the machine may be shared). Each measurement runs in a fresh process
so the peak RSS is its own.

Results go to bench/results/crawl.json; docs/benchmarks.md ("Crawl") quotes them.
Target (issue 4): >= 500 listings/s end to end; memory flat in the number of pages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import reference_loop_seconds

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
DEMO_SOURCES = ROOT / "fixtures" / "demo" / "sources.toml"
APPROVED = ["gustoreviews", "tablebook", "staybrussels", "overpass"]
TARGET_PER_SECOND = 500


def world_dir(horeca_units: int) -> Path:
    """The generated world of this size (generated once, then reused)."""
    from horeca.fixtures.generate_demo import generate

    out = DATA / f"crawl-world-{horeca_units}"
    if not (out / "sites").is_dir():
        generate(out, horeca_units=horeca_units, units=max(5000, round(horeca_units * 10 / 3)))
    return out


def bench_sources(out: Path) -> Path:
    """The demo's sources config with the rate cap lifted (throttling off)."""
    text = DEMO_SOURCES.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^max_requests_per_second = .*$", "max_requests_per_second = 1000000.0",
                  text)
    path = out / "sources-bench.toml"
    path.write_text(text, encoding="utf-8")
    return path


class WorkerPeakRss:
    """The largest peak RSS (VmHWM) among this process's crawl workers, read from /proc
    every 0.2 s while they run. Not `getrusage(RUSAGE_CHILDREN).ru_maxrss`: Linux carries
    the parent's own high-water mark into a child across exec, and this process holds
    the preloaded fixture sites (about 100 MB for the 4x world)."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> WorkerPeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        me = str(os.getpid())
        while not self._stop.wait(0.2):
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    status = (proc / "status").read_text()
                    if f"\nPPid:\t{me}\n" not in status or \
                            b"run_one" not in (proc / "cmdline").read_bytes():
                        continue
                    hwm = next(line for line in status.splitlines()
                               if line.startswith("VmHWM:"))
                except (OSError, StopIteration):
                    continue
                self.peak_kb = max(self.peak_kb, int(hwm.split()[1]))


def measure(horeca_units: int, parallel: int) -> dict[str, Any]:
    """One crawl of the four approved sources; run in a fresh process (see main)."""
    from horeca.fixtures.server import serve_sites
    from horeca.region import resolve_region
    from horeca.spiders.runner import crawl_sources

    world = world_dir(horeca_units)
    sources = bench_sources(world)
    with tempfile.TemporaryDirectory(prefix="horeca-bench-crawl-") as tmp, \
            serve_sites(world / "sites", preload=True) as proxy:
        load_before = [round(x, 2) for x in os.getloadavg()]
        self_cpu0 = time.process_time()
        start = time.perf_counter()
        with WorkerPeakRss() as rss:
            reports = crawl_sources(Path(tmp) / "bench.db", sources, APPROVED,
                                    resolve_region("brussels"), proxy, throttle=False,
                                    parallel=parallel)
        wall = time.perf_counter() - start
        self_cpu = time.process_time() - self_cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = children.ru_utime + children.ru_stime
    kept = sum(r.kept for r in reports)
    pages = sum(r.pages for r in reports)
    return {
        "horeca_units": horeca_units, "parallel": parallel,
        "listings_kept": kept, "pages": pages, "wall_s": round(wall, 2),
        "listings_per_s": round(kept / wall, 1),
        "cpu_s": round(child_cpu + self_cpu, 2),
        "cpu_s_crawl_processes": round(child_cpu, 2),
        "crawl_cpu_ms_per_page": round(1000 * child_cpu / pages, 2) if pages else None,
        "cpu_s_fixture_server_and_runner": round(self_cpu, 2),
        "listings_per_cpu_s": round(kept / (child_cpu + self_cpu), 1),
        "peak_rss_mb_crawl_process": round(rss.peak_kb / 1024, 1),
        "load_avg_before": load_before,
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "sources": {r.source: {"status": r.status, "pages": r.pages, "kept": r.kept,
                               "crawl_s": r.duration_s,
                               "pages_per_s": round(r.pages / r.duration_s, 1)
                               if r.duration_s else None,
                               "flags": r.flags}
                    for r in reports},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crawl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1500,6000",
                        help="HoReCa units of the generated worlds (comma separated)")
    parser.add_argument("--parallel", default="1,2",
                        help="sources crawled at once (comma separated)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    parallels = [int(x) for x in args.parallel.split(",")]
    if args.one:
        print(json.dumps(measure(sizes[0], parallels[0])))
        return 0
    runs = []
    for size in sizes:
        world_dir(size)  # generate outside the measurement
        for parallel in parallels:
            out = subprocess.run(
                [sys.executable, "-m", "bench.crawl", "--one", "--sizes", str(size),
                 "--parallel", str(parallel)], cwd=ROOT, capture_output=True, text=True,
                check=True)
            run = json.loads(out.stdout.strip().splitlines()[-1])
            runs.append(run)
            print(f"size {size:>5}  parallel {parallel}: {run['listings_kept']:>5} listings "
                  f"in {run['wall_s']:>6.2f} s = {run['listings_per_s']:>6.1f}/s "
                  f"({run['listings_per_cpu_s']:.1f} per CPU s; crawl processes "
                  f"{run['crawl_cpu_ms_per_page']} ms CPU/page), peak RSS "
                  f"{run['peak_rss_mb_crawl_process']} MB, load {run['load_avg_before'][0]}",
                  flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "command": "python -m bench.crawl " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "reference_loop_s": reference_loop_seconds(),
                    "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "target_listings_per_s": TARGET_PER_SECOND,
        "runs": runs,
    }
    (RESULTS / "crawl.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
