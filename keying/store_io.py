"""The keying step's edges: read listings, geocodes and the register from the store, write
places and keying results back. Everything between is pure (records, consolidate, block,
engine).

`key_region` is the library entry point used by `horeca key` and `horeca run`:

    listings in the region -> places -> one pass over the active register snapshot ->
    decisions -> `places` + `keying_results` replaced in one transaction, audited.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from horeca.bulk import can_fork, collector_paused, in_turn, results_in_turn
from horeca.errors import UserError
from horeca.keying.blocking import Blocker, CandidateSet
from horeca.keying.compare import comparison_row
from horeca.keying.config import KeyingConfig, load_config
from horeca.keying.consolidate import consolidate, platform_domains
from horeca.keying.engine import (
    OUTCOMES,
    Compared,
    KeyingRun,
    Labels,
    compare_places,
    key_places,
    random_gamma,
)
from horeca.keying.records import PlaceRecord, UnitRecord, prepare_listing
from horeca.keying.register_keys import (
    TRUSTED_POSITION,
    ProcessConnection,
    ensure_unit_keys,
    id_range,
    offer_keys,
    prepare_units,
    prepared_json,
)
from horeca.legal_gate import audit
from horeca.normalize import normalize_postcode
from horeca.region import Region
from horeca.store import db_file, insert_rows, transaction
from horeca.store.json_text import dumps

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class KeyingSummary:
    """What `horeca key` reports and records."""

    region: str
    snapshot_id: int
    listings: int
    places: int
    units_scanned: int
    pairs: int
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # worker processes included
    model: dict[str, Any] = field(default_factory=dict)
    blocking: dict[str, Any] = field(default_factory=dict)
    labelled_places: int = 0

    def as_counts(self) -> dict[str, Any]:
        return {"region": self.region, "snapshot_id": self.snapshot_id,
                "listings": self.listings, "places": self.places,
                "units_scanned": self.units_scanned, "pairs": self.pairs, **self.counts,
                "labelled_places": self.labelled_places,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
                "cpu_seconds": {k: round(v, 2) for k, v in self.cpu_seconds.items()},
                "registered_share": self.model.get("prior"),
                "random_pairs": self.model.get("random_pairs")}


# ----------------------------------------------------------------------------- reading


def _in_region(region: Region | None, listing: Mapping[str, Any], country: str) -> bool:
    """Listings tagged for the region, or whose postcode / coordinates fall in it."""
    if region is None:
        return True
    postcode = listing.get("postcode")
    code = normalize_postcode(str(postcode), country) if postcode else None
    if code:
        return region.contains_postcode(code)
    if listing.get("region"):
        return listing["region"] == region.name
    lat, lon = listing.get("lat"), listing.get("lon")
    if lat is not None and lon is not None and region.bbox is not None:
        return region.contains_point(lat, lon)
    return True


def load_listings(db: sqlite_utils.Database, region: Region | None = None,
                  country: str = "BE") -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """Listings of the region and their geocodes ({listing id: {lat, lon}})."""
    listings = [row for row in db.query("SELECT * FROM listings ORDER BY id")
                if _in_region(region, row, country)]
    wanted = {row["id"] for row in listings}
    geocodes = {
        row["entity_id"]: row for row in db.query(
            "SELECT entity_id, lat, lon FROM entity_geocodes WHERE entity_kind = 'listing' "
            f"AND lat IS NOT NULL AND lon IS NOT NULL AND {TRUSTED_POSITION}")
        if row["entity_id"] in wanted}
    return listings, geocodes


def active_snapshot_id(db: sqlite_utils.Database, region_key: str) -> int:
    row = db.execute("SELECT id FROM register_snapshots WHERE region = ? AND status = 'active' "
                     "ORDER BY id DESC LIMIT 1", [region_key]).fetchone()
    if row is None:
        known = [r[0] for r in db.execute(
            "SELECT DISTINCT region FROM register_snapshots WHERE status = 'active'")]
        hint = f" (active registers: {', '.join(known)})" if known else ""
        raise UserError(f"no active register snapshot for region {region_key!r}{hint}",
                        path="--region",
                        fix=f"run `horeca register import PATH --region {region_key}` first")
    return int(row[0])


SCAN_BATCH = 16_384  # register units offered to the blocker at a time (a task of a scan)
PARALLEL_MIN_UNITS = 100_000  # a smaller register is scanned in one process


def _workers(config: KeyingConfig) -> int:
    return config.blocking.workers or os.cpu_count() or 1


def scan_register(db: sqlite_utils.Database, snapshot_id: int, places: Sequence[PlaceRecord],
                  config: KeyingConfig, total_units: int,
                  progress: Progress | None = None,
                  known: Mapping[str, str] | None = None) -> CandidateSet:
    """Blocking over the snapshot's stored keys (see register_keys.py), batch by batch of
    units; a large register is scanned by `[keying.blocking] workers` processes in turn
    (`bulk.in_turn`), with the same candidates. The units chosen are prepared in several
    processes too when there are many."""
    workers = _workers(config)
    blocker = Blocker(places, config.blocking, config.country,
                      sample_size=config.scoring.sample_units, seed=config.scoring.seed,
                      known=known)
    lo, hi = id_range(db, snapshot_id) or (0, -1)
    batches = [(first, min(hi, first + SCAN_BATCH - 1)) for first in range(lo, hi + 1, SCAN_BATCH)]
    conn = ProcessConnection(db)

    def work(k: int, here: bool) -> None:
        offer_keys(blocker, conn.get(here), snapshot_id, batches[k])
        if here and progress:
            progress("register", min(total_units, (k + 1) * SCAN_BATCH), total_units)

    def collect() -> dict[str, Any]:
        conn.close_own()
        return blocker.partial()

    parallel = workers > 1 and total_units >= PARALLEL_MIN_UNITS and conn.path is not None
    for part in in_turn(len(batches), work, collect,
                        processes=workers if parallel else 1)[1:]:
        blocker.absorb(part)

    def prepare(positions: Sequence[int]) -> list[UnitRecord]:
        return prepare_units(db, snapshot_id, positions, config.country,
                             prepare_json=lambda ids: prepare_in_parallel(
                                 db, snapshot_id, ids, country=config.country,
                                 workers=workers))

    return blocker.finish(prepare)


PARALLEL_MIN_PREPARE = 5_000  # units; fewer are prepared in this process
PREPARE_SLICES = 32  # slices of the units, taken in turn by the preparing processes


def prepare_in_parallel(db: sqlite_utils.Database, snapshot_id: int, unit_ids: Sequence[str],
                        *, country: str, workers: int) -> list[str]:
    """Units prepared for comparison (as JSON, see `register_keys.prepared_json`) by
    several processes, slice by slice in turn (`bulk.in_turn`), in order."""
    if workers < 2 or len(unit_ids) < PARALLEL_MIN_PREPARE or not db_file(db):
        return prepared_json(db, snapshot_id, unit_ids, country)
    step = len(unit_ids) // PREPARE_SLICES + 1
    slices = [(lo, min(len(unit_ids), lo + step)) for lo in range(0, len(unit_ids), step)]
    conn = ProcessConnection(db)

    def work(k: int, here: bool) -> list[str]:
        lo, hi = slices[k]
        return prepared_json(conn.get(here), snapshot_id, unit_ids[lo:hi], country)

    return [text for part in results_in_turn(len(slices), work, processes=workers,
                                             leaving=conn.close_own) for text in part]


PARALLEL_MIN_PAIRS = 20_000  # below this, comparing in one process is quicker
COMPARE_SLICES = 64  # slices of the places, taken in turn by the comparing processes


def _compare_tasks(places: Sequence[PlaceRecord], cands: CandidateSet,
                   slices: int) -> list[tuple[int, int]]:
    """The random pairs (-1, -1) first, then slices of places with about the same number
    of candidate pairs."""
    per_slice = cands.pair_count // slices + 1
    tasks: list[tuple[int, int]] = [(-1, -1)]
    lo, acc = 0, 0
    for i, pairs in enumerate(cands.pairs):
        acc += len(pairs)
        if acc >= per_slice:
            tasks.append((lo, i + 1))
            lo, acc = i + 1, 0
    if lo < len(places):
        tasks.append((lo, len(places)))
    return tasks


def _compare_task(places: Sequence[PlaceRecord], cands: CandidateSet, config: KeyingConfig,
                  task: tuple[int, int], as_rows: bool) -> Any:
    """The random pairs' levels (task (-1, -1)), or per place of the slice its
    comparisons, as plain rows when they go to another process."""
    lo, hi = task
    if lo < 0:
        return random_gamma(places, cands.sample, config)
    compared = compare_places(places, cands, config, range(lo, hi))
    if not as_rows:
        return compared
    return [[comparison_row(places[i], cands.units[j], c)
             for (j, _mask), c in zip(cands.pairs[i], comps, strict=True)]
            for i, comps in zip(range(lo, hi), compared, strict=True)]


def compare_in_parallel(places: Sequence[PlaceRecord], cands: CandidateSet,
                        config: KeyingConfig) -> Compared | None:
    """Every candidate pair and the random pairs compared by several processes, slice by
    slice in turn (`bulk.in_turn`), this one too (None when one process is quicker): the
    same comparisons `key_places` would make itself. What this process compares need
    not travel back, and stays a `Comparison`."""
    workers = _workers(config)
    if workers < 2 or cands.pair_count < PARALLEL_MIN_PAIRS or not can_fork():
        return None
    tasks = _compare_tasks(places, cands, COMPARE_SLICES)
    return _assembled(results_in_turn(
        len(tasks), lambda k, here: _compare_task(places, cands, config, tasks[k],
                                                  as_rows=not here),
        processes=workers))


def _assembled(done: Sequence[Any]) -> Compared:
    """The results of `_compare_task`, in task order: the random pairs', then per place."""
    compared: list[list[Any]] = []
    for part in done[1:]:
        compared.extend(part)
    return Compared(compared, done[0])


