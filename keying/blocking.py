"""Blocking: which register units are compared with which place, in one pass over the register.

The places (thousands) are indexed; the register (up to the 1.7 M units of a national
extract) streams past once and each unit is looked up under its keys:

| kind       | key                                   | finds                              |
|------------|---------------------------------------|------------------------------------|
| verdict    | unit or enterprise number             | the unit a reviewer named          |
| vat        | enterprise number                     | the enterprise a listing names     |
| phone      | E.164 number                          | any number the unit declared       |
| domain     | registered domain of website / e-mail | the unit's own site                |
| address    | (postcode, street core, house number) | the door                           |
| street     | (postcode, street core)               | the street, for places without a   |
|            |                                       | house number                       |
| name       | every word of a name, sorted          | the same name anywhere, even when  |
|            | (articles and legal forms left out)   | each of its words is common        |
| token      | a rare name word                      | the name anywhere in the register  |
| local      | (postcode, name word)                 | the name within the postcode       |
| near       | distance between geocodes             | neighbours within a radius         |

A key shared by more units than its kind's limit says nothing about identity (a chain's
switchboard, a long avenue, the word "Brussels"): it is dropped and counted, never used
half-way. Memory stays bounded by the limits, not by the size of the register.
"""

from __future__ import annotations

import copy
import heapq
import json
import math
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from horeca.keying.config import BlockingConfig
from horeca.keying.records import (
    FUNCTION_WORDS,
    PlaceRecord,
    UnitRecord,
    json_list,
    json_strings,
    prepare_unit,
    quick_tokens,
    valid_point,
)
from horeca.normalize import (
    LEGAL_FORMS,
    normalize_postcode,
    parse_house_number,
    street_core,
)

KINDS = ("verdict", "vat", "phone", "domain", "address", "name", "street", "token", "local",
         "near")
KIND_BIT = {k: 1 << i for i, k in enumerate(KINDS)}
MAX_RANGE = 12  # house-number ranges longer than this are indexed by their ends only
M_PER_DEG = 111_320.0
NEAR_BATCH = 8192  # units whose distances to the places are computed together
_CELL_SPAN = 1 << 32  # cell (row, column) -> one integer: row * span + column


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def name_key(words: Iterable[str]) -> str:
    """A name as a blocking key: its words without articles and legal forms, sorted."""
    return " ".join(sorted({w for w in words if w not in FUNCTION_WORDS
                            and w not in LEGAL_FORMS}))


_NAME_VALUE = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def name_texts(names: Any) -> list[str]:
    """The name strings of a `names` column, fast: register JSON is scanned with a pattern
    rather than decoded (escaped characters are still decoded properly)."""
    if not names:
        return []
    if isinstance(names, str) and '"name"' in names:
        return [json.loads(f'"{t}"') if "\\" in t else t for t in _NAME_VALUE.findall(names)]
    entries = (e.get("name") if isinstance(e, Mapping) else e for e in json_list(names))
    return [t for t in entries if isinstance(t, str)]


def _domain_candidates(value: Any) -> tuple[str, ...]:
    """The host's last two and three labels: whichever is the registered domain, it is one
    of them, and a place's domain is looked up among them without parsing the URL."""
    if not isinstance(value, str) or not value:
        return ()
    host = value.rsplit("@", 1)[-1] if "@" in value else value
    host = host.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].strip().lower().rstrip(".")
    labels = host.split(".")
    if len(labels) < 2:
        return ()
    return (".".join(labels[-2:]), ".".join(labels[-3:])) if len(labels) > 2 else (host,)


def reasons_of(mask: int) -> list[str]:
    return [k for k in KINDS if mask & KIND_BIT[k]]


def _numbers(lo: int | None, hi: int | None) -> list[int]:
    if lo is None:
        return []
    hi = lo if hi is None else hi
    if hi - lo > MAX_RANGE:
        return [lo, hi]
    return list(range(lo, hi + 1))


