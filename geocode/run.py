"""`geocode_pending`: geocode the listings and register units that need it.

For each distinct normalised address of the pending entities, the chain is:

1. the cache (`geocodes`), per provider: a gazetteer answer computed before, an online
   answer received before (used even when online is off: it costs nothing);
2. the offline gazetteer, when its answer is not cached;
3. the online provider, only when online is allowed, the address is not placed to the
   house number offline, and no answer (found or not found) is cached. Errors are
   cached as errors and tried again on the next run.

The best answer by precision wins (offline on a tie). Entities are pending when they
were never geocoded, their address changed, their answer left the cache (a gazetteer
import drops the gazetteer's answers), their answer is below house-number precision and
online is allowed (offline, the same cached answer would come back), their own
coordinates moved, or `redo_all` is set.

Writes are committed as they come (offline results at once, online ones in small
batches), so an interrupted run keeps every answer it paid for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlite_utils

from horeca.bulk import collector_paused
from horeca.geocode.config import GeocodeConfig
from horeca.geocode.gazetteer import ensure_index
from horeca.geocode.geo import haversine_m, valid_position
from horeca.geocode.model import (
    GAZETTEER,
    KEY_SEPARATOR,
    OSM_ATTRIBUTION,
    PRECISIONS,
    STATUS_ERROR,
    AddressQuery,
    Answer,
    GeocodeSummary,
    better,
    cache_key,
    precision_rank,
    split_cache_key,
)
from horeca.geocode.offline import OfflineMatching, write_answers
from horeca.geocode.query import address_query, unit_query, why_no_query
from horeca.legal_gate import audit
from horeca.normalize import normalize_postcode
from horeca.region import Region
from horeca.store import param_batches, transaction, upsert
from horeca.store.runs import now_iso

if TYPE_CHECKING:
    from horeca.geocode.online import OnlineGeocoder

Progress = Callable[[str, int, int], None]   # (phase, done, total)

_ONLINE_COMMIT_EVERY = 10       # answers; at 1 request/s, about every 10 seconds
_LOOKUP_BATCH = 2048            # new distinct queries looked up in the cache at once


@dataclass(slots=True)
class Entity:
    kind: str                         # listing | unit
    id: str
    snapshot_id: int | None
    query: AddressQuery | None
    own: tuple[float, float] | None   # the entity's own coordinates, when usable
    own_bad: bool                     # coordinates given but unusable (0,0, out of range)
    stored: StoredRow | None          # its entity_geocodes row, if any
    why: str | None = None            # without a query: no_address or unparsable
    written: EntityRow | None = None  # the row this run wrote for it, if any


class EntityRow(NamedTuple):
    """An `entity_geocodes` row, in column order (written as it is)."""

    entity_kind: str
    entity_id: str
    snapshot_id: int | None
    geocode_key: str | None
    lat: float | None
    lon: float | None
    precision: str | None
    provider: str | None
    gap_m: float | None
    updated_at: str
    status: str
    error: str | None


class StoredRow(NamedTuple):
    """An entity's `entity_geocodes` row as read back, with whether its answer is cached."""

    geocode_key: str | None
    cached: bool
    lat: float | None
    lon: float | None
    precision: str | None
    provider: str | None
    gap_m: float | None
    updated_at: str | None
    status: str | None
    error: str | None
    snapshot_id: int | None


# ------------------------------------------------------------------ reading entities

def _own_position(lat: Any, lon: Any) -> tuple[tuple[float, float] | None, bool]:
    if lat is None and lon is None:
        return None, False
    if valid_position(lat, lon):
        return (float(lat), float(lon)), False
    return None, True


def stored_rows(db: sqlite_utils.Database, kind: str) -> dict[str, StoredRow]:
    """Entity id -> its entity_geocodes row of `kind`, with whether its answer is cached.

    Read apart from the entities: on a first run there is nothing to join."""
    sql = ("SELECT e.entity_id, e.geocode_key, (g.key IS NOT NULL), e.lat, e.lon, "
           "e.precision, e.provider, e.gap_m, e.updated_at, e.status, e.error, e.snapshot_id "
           "FROM entity_geocodes e LEFT JOIN geocodes g ON g.key = e.geocode_key "
           "WHERE e.entity_kind = ?")
    return {entity_id: StoredRow(key, bool(cached), *values)
            for entity_id, key, cached, *values in db.conn.execute(sql, (kind,))}