def review_labels(db: sqlite_utils.Database, places: Sequence[PlaceRecord]) -> Labels | None:
    """What reviewed verdicts say about this run's places (see exports/verdicts.py)."""
    if db.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0:
        return None
    from horeca.exports.verdicts import review_labels as _labels

    found = _labels(db, [(p.id, p.listing_ids) for p in places])
    return Labels(dict(found.pairs), dict(found.registered_under), frozenset(found.absent))


# ----------------------------------------------------------------------------- writing


def result_rows(run: KeyingRun, places: Sequence[PlaceRecord], snapshot_id: int,
                run_id: int | None) -> tuple[list[dict], list[dict]]:
    """`places` and `keying_results` rows of a run."""
    place_rows = [{"id": p.id, "run_id": run_id, "listing_ids": dumps(list(p.listing_ids)),
                   "name": p.names.display[0] if p.names.display else None,
                   "evidence": dumps(p.evidence)}
                  for p in places]
    result = [{"place_id": d.place_id, "run_id": run_id, "snapshot_id": snapshot_id,
               "outcome": d.outcome, "unit_id": d.unit_id,
               "score": None if d.score is None else round(d.score, 6), "grades": d.grades,
               "candidates": dumps(d.candidates), "reason": d.reason,
               "candidate_units": dumps(run.candidates_of.get(d.place_id, []))}
              for d in run.decisions]
    return place_rows, result