# ----------------------------------------------------------------------------- unit keys
#
# A register unit's keys, written once per snapshot (keying/register_keys.py) and read by
# every keying run: one string, keys separated by tabs, each a one-letter kind and a value.
# The place side encodes its keys the same way (`_encoded`), so a unit's hits are one set
# intersection. Stored keys are rebuilt whenever this module's source (or a normaliser's)
# changes: see `register_keys.code_fingerprint`.

KEY_SEP = "\t"
_PREFIX = {"vat": "v", "verdict": "#", "phone": "p", "domain": "d", "address": "a",
           "street": "s", "name": "n", "token": "t", "postcode": "P"}
_STREET_COLUMNS = ((("street_fr", "street_nl"), "house_number", "postcode"),
                   (("seat_street_fr", "seat_street_nl"), "seat_house_number",
                    "seat_postcode"))


def _encoded(kind: str, key: Any) -> str:
    value = "|".join(map(str, key)) if isinstance(key, tuple) else str(key)
    return _PREFIX[kind] + value.replace(KEY_SEP, " ")


def register_postcode(value: Any, country: str) -> str | None:
    """A register postcode in the form places use (the register's four digits as they are)."""
    if not value:
        return None
    text = str(value)
    if len(text) == 4 and text.isdigit():  # the register's usual form: no work to do
        return text
    return normalize_postcode(text, country)


def unit_keys(unit: Mapping[str, Any], country: str = "BE") -> str:
    """Every blocking key of one register unit (a `register_units` row), encoded.

    Pure and independent of the keying settings: which keys are used, and which are too
    common to use, is decided when the places are known. Local keys (postcode, name word)
    are not stored: they are the unit's postcodes times its name words."""
    keys: list[tuple[str, Any]] = []
    add = keys.append
    number = unit.get("enterprise_number")
    if number:
        add(("vat", str(number).replace(".", "")))
    for value in (unit.get("unit_id"), number):
        digits = _digits(str(value)) if value else ""
        if digits:
            add(("verdict", digits))
    phones = unit.get("phones")
    if phones:
        for phone in json_strings(phones):
            add(("phone", phone))
    for column in ("websites", "emails"):
        values = unit.get(column)
        if values:
            for value in json_strings(values):
                for cand in _domain_candidates(value):
                    add(("domain", cand))
    for street_columns, number_column, postcode_column in _STREET_COLUMNS:
        code = register_postcode(unit.get(postcode_column), country)
        if not code:
            continue
        add(("postcode", code))
        number_text = unit.get(number_column)
        lo, hi, _ = parse_house_number(str(number_text)) if number_text else (None, None, "")
        for column in street_columns:
            street = unit.get(column)
            core = street_core(street) if street else ""
            if not core:
                continue
            add(("street", (code, core)))
            for n in _numbers(lo, hi):
                add(("address", (code, core, n)))
    words_seen: set[str] = set()
    for text in name_texts(unit.get("names")):
        words = quick_tokens(text)
        key = name_key(words)
        if key:
            add(("name", key))
        words_seen.update(words)
    keys.extend(("token", word) for word in sorted(words_seen))
    return KEY_SEP.join(dict.fromkeys(_encoded(kind, key) for kind, key in keys))


def unit_point(unit: Mapping[str, Any],
               geocode: Mapping[str, Any] | None = None) -> tuple[float, float] | None:
    """Where a unit is: its geocode when it has a valid one, else its own coordinates."""
    point = valid_point(geocode.get("lat"), geocode.get("lon")) if geocode else None
    return point if point is not None else valid_point(unit.get("lat"), unit.get("lon"))


@dataclass
class CandidateSet:
    """The result of blocking: prepared candidate units and, per place, who to compare."""

    units: list[UnitRecord]
    pairs: list[list[tuple[int, int]]]       # per place: (unit index, reason bit mask)
    units_scanned: int = 0
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    truncated_places: int = 0
    sample: list[UnitRecord] = field(default_factory=list)  # uniform sample of the register
    token_df: dict[str, int] = field(default_factory=dict)  # units whose names hold a word

    @property
    def pair_count(self) -> int:
        return sum(len(p) for p in self.pairs)