def _in_region(region: Region | None, postcode: str | None, tagged: str | None,
               own: tuple[float, float] | None) -> bool:
    if region is None:
        return True
    code = normalize_postcode(postcode) if postcode else None
    if code:
        return region.contains_postcode(code)
    if tagged:
        return tagged == region.name
    return own is not None and region.bbox is not None and region.contains_point(*own)


def collect_entities(db: sqlite_utils.Database, region: Region | None = None,
                     default_country: str = "BE") -> list[Entity]:
    """Every listing and every unit of an active register snapshot, in `region`."""
    return list(iter_entities(db, region, default_country))


def iter_entities(db: sqlite_utils.Database, region: Region | None = None,
                  default_country: str = "BE") -> Iterator[Entity]:
    """`collect_entities` one by one: a run matches the first addresses while it is still
    reading the others."""
    stored = stored_rows(db, "listing")
    listings = ("SELECT id, street, house_number, postcode, locality, country, address_raw, "
                "lat, lon, region FROM listings")
    for (lid, street, number, postcode, locality, country, raw, lat, lon,
         tagged) in db.conn.execute(listings):
        own, bad = (None, False) if lat is None and lon is None else _own_position(lat, lon)
        if region is not None and not _in_region(region, postcode, tagged, own):
            continue
        query = address_query(street, number, postcode, locality, country, None, raw,
                              default_country)
        why = why_no_query(street, number, postcode, locality, raw) if query is None else None
        yield Entity("listing", lid, None, query, own, bad, stored.get(lid), why)
    units = (
        "SELECT u.unit_id, u.snapshot_id, u.street_fr, u.street_nl, u.house_number, "
        "u.postcode, u.municipality_fr, u.municipality_nl, u.lat, u.lon, s.region "
        "FROM register_units u "
        "JOIN register_snapshots s ON s.id = u.snapshot_id AND s.status = 'active'")
    stored = stored_rows(db, "unit")
    for (uid, snapshot_id, street_fr, street_nl, number, postcode, mun_fr, mun_nl, lat, lon,
         tagged) in db.conn.execute(units):
        own, bad = (None, False) if lat is None and lon is None else _own_position(lat, lon)
        if region is not None and not _in_region(region, postcode, tagged, own):
            continue
        query = unit_query({"street_fr": street_fr, "street_nl": street_nl,
                            "house_number": number, "postcode": postcode,
                            "municipality_fr": mun_fr, "municipality_nl": mun_nl},
                           default_country)
        why = why_no_query(street_fr, street_nl, number, postcode, mun_fr,
                           mun_nl) if query is None else None
        yield Entity("unit", uid, snapshot_id, query, own, bad, stored.get(uid), why)


# ------------------------------------------------------------------ deciding what to do

def gap_m(own: tuple[float, float] | None, answer: Answer | None) -> float | None:
    if own is None or answer is None or not answer.found:
        return None
    assert answer.lat is not None and answer.lon is not None
    return round(haversine_m(own[0], own[1], answer.lat, answer.lon), 1)


def _same_gap(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, abs_tol=0.5)


def is_pending(entity: Entity, redo_all: bool = False, online: bool = False) -> bool:
    stored = entity.stored
    if redo_all or stored is None:
        return True
    if entity.snapshot_id != stored.snapshot_id:
        return True
    if entity.query is None:
        return stored.geocode_key is not None or stored.error != entity.why
    if stored.geocode_key is None:
        return True
    _provider, key = split_cache_key(stored.geocode_key)
    if key not in (entity.query.key, entity.query.gazetteer_key):
        return True
    if not stored.cached:
        # Its answer left the cache: a gazetteer import drops the gazetteer's answers.
        return True
    if precision_rank(stored.precision) > precision_rank(entity.query.best_possible):
        # Offline, the same cached answers would come back; online may do better.
        return online
    stored_answer_point = (stored.lat, stored.lon)
    if stored_answer_point[0] is None:
        return True
    own_gap = (round(haversine_m(*entity.own, *stored_answer_point), 1)
               if entity.own is not None else None)
    return not _same_gap(own_gap, stored.gap_m)


# ------------------------------------------------------------------ the cache


def read_cache(db: sqlite_utils.Database, keys: Iterable[str]) -> dict[str, Answer]:
    found: dict[str, Answer] = {}
    for chunk in param_batches(sorted(set(keys))):
        sql = f"SELECT * FROM geocodes WHERE key IN ({','.join('?' * len(chunk))})"
        for row in _rows_params(db, sql, chunk):
            found[row["key"]] = Answer.from_row(row)
    return found