def write_results(db: sqlite_utils.Database, run: KeyingRun, places: Sequence[PlaceRecord],
                  snapshot_id: int, run_id: int | None) -> None:
    """Replace every previous place and keying result with this run's, atomically."""
    place_rows, result = result_rows(run, places, snapshot_id, run_id)
    with transaction(db):
        db.conn.execute("DELETE FROM keying_results")
        db.conn.execute("DELETE FROM places")
        insert_rows(db, "places", place_rows)
        insert_rows(db, "keying_results", result)


# ----------------------------------------------------------------------------- the step


def prepare_places(listings: Sequence[Mapping[str, Any]], geocodes: Mapping[str, Mapping],
                   config: KeyingConfig) -> list[PlaceRecord]:
    """Listings -> comparison-ready records -> consolidated places (pure)."""
    ignored = platform_domains(listings, config.consolidation.max_listings_per_domain)
    records = [prepare_listing(row, country=config.country, geocode=geocodes.get(row["id"]),
                               ignored_domains=ignored) for row in listings]
    return consolidate(records, config.consolidation)


def _cpu_time() -> float:
    """CPU seconds (user + system) of this process and of its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def key_region(db: sqlite_utils.Database, *, region_key: str, region: Region | None = None,
               snapshot_region: str | None = None,
               config_path: str | Path | None = None, config: KeyingConfig | None = None,
               run_id: int | None = None, actor: str | None = None,
               purpose: str | None = None, progress: Progress | None = None,
               use_verdicts: bool = True) -> KeyingSummary:
    """Key every listing of the region against the active register snapshot of
    `snapshot_region` (default: the region's own) and store the results, replacing the
    previous ones. Idempotent: same data, same rows."""
    with collector_paused():
        return _key_region(db, region_key=region_key, region=region,
                           snapshot_region=snapshot_region, config_path=config_path,
                           config=config, run_id=run_id, actor=actor, purpose=purpose,
                           progress=progress, use_verdicts=use_verdicts)


def _key_region(db: sqlite_utils.Database, *, region_key: str, region: Region | None,
                snapshot_region: str | None, config_path: str | Path | None,
                config: KeyingConfig | None, run_id: int | None, actor: str | None,
                purpose: str | None, progress: Progress | None,
                use_verdicts: bool) -> KeyingSummary:
    config = config or load_config(config_path)
    snapshot_id = active_snapshot_id(db, snapshot_region or region_key)
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t0, c0 = time.perf_counter(), _cpu_time()
    listings, geocodes = load_listings(db, region, config.country)
    if not listings:
        raise UserError(f"no listings in region {region_key!r} to key", path="--region",
                        fix="crawl first (`horeca crawl` or `horeca listings import`)")
    places = prepare_places(listings, geocodes, config)
    seconds["consolidate"] = time.perf_counter() - t0
    cpu["consolidate"] = _cpu_time() - c0
    total_units = db.execute("SELECT count(*) FROM register_units WHERE snapshot_id = ?",
                             [snapshot_id]).fetchone()[0]

    labels = review_labels(db, places) if use_verdicts else None
    t0, c0 = time.perf_counter(), _cpu_time()
    indexed = ensure_unit_keys(db, snapshot_id, config.country, workers=_workers(config),
                               progress=progress)
    if indexed:
        seconds["register_keys"] = time.perf_counter() - t0
        cpu["register_keys"] = _cpu_time() - c0
        t0, c0 = time.perf_counter(), _cpu_time()
    cands = scan_register(db, snapshot_id, places, config, total_units, progress,
                          known=labels.registered_under if labels else None)
    seconds["block"] = time.perf_counter() - t0
    cpu["block"] = _cpu_time() - c0
    if progress:
        progress("register", total_units, total_units)
    t0, c0 = time.perf_counter(), _cpu_time()
    run = key_places(places, cands, config, labels, compare_in_parallel(places, cands, config))
    seconds["compare_score_assign"] = time.perf_counter() - t0
    cpu["compare_score_assign"] = _cpu_time() - c0
    summary = KeyingSummary(
        region=region_key, snapshot_id=snapshot_id, listings=len(listings),
        places=len(places), units_scanned=cands.units_scanned, pairs=run.pairs,
        counts={o: run.counts.get(o, 0) for o in OUTCOMES}, seconds=seconds,
        cpu_seconds=cpu,
        model=run.model.as_dict(), blocking=run.blocking,
        labelled_places=0 if labels is None else len(
            {p for p, _ in labels.pairs} | set(labels.registered_under) | set(labels.absent)))
    with transaction(db):
        write_results(db, run, places, snapshot_id, run_id)
        audit.record(db, "key", actor=actor, source=f"register snapshot {snapshot_id}",
                     target="keying_results", rows=len(run.decisions), purpose=purpose,
                     details={"region": region_key, "run_id": run_id, **summary.counts,
                              "places": len(places), "listings": len(listings),
                              "config": config.as_dict(),
                              "model": {"prior": summary.model.get("prior"),
                                        "weights": {f: {lv: v["bits"] for lv, v in lvs.items()}
                                                    for f, lvs in
                                                    summary.model["fields"].items()}}})
    return summary