class Blocker:
    """Index the places, then `offer` every register unit once, then `finish`."""

    def __init__(self, places: Sequence[PlaceRecord], config: BlockingConfig,
                 country: str = "BE", *, sample_size: int = 2000, seed: int = 0,
                 known: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.country = country
        self.places = places
        self.index: dict[str, dict[Any, list[int]]] = {k: {} for k in KINDS if k != "near"}
        lats = [p[0] for place in places for p in place.points]
        self.lat0 = sum(lats) / len(lats) if lats else 50.85
        self.m_per_deg_lon = M_PER_DEG * math.cos(math.radians(self.lat0))
        self.cells: dict[tuple[int, int], list[tuple[int, float, float]]] = {}
        self.place_postcodes: set[str] = set()
        self.near_keep: list[int] = [config.max_nearest] * len(places)
        for i, place in enumerate(places):
            self._index_place(i, place)
        # Units reviewers named ("registered under N") are always candidates of their place.
        by_id = {place.id: i for i, place in enumerate(places)}
        for pid, number in (known or {}).items():
            if pid in by_id and _digits(number):
                self._add("verdict", _digits(number), by_id[pid])
        points = [p for place in places for p in place.points]
        pad = 2 * config.grid_m / M_PER_DEG
        self.extent = ((min(p[0] for p in points) - pad, min(p[1] for p in points) - 2 * pad,
                        max(p[0] for p in points) + pad, max(p[1] for p in points) + 2 * pad)
                       if points else (0.0, 0.0, -1.0, -1.0))
        self.sample_size = sample_size
        self.seed = seed
        # The place-side keys in the units' encoding: one set intersection per unit finds
        # its hits. The places' postcodes are among them: with a name word that hits,
        # they make the local keys.
        self.wanted: dict[str, tuple[str, Any]] = {
            _encoded(kind, key): (kind, key)
            for kind, keys in self.index.items() if kind != "local" for key in keys}
        self.wanted.update((_encoded("postcode", code), ("postcode", code))
                           for code in self.place_postcodes)
        self._start_scan()
        self._limits = {
            "verdict": config.max_units_per_enterprise,
            "vat": config.max_units_per_enterprise, "phone": config.max_units_per_phone,
            "domain": config.max_units_per_domain, "address": config.max_units_per_address,
            "name": config.max_units_per_name,
            "street": config.max_units_per_street, "token": config.max_units_per_token,
            "local": config.max_units_per_local_token,
        }

    def _start_scan(self) -> None:
        """The unit side: empty until units are offered."""
        # Buckets: kind -> key -> unit slots; None once the key has overflowed.
        self.buckets: dict[str, dict[Any, list[int] | None]] = {k: {} for k in self.index}
        # Near: (place, squared distance, position, unit id) of each place's nearest
        # units so far, in parts pruned as they come (see `_nearest`).
        self.near: list[NearParts] = []
        self.retained: list[str] = []   # unit ids, by slot
        self.positions: list[int] = []  # of the retained units in the register
        self.scanned = 0
        self.token_df: dict[str, int] = {}
        # A uniform sample of the register for random pairs: the units whose hashed id is
        # among the `sample_size` smallest (a "bottom-k" sample: the same units whatever
        # the order of the register or how its scan is split between processes).
        self.sample: list[tuple[int, str, int]] = []  # (-hash, unit id, position)
        # Units within the places' extent, waiting for their distances to be computed in
        # one batch: (unit id, position, slot or -1), latitudes, longitudes.
        self._pending: list[tuple[str, int, int]] = []
        self._pending_lat: list[float] = []
        self._pending_lon: list[float] = []

    def fresh(self) -> Blocker:
        """A blocker over the same places with nothing offered yet: the places' index is
        shared, not built again (each slice of a parallel scan starts from one)."""
        other = copy.copy(self)
        other._start_scan()
        return other

    # ------------------------------------------------------------------ places

    def _add(self, kind: str, key: Any, i: int) -> None:
        bucket = self.index[kind].setdefault(key, [])
        if not bucket or bucket[-1] != i:
            bucket.append(i)

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        g = self.config.grid_m
        return (math.floor(lat * M_PER_DEG / g), math.floor(lon * self.m_per_deg_lon / g))

    def _index_place(self, i: int, place: PlaceRecord) -> None:
        min_len = self.config.min_token_length
        for vat in place.vats:
            self._add("vat", vat, i)
        for phone in place.phones:
            self._add("phone", phone, i)
        for domain in place.domains:
            self._add("domain", domain, i)
        postcodes = sorted(place.postcodes)
        self.place_postcodes.update(postcodes)
        for addr in place.addresses:
            if not addr.core or not addr.postcode:
                continue
            for n in _numbers(addr.lo, addr.hi):
                self._add("address", (addr.postcode, addr.core, n), i)
            if addr.lo is None:
                # Without a house number the street is all there is to go on.
                self._add("street", (addr.postcode, addr.core), i)
        for full in place.names.full:
            key = name_key(full.split())
            if key:
                self._add("name", key, i)
        for token in sorted(place.names.tokens):
            if len(token) < min_len:
                continue
            self._add("token", token, i)
            for pc in postcodes:
                self._add("local", (pc, token), i)
        # Each place sits in the 3x3 block of cells around each of its points, so a unit
        # within `grid_m` of the place is found by looking up the unit's own cell only.
        # Places with a full address need only their nearest few neighbours (the door is
        # found by the address key); the others rely on distance more.
        full = any(a.core and a.lo is not None and a.postcode for a in place.addresses)
        keep = self.config.max_nearest_with_address if full else self.config.max_nearest
        self.near_keep[i] = keep
        for lat, lon in set(place.points):
            cy, cx = self._cell(lat, lon)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    self.cells.setdefault((cy + dy, cx + dx), []).append((i, lat, lon))

    # ------------------------------------------------------------------ units

    def _hit(self, kind: str, key: Any, slot: int) -> bool:
        """File the unit under one key; False once the key is too common to mean much."""
        kb = self.buckets[kind]
        bucket = kb.get(key)
        if bucket is None:
            if key in kb:
                return False  # overflowed earlier
            kb[key] = [slot]
            return True
        if len(bucket) >= self._limits[kind]:
            kb[key] = None
            return False
        bucket.append(slot)
        return True

    def offer_row(self, unit: Mapping[str, Any], geocode: Mapping[str, Any] | None = None,
                  position: int | None = None) -> None:
        """Offer a register-unit row as it is (its keys computed here; see `offer`)."""
        self.offer(unit_keys(unit, self.country), str(unit.get("unit_id")),
                   unit_point(unit, geocode), position)

    def offer(self, keys: str, unit_id: str, point: tuple[float, float] | None,
              position: int | None = None) -> None:
        """Look one register unit up under each of its keys (`unit_keys`); keep it if any
        key hits or if it is among some place's nearest units.

        `position` is the unit's place in the register (default: the order of offering),
        which breaks ties the same way whichever process scanned it.

        Written for speed (it runs once per unit of a national register): one set
        intersection finds the unit's keys that some place shares.
        """
        pos = self.scanned if position is None else position
        self.scanned += 1
        if self.sample_size:
            h = zlib.crc32(f"{self.seed}:{unit_id}".encode())
            if len(self.sample) < self.sample_size:
                heapq.heappush(self.sample, (-h, unit_id, pos))
            elif -self.sample[0][0] > h:
                heapq.heapreplace(self.sample, (-h, unit_id, pos))
        slot = len(self.retained)
        kept = False
        parts = keys.split(KEY_SEP)
        found = self.wanted.keys() & parts
        if found:
            wanted, hit = self.wanted, self._hit
            words: list[str] = []
            postcodes: list[str] = []
            for encoded in found:
                kind, key = wanted[encoded]
                if kind == "token":
                    words.append(key)
                elif kind == "postcode":
                    postcodes.append(key)
                else:
                    kept = hit(kind, key, slot) or kept
            if words:
                df, local = self.token_df, self.index["local"]
                for word in words:
                    df[word] = df.get(word, 0) + 1  # counted even once too common
                    kept = hit("token", word, slot) or kept
                    for code in postcodes:
                        if (code, word) in local:
                            kept = hit("local", (code, word), slot) or kept
            if kept:
                self._retain(unit_id, pos)
        if point is not None:
            lat, lon = point
            south, west, north, east = self.extent
            if south <= lat <= north and west <= lon <= east:  # else far from every place
                self._pending.append((unit_id, pos, slot if kept else -1))
                self._pending_lat.append(lat)
                self._pending_lon.append(lon)
                if len(self._pending) >= NEAR_BATCH:
                    self._offer_near()

    def _retain(self, unit_id: str, pos: int) -> int:
        self.retained.append(unit_id)
        self.positions.append(pos)
        return len(self.retained) - 1

    def _cell_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The places' cells as arrays sorted by cell (each cell's entries in the order
        they were filed): cell keys, latitudes, longitudes, place indexes."""
        cached = getattr(self, "_cells_sorted", None)
        if cached is None:
            keys: list[int] = []
            lats: list[float] = []
            lons: list[float] = []
            owners: list[int] = []
            for (cy, cx), entries in sorted(self.cells.items()):
                for i, plat, plon in entries:
                    keys.append(cy * _CELL_SPAN + cx)
                    lats.append(plat)
                    lons.append(plon)
                    owners.append(i)
            cached = (np.array(keys, dtype=np.int64), np.array(lats, dtype=np.float64),
                      np.array(lons, dtype=np.float64), np.array(owners, dtype=np.int64))
            self._cells_sorted = cached
        return cached

    def _offer_near(self) -> None:
        """The pending units' distances to the places around their cell, in one batch;
        only each place's nearest of them are kept (see `_nearest`)."""
        pending = self._pending
        if not pending:
            return
        ekey, elat, elon, owners = self._cell_arrays()
        ulat = np.array(self._pending_lat, dtype=np.float64)
        ulon = np.array(self._pending_lon, dtype=np.float64)
        self._pending, self._pending_lat, self._pending_lon = [], [], []
        g, m_lon = self.config.grid_m, self.m_per_deg_lon
        # the same arithmetic as `_cell` and the distance below, element by element
        ukey = (np.floor(ulat * M_PER_DEG / g).astype(np.int64) * _CELL_SPAN
                + np.floor(ulon * m_lon / g).astype(np.int64))
        left = np.searchsorted(ekey, ukey, side="left")
        counts = np.searchsorted(ekey, ukey, side="right") - left
        total = int(counts.sum())
        if not total:
            return
        uidx = np.repeat(np.arange(len(pending)), counts)
        eidx = np.arange(total) + np.repeat(left - (np.cumsum(counts) - counts), counts)
        dy = (ulat[uidx] - elat[eidx]) * M_PER_DEG
        dx = (ulon[uidx] - elon[eidx]) * m_lon
        d2 = dx * dx + dy * dy
        within = np.flatnonzero(d2 <= self.config.max_distance_m ** 2)
        if not len(within):
            return
        uidx = uidx[within]
        owner, d2, pos = owners[eidx[within]], d2[within], \
            np.array([pos for _uid, pos, _slot in pending], dtype=np.int64)[uidx]
        kept = self._nearest_order(owner, d2, pos)  # unit ids only for the kept entries
        self.near.append((owner[kept], d2[kept], pos[kept],
                          [pending[u][0] for u in uidx[kept].tolist()]))
        if len(self.near) >= NEAR_PARTS:
            self.near = [self._nearest(_concat(self.near))]

    def _nearest(self, found: NearParts) -> NearParts:
        """Of (place, squared distance, position, unit id) entries, each place's
        `near_keep` nearest units: the nearest win and, of two units at the same distance,
        the one earlier in the register (however the scan was split); a unit near two of a
        place's points counts once, at its nearest."""
        owner, d2, pos, uids = found
        order = self._nearest_order(owner, d2, pos)
        return owner[order], d2[order], pos[order], [uids[k] for k in order.tolist()]

    def _nearest_order(self, owner: np.ndarray, d2: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """The indices of the entries `_nearest` keeps, by place then distance."""
        if not len(owner):
            return np.empty(0, dtype=np.int64)
        # one entry per (place, unit): its smallest distance
        order = np.lexsort((d2, pos, owner))
        o, p = owner[order], pos[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (o[1:] != o[:-1]) | (p[1:] != p[:-1])
        order = order[first]
        # each place's nearest, ties to the earlier unit
        order = order[np.lexsort((pos[order], d2[order], owner[order]))]
        o = owner[order]
        starts = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
        rank = np.arange(len(o)) - np.repeat(starts, np.diff(np.r_[starts, len(o)]))
        return order[rank < self._keep_array()[o]]

    def _keep_array(self) -> np.ndarray:
        cached = getattr(self, "_keeps", None)
        if cached is None or len(cached) != len(self.near_keep):
            cached = self._keeps = np.array(self.near_keep, dtype=np.int64)
        return cached

    # ------------------------------------------------------------------ parallel scans

    def partial(self) -> dict[str, Any]:
        """What this blocker found, to be merged with other processes' (`absorb`).

        Only the ids of the units that a key or a neighbourhood still points at travel;
        their positions in the register travel with them: ties are broken by position,
        never by which process found a unit."""
        self._offer_near()
        used: set[int] = set()
        for keys in self.buckets.values():
            for bucket in keys.values():
                if bucket:
                    used.update(bucket)
        order = sorted(used)
        renumber = {slot: k for k, slot in enumerate(order)}
        buckets = {kind: {key: None if bucket is None else [renumber[s] for s in bucket]
                          for key, bucket in keys.items()}
                   for kind, keys in self.buckets.items()}
        near = self._nearest(_concat(self.near))
        return {"buckets": buckets, "near": near, "token_df": self.token_df,
                "retained": [self.retained[slot] for slot in order],
                "positions": [self.positions[slot] for slot in order],
                "scanned": self.scanned, "sample": self.sample}

    def absorb(self, part: Mapping[str, Any]) -> None:
        """Add another process's `partial()` scan of other units, as if offered here."""
        self._offer_near()
        offset = len(self.retained)
        self.retained.extend(part["retained"])
        self.positions.extend(part["positions"])
        self.scanned += part["scanned"]
        for kind, keys in part["buckets"].items():
            mine, limit = self.buckets[kind], self._limits[kind]
            for key, bucket in keys.items():
                if key in mine and mine[key] is None:
                    continue
                if bucket is None:
                    mine[key] = None
                    continue
                merged = (mine.get(key) or []) + [slot + offset for slot in bucket]
                mine[key] = None if len(merged) > limit else merged
        # the nearest, ties to the earlier unit: what one process would have kept
        self.near = [self._nearest(_concat([*self.near, part["near"]]))]
        for word, n in part["token_df"].items():
            self.token_df[word] = self.token_df.get(word, 0) + n
        for entry in part["sample"]:
            if len(self.sample) < self.sample_size:
                heapq.heappush(self.sample, entry)
            elif self.sample and self.sample[0][0] < entry[0]:
                heapq.heapreplace(self.sample, entry)

    # ------------------------------------------------------------------ result

    def finish(self, prepare_many: PrepareMany) -> CandidateSet:
        """The candidates. `prepare_many` reads and prepares the chosen units (and the
        sample) for comparison, given their (position, unit id), e.g. in several
        processes (see `prepare_rows` for units held in memory)."""
        self._offer_near()
        per_place: list[dict[int, int]] = [{} for _ in self.places]
        stats: dict[str, dict[str, int]] = {}
        for kind, keys in self.buckets.items():
            used = dropped = pairs = 0
            for key, bucket in keys.items():
                if bucket is None:
                    dropped += 1
                    continue
                used += 1
                bit = KIND_BIT[kind]
                for i in self.index[kind][key]:
                    cand = per_place[i]
                    for slot in bucket:
                        cand[slot] = cand.get(slot, 0) | bit
                        pairs += 1
            stats[kind] = {"keys": used, "dropped_common_keys": dropped, "pairs": pairs}
        owner, _d2, pos, uids = self._nearest(_concat(self.near))
        slot_of = {p: slot for slot, p in enumerate(self.positions)}
        near_bit = KIND_BIT["near"]
        for i, p, uid in zip(owner.tolist(), pos.tolist(), uids, strict=True):
            slot = slot_of.get(p)
            if slot is None:
                slot = slot_of[p] = self._retain(uid, p)
            per_place[i][slot] = per_place[i].get(slot, 0) | near_bit
        near_pairs = len(uids)
        stats["near"] = {"keys": len(self.cells), "dropped_common_keys": 0, "pairs": near_pairs}
        # Keep the best-supported candidates when a place has too many: more kinds of
        # key first, then the stronger kinds (lower bit = stronger, see KINDS).
        truncated = 0
        cap = self.config.max_candidates_per_place
        position = self.positions
        used_slots: dict[int, int] = {}
        pairs_out: list[list[tuple[int, int]]] = []
        for cand in per_place:
            items = list(cand.items())
            if len(items) > cap:
                truncated += 1
                items.sort(key=lambda it: (-bin(it[1]).count("1"), _strength(it[1]),
                                           position[it[0]]))
                items = items[:cap]
            out = []
            for slot, mask in sorted(items, key=lambda it: position[it[0]]):
                idx = used_slots.setdefault(slot, len(used_slots))
                out.append((idx, mask))
            pairs_out.append(out)
        chosen = sorted(used_slots, key=used_slots.__getitem__)  # in unit index order
        sampled = sorted(self.sample, key=lambda e: (-e[0], e[1]))
        todo = [(self.positions[slot], self.retained[slot]) for slot in chosen] + \
            [(pos, uid) for _h, uid, pos in sampled]
        prepared = prepare_many(todo)
        units, sample = prepared[:len(chosen)], prepared[len(chosen):]
        return CandidateSet(units=units, pairs=pairs_out,
                            units_scanned=self.scanned, stats=stats,
                            truncated_places=truncated, sample=sample,
                            token_df=dict(self.token_df))


# (place index, squared distance in m², position in the register, unit id) arrays
NearParts = tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]
NEAR_PARTS = 16  # batches of near units kept before they are pruned together


def _concat(parts: Sequence[NearParts]) -> NearParts:
    if not parts:
        return (np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.int64), [])
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), [u for p in parts for u in p[3]])


