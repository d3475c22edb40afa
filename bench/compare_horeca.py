"""The horeca side of the side-by-side benchmark, run as its own process.

    python -m bench.compare_horeca prepare --scale demo --db D.db --proxy URL --out P.json
    python -m bench.compare_horeca key --db D.db --out K.json [--config KEYING.toml]

`prepare` runs the chain up to keying on a fresh store: register import, listings (a real
crawl of the fixture sites through the legal gate for the demo; `listings import` of the
generated records for the large world), gazetteer, offline geocoding. `key` keys the
region in that store with the library entry point `horeca key` uses. Each writes the wall
time of every stage and the process's peak resident memory (its own and, for the crawl,
that of its crawl subprocesses) to --out as JSON.

The split lets the comparison give keying alone — what Splink is compared with — its own
process and its own peak, while the stages before it stay measured too.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.compare_world import REGION, WorldFiles, world_for

ACTOR = "bench"
PURPOSE = "benchmark against Splink (synthetic data)"


def peak_mb() -> dict[str, float]:
    """Peak RSS of this process and of its largest finished child (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "children": round(children, 1)}


class Stages:
    """Times named stages and keeps what each returned worth reporting."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.facts: dict[str, Any] = {}

    def run(self, name: str, work: Callable[[], Any]) -> Any:
        print(f"[horeca] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        result = work()
        self.seconds[name] = round(time.perf_counter() - started, 3)
        print(f"[horeca] {name}: {self.seconds[name]:.1f} s", file=sys.stderr, flush=True)
        return result


def _load_listings(db: Any, db_path: Path, world: WorldFiles, region: Any, proxy: str | None
                   ) -> dict[str, Any]:
    if world.sites is not None:
        from horeca.spiders.runner import crawl_sources

        if not proxy:
            raise SystemExit("the demo crawl needs --proxy (the fixture server's URL)")
        reports = crawl_sources(db_path, world.sources, None, region, proxy, actor=ACTOR,
                                purpose=PURPOSE)
        return {r.source: {"status": r.status, "kept": r.kept} for r in reports}
    from horeca.legal_gate.config import load_sources
    from horeca.spiders.importer import import_listings, load_mapping

    assert world.mapping is not None
    config, mapping = load_sources(world.sources), load_mapping(world.mapping)
    out = {}
    for source, path in world.listings.items():
        result = import_listings(db, path, mapping, config.get(source), region=region)
        out[source] = {"rows": result.rows, "kept": result.kept, "dropped": result.dropped}
    return out


def prepare(db_path: Path, world: WorldFiles, proxy: str | None) -> dict[str, Any]:
    from horeca.geocode.loaders import import_segments
    from horeca.geocode.run import geocode_pending
    from horeca.region import resolve_region
    from horeca.register.importer import ImportRequest, import_register
    from horeca.store import open_db

    region = resolve_region(REGION)
    db = open_db(db_path)
    stages = Stages()
    reg = stages.run("register import", lambda: import_register(
        db, ImportRequest(paths=[world.kbo], region=region, region_key=REGION),
        actor=ACTOR, purpose=PURPOSE))
    stages.facts["register"] = {"units": reg.counts.get("units"),
                                "horeca_units": reg.counts.get("horeca_units")}
    stages.facts["listings"] = stages.run(
        "crawl" if world.sites else "listings import",
        lambda: _load_listings(db, db_path, world, region, proxy))
    stages.run("gazetteer import", lambda: import_segments(db, world.gazetteer, actor=ACTOR,
                                                           purpose=PURPOSE))
    geo = stages.run("geocode", lambda: geocode_pending(db, region, online=False, actor=ACTOR,
                                                        purpose=PURPOSE))
    stages.facts["geocode"] = {"entities": geo.entities, "failed": geo.failed}
    db.close()
    return {"seconds": stages.seconds, "facts": stages.facts}


def key(db_path: Path, config: Path | None = None) -> dict[str, Any]:
    from horeca.keying.engine import key_region
    from horeca.region import resolve_region
    from horeca.store import open_db

    db = open_db(db_path)
    stages = Stages()
    summary = stages.run("key", lambda: key_region(
        db, region_key=REGION, region=resolve_region(REGION), config_path=config, actor=ACTOR,
        purpose=PURPOSE))
    db.close()
    facts = {"listings": summary.listings, "places": summary.places, "pairs": summary.pairs,
             "units_scanned": summary.units_scanned, "outcomes": summary.counts,
             "inner_seconds": {k: round(v, 3) for k, v in summary.seconds.items()}}
    return {"seconds": stages.seconds, "facts": facts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare_horeca",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["prepare", "key"])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--proxy", default=None)
    parser.add_argument("--config", type=Path, default=None, help="keying config (TOML)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.stage == "prepare":
        report = prepare(args.db, world_for(args.scale), args.proxy)
    else:
        report = key(args.db, args.config)
    report["wall_s"] = round(time.perf_counter() - started, 3)
    report["peak_mb"] = peak_mb()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