def _rows_params(db: sqlite_utils.Database, sql: str, params: list[str]
                 ) -> Iterator[dict[str, Any]]:
    cursor = db.conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    for values in cursor:
        yield dict(zip(names, values, strict=True))


def has_answers(db: sqlite_utils.Database, provider: str) -> bool:
    """Whether the cache holds any answer of `provider` (one look into the key index):
    a first run, or the first after a gazetteer import, need not look up each address."""
    low = cache_key(provider, "")
    high = low[:-1] + chr(ord(KEY_SEPARATOR) + 1)
    return db.conn.execute("SELECT 1 FROM geocodes WHERE key >= ? AND key < ? LIMIT 1",
                           (low, high)).fetchone() is not None


# ------------------------------------------------------------------ the run

@dataclass
class _Plan:
    queries: dict[str, AddressQuery]            # query key -> query
    offline: dict[str, Answer]                  # query key -> gazetteer answer
    online: dict[str, Answer]                   # query key -> online answer (cached or new)


def _entity_row(entity: Entity, answer: Answer | None, stamp: str) -> EntityRow:
    if answer is None:
        return EntityRow(entity.kind, entity.id, entity.snapshot_id, None, None, None, None,
                         None, None, stamp, STATUS_ERROR, entity.why)
    if answer.found:
        return EntityRow(entity.kind, entity.id, entity.snapshot_id, answer.key, answer.lat,
                         answer.lon, answer.precision, answer.provider,
                         gap_m(entity.own, answer) if entity.own is not None else None,
                         stamp, answer.status, None)
    return EntityRow(entity.kind, entity.id, entity.snapshot_id, answer.key, None, None, None,
                     answer.provider, None, stamp, answer.status,
                     answer.error or answer.reason)


def _best(plan: _Plan, query: AddressQuery | None) -> Answer | None:
    if query is None:
        return None
    offline = plan.offline.get(query.key)
    if not plan.online:   # offline runs: nothing to compare
        return offline
    return better(offline, plan.online.get(query.key))


def _entity_rows(entities: list[Entity], plan: _Plan) -> list[EntityRow]:
    """The entities' rows, in their order (each also kept as `entity.written`)."""
    stamp = now_iso()
    rows = []
    offline = plan.offline if not plan.online else None   # offline runs: nothing to compare
    for e in entities:
        query = e.query
        if query is None:
            answer = None
        elif offline is not None:
            answer = offline.get(query.key)
        else:
            answer = _best(plan, query)
        e.written = row = _entity_row(e, answer, stamp)
        rows.append(row)
    return rows


def _write_rows(db: sqlite_utils.Database, rows: list[EntityRow]) -> None:
    if rows:
        upsert(db, "entity_geocodes", rows, key=("entity_kind", "entity_id"),
               columns=EntityRow._fields)


def _write_entities(db: sqlite_utils.Database, entities: list[Entity], plan: _Plan) -> None:
    # In key order, SQLite fills its index pages one after another.
    _write_rows(db, sorted(_entity_rows(entities, plan)))   # (kind, id) lead, unique


def _needs_online(query: AddressQuery, offline: Answer | None) -> bool:
    """Whether an online answer could be better than the gazetteer's: a query without a
    number is not sent when the gazetteer already found its street."""
    if offline is None or not offline.found:
        return True
    if offline.precision == PRECISIONS[0]:   # nothing finer exists
        return False
    return precision_rank(offline.precision) > precision_rank(query.best_possible)


def geocode_pending(db: sqlite_utils.Database, region: Region | None = None, *,
                    online: bool | None = None, config: GeocodeConfig | None = None,
                    redo_all: bool = False, online_geocoder: OnlineGeocoder | None = None,
                    progress: Progress | None = None, actor: str | None = None,
                    purpose: str | None = None) -> GeocodeSummary:
    """Geocode what needs it; return counts by precision, provider and failure reason.

    `online` overrides `config.online`. `online_geocoder` lets a caller reuse one
    configured geocoder (and read its request counter) across runs. `progress` is called
    with (phase, done, total); `actor` and `purpose` go to the audit log.
    """
    with collector_paused():
        return _run(db, region, online, config or GeocodeConfig(), redo_all, online_geocoder,
                    progress, actor, purpose)