# Reads and prepares units for comparison, given their (position, unit id), in order.
PrepareMany = Callable[[Sequence[tuple[int, str]]], list[UnitRecord]]


def _strength(mask: int) -> int:
    return (mask & -mask).bit_length()  # position of the strongest (lowest) bit


def prepare_rows(units: Sequence[Mapping[str, Any]], *, country: str = "BE",
                 geocodes: Mapping[str, Mapping[str, Any]] | None = None) -> PrepareMany:
    """`finish`'s preparation for units held in memory: position = index in `units`."""
    def prepare(todo: Sequence[tuple[int, str]]) -> list[UnitRecord]:
        return [prepare_unit(units[pos], country=country,
                             geocode=geocodes.get(uid) if geocodes else None)
                for pos, uid in todo]
    return prepare


def block(places: Sequence[PlaceRecord], units: Iterable[Mapping[str, Any]],
          config: BlockingConfig, *, country: str = "BE",
          geocodes: Mapping[str, Mapping[str, Any]] | None = None,
          sample_size: int = 2000, seed: int = 0,
          known: Mapping[str, str] | None = None) -> CandidateSet:
    """Candidates for every place from one pass over `units` (register-unit dicts held in
    memory; the store's register is scanned through its stored keys, see store_io.py).

    `geocodes` maps unit_id -> {lat, lon}; a unit's own lat/lon is used when absent.
    """
    rows = list(units)
    blocker = Blocker(places, config, country, sample_size=sample_size, seed=seed,
                      known=known)
    for unit in rows:
        blocker.offer_row(unit, geocodes.get(str(unit.get("unit_id"))) if geocodes else None)
    return blocker.finish(prepare_rows(rows, country=country, geocodes=geocodes))