def _run(db: sqlite_utils.Database, region: Region | None, online: bool | None,
         config: GeocodeConfig, redo_all: bool, online_geocoder: OnlineGeocoder | None,
         progress: Progress | None, actor: str | None, purpose: str | None) -> GeocodeSummary:
    go_online = config.online if online is None else online
    summary = GeocodeSummary(gap_threshold_m=config.gap_threshold_m)
    plan = _Plan(queries={}, offline={}, online={})
    geocoder = online_geocoder

    def before_first_query() -> None:
        nonlocal geocoder
        if go_online and geocoder is None:
            from horeca.geocode.online import OnlineGeocoder  # geopy loads only to go online

            geocoder = OnlineGeocoder(config)   # refuses early without a user agent

    ensure_index(db)
    matching = OfflineMatching(db, workers=config.workers, fuzzy_cutoff=config.fuzzy_cutoff)
    try:
        entities, pending = _read_and_match(db, region, config, redo_all, go_online, plan,
                                            matching, summary, before_first_query)
        summary.entities, summary.pending = len(entities), len(pending)
        summary.up_to_date = len(entities) - len(pending)
        summary.queries = len(plan.queries)
        online_id = geocoder.provider_id if geocoder is not None else config.provider_id
        to_send = _write_offline(db, plan, pending, matching, online_id, summary, progress)
    finally:
        matching.close()

    if to_send and geocoder is not None:
        _online_phase(db, plan, to_send, pending, geocoder, summary, progress)
    elif to_send:
        summary.online_skipped = len(to_send)
    if any(a.found for a in plan.online.values()) and online_id.split("@")[0] in (
            "nominatim", "photon"):
        summary.attribution = OSM_ATTRIBUTION

    _summarise(entities, summary)
    if pending:
        with transaction(db):
            audit.record(db, "geocode", actor=actor, target="entity_geocodes",
                         rows=len(pending), purpose=purpose,
                         details={k: v for k, v in summary.as_counts().items()
                                  if k in ("pending", "queries", "online_requests",
                                           "by_precision", "failures")})
    return summary


def _read_and_match(db: sqlite_utils.Database, region: Region | None, config: GeocodeConfig,
                    redo_all: bool, go_online: bool, plan: _Plan, matching: OfflineMatching,
                    summary: GeocodeSummary, before_first_query: Callable[[], None]
                    ) -> tuple[list[Entity], list[Entity]]:
    """Read the entities, keep the pending ones, and hand each new distinct query the
    cache cannot answer to the matcher, in batches, while reading goes on."""
    entities: list[Entity] = []
    pending: list[Entity] = []
    queries = plan.queries
    cached = has_answers(db, GAZETTEER)   # else a first run: nothing to look up
    fresh: list[AddressQuery] = []
    for e in iter_entities(db, region, config.country):
        entities.append(e)
        if not is_pending(e, redo_all, go_online):
            continue
        pending.append(e)
        query = e.query
        if query is not None and query.key not in queries:
            if not queries:
                before_first_query()
            queries[query.key] = query
            fresh.append(query)
            if len(fresh) >= _LOOKUP_BATCH:
                _to_matcher(db, plan, fresh, cached, matching, summary)
                fresh = []
    _to_matcher(db, plan, fresh, cached, matching, summary)
    return entities, pending


def _to_matcher(db: sqlite_utils.Database, plan: _Plan, fresh: list[AddressQuery],
                cached: bool, matching: OfflineMatching, summary: GeocodeSummary) -> None:
    if not fresh:
        return
    if cached:
        by_cache_key = {cache_key(GAZETTEER, q.gazetteer_key): q for q in fresh}
        hits = read_cache(db, by_cache_key)
        for ckey, answer in hits.items():
            plan.offline[by_cache_key[ckey].key] = answer
        summary.cache_hits += len(hits)
        fresh = [q for q in fresh if q.key not in plan.offline]
    matching.add(fresh)


def _write_offline(db: sqlite_utils.Database, plan: _Plan, pending: list[Entity],
                   matching: OfflineMatching, online_id: str, summary: GeocodeSummary,
                   progress: Progress | None) -> list[str]:
    """Take the gazetteer's answers batch by batch and build the rows of the pending
    entities whose answers are then all known (entities come in the order their queries
    were first seen, so each batch completes the next stretch of them); once every
    answer is in the cache, write the rows. Returns the query keys to send online."""
    keys = list(plan.queries)   # in the order first seen
    online_cached = has_answers(db, online_id)
    to_send: list[str] = []
    rows: list[EntityRow] = []
    next_key = next_entity = 0

    def complete() -> None:
        nonlocal next_key, next_entity
        first = next_key
        while next_key < len(keys) and keys[next_key] in plan.offline:
            next_key += 1
        to_send.extend(_online_candidates(db, plan, keys[first:next_key], online_id,
                                          online_cached, summary))
        done = next_entity
        while next_entity < len(pending) and (pending[next_entity].query is None
                                              or pending[next_entity].query.key
                                              in plan.offline):
            next_entity += 1
        rows.extend(_entity_rows(pending[done:next_entity], plan))

    for batch in matching.batches(progress):   # the cache is written after the last one
        for query, answer in batch:
            plan.offline[query.key] = answer
        complete()
    complete()   # what the cache answered after the last batch; entities without query
    assert next_entity == len(pending), "every pending entity gets a row"
    # In key order, SQLite fills its index pages one after another.
    rows.sort()   # (entity_kind, entity_id) come first and are unique
    with transaction(db):
        _write_rows(db, rows)
    return to_send


def _online_candidates(db: sqlite_utils.Database, plan: _Plan, keys: list[str],
                       online_id: str, online_cached: bool,
                       summary: GeocodeSummary) -> list[str]:
    """Of `keys`, those to send online: not placed to the number offline, and not cached."""
    wanted = [k for k in keys if _needs_online(plan.queries[k], plan.offline.get(k))]
    online_keys = {cache_key(online_id, k): k for k in wanted}
    cached = read_cache(db, online_keys) if online_keys and online_cached else {}
    to_send = []
    for ckey, key in online_keys.items():
        answer = cached.get(ckey)
        if answer is not None and answer.status != STATUS_ERROR:
            plan.online[key] = answer
            summary.cache_hits += 1
        else:
            to_send.append(key)
    return to_send


def _online_phase(db: sqlite_utils.Database, plan: _Plan, to_send: list[str],
                  pending: list[Entity], geocoder: OnlineGeocoder, summary: GeocodeSummary,
                  progress: Progress | None) -> None:
    by_key: dict[str, list[Entity]] = {}
    for e in pending:
        if e.query is not None:
            by_key.setdefault(e.query.key, []).append(e)
    start_requests = geocoder.requests
    batch: list[Answer] = []

    def flush() -> None:
        if not batch:
            return
        sent = [a for a in batch if a.reason != "online_stopped"]
        touched = [e for a in batch for e in by_key.get(a.query_key, ())]
        with transaction(db):
            write_answers(db, sent)
            _write_entities(db, touched, plan)
        batch.clear()

    last_flush = time.monotonic()
    for i, key in enumerate(to_send, start=1):
        answer = geocoder.lookup(plan.queries[key])
        plan.online[key] = answer
        batch.append(answer)
        if answer.reason == "online_stopped":
            summary.online_errors["online_stopped"] += 1
        else:
            summary.online_queries += 1
            if answer.status == STATUS_ERROR:
                summary.online_errors[answer.reason or "error"] += 1
        if len(batch) >= _ONLINE_COMMIT_EVERY or time.monotonic() - last_flush > 15:
            flush()
            last_flush = time.monotonic()
        if progress:
            progress("online", i, len(to_send))
    flush()
    summary.online_requests = geocoder.requests - start_requests


def _summarise(entities: list[Entity], summary: GeocodeSummary) -> None:
    # Counted with Counter.update over generators: the loop runs once per entity.
    rows: list[EntityRow | StoredRow] = []
    for e in entities:
        row = e.written or e.stored
        assert row is not None, "an entity is either written this run or stored before"
        rows.append(row)
    summary.bad_coordinates += sum(e.own_bad for e in entities)
    placed = [row for row in rows if row.lat is not None]
    failed = [row for row in rows if row.lat is None]
    if failed:
        summary.by_precision["none"] += len(failed)
    summary.failures.update((row.error or "not_found").split(":", 1)[0] for row in failed)
    summary.by_precision.update(map(attrgetter("precision"), placed))
    # A placed row's provider is its answer's, the one its cache key starts with.
    summary.by_provider.update(map(attrgetter("provider"), placed))
    gaps = [row.gap_m for row in placed
            if row.gap_m is not None and precision_rank(row.precision) == 0]
    summary.gaps_checked += len(gaps)
    summary.large_gaps += sum(gap > summary.gap_threshold_m for gap in gaps)
