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

import json
import math
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any, NamedTuple

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
NEAR_BATCH = 65_536  # units whose distances to the places are computed together
NEAR_FIRST_BATCH = 4096
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
# every keying run: one string, keys separated by tabs, each a one-letter kind and a value,
# and each key's 64-bit hash (`key_hashes`). The place side encodes and hashes its keys the
# same way (`_encoded`), so the hits of a batch of units are one numpy membership test (see
# `Blocker.offer_batch`). Stored keys are rebuilt whenever this module's source (or a
# normaliser's) changes: see `register_keys.code_fingerprint`.

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


# The register side of blocking is one numpy membership test per batch of units: a unit's
# keys are stored as 64-bit hashes, the places' keys are hashed the same way, and only the
# hits reach Python. Two different keys share a hash with odds of 1 in 2^64 per pair
# (about 1 in 10^8 for a national run's ~25 M unit keys against ~20,000 place keys); then
# the unit is counted under a key it does not have.
HASH = np.dtype("<u8")
_KIND_CODE = {kind: code for code, kind in enumerate((*KINDS, "postcode"))}


def key_hashes(encoded: Iterable[str]) -> bytes:
    """The 64-bit hashes of encoded keys, packed (as `register_unit_keys.key_hashes`)."""
    return b"".join(blake2b(key.encode(), digest_size=8).digest() for key in encoded)


class UnitEntry(NamedTuple):
    """What the register scan needs of a unit: its id, its keys (as `unit_keys`, and
    hashed) and its position (None when unknown)."""

    unit_id: str
    keys: str
    hashes: bytes
    lat: float | None
    lon: float | None


def unit_entry(unit: Mapping[str, Any], country: str = "BE",
               geocode: Mapping[str, Any] | None = None) -> UnitEntry:
    keys = unit_keys(unit, country)
    point = unit_point(unit, geocode)
    lat, lon = point if point is not None else (None, None)
    return UnitEntry(str(unit.get("unit_id")), keys,
                     key_hashes(keys.split(KEY_SEP)) if keys else b"", lat, lon)


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
        # The places' keys as sorted hashes, for the membership test of `offer_batch`:
        # what each is (kind, key), and for names and postcodes their ordinal, from
        # which the local keys (postcode, name word) are made.
        entries = sorted((hash_, kind, key) for hash_, (kind, key) in zip(
            np.frombuffer(key_hashes(self.wanted), dtype=HASH).tolist(),
            self.wanted.values(), strict=True))
        self._wanted_hash = np.array([e[0] for e in entries], dtype=HASH)
        self._wanted: list[tuple[str, Any]] = [(kind, key) for _h, kind, key in entries]
        words = sorted({key for kind, key in self._wanted if kind == "token"})
        codes = sorted({key for kind, key in self._wanted if kind == "postcode"})
        word_ord = {w: k for k, w in enumerate(words)}
        code_ord = {c: k for k, c in enumerate(codes)}
        self._kind = np.array([_KIND_CODE[kind] for kind, _key in self._wanted], dtype=np.int8)
        self._word = np.array([word_ord.get(key, -1) if kind == "token" else -1
                               for kind, key in self._wanted], dtype=np.int64)
        self._code = np.array([code_ord.get(key, -1) if kind == "postcode" else -1
                               for kind, key in self._wanted], dtype=np.int64)
        self._n_words = max(1, len(words))
        local = sorted((code_ord[code] * self._n_words + word_ord[word], (code, word))
                       for code, word in self.index["local"]
                       if code in code_ord and word in word_ord)
        self._local_code = np.array([c for c, _key in local], dtype=np.int64)
        self._local: list[tuple[str, Any]] = [("local", key) for _c, key in local]
        # What the units offered so far hit: (register positions, wanted or local key ids)
        self._hits: list[tuple[np.ndarray, np.ndarray]] = []
        self._local_hits: list[tuple[np.ndarray, np.ndarray]] = []
        # Near: (place, squared distance, position) of each place's nearest units so
        # far (see `_nearest`), and the farthest of them for the places that have them all.
        self.near: NearParts = _concat([])
        self._near_bound = np.full(len(self.places), np.inf)
        self._near_units = 0  # units offered to `_offer_near` so far
        self.scanned = 0
        # A uniform sample of the register for random pairs: the units whose hashed id is
        # among the `sample_size` smallest (a "bottom-k" sample: the same units whatever
        # the order in which the register is offered). (hash, unit id, position), sorted.
        self.sample: list[tuple[int, str, int]] = []

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

    def offer_rows(self, rows: Sequence[Mapping[str, Any]],
                   geocodes: Mapping[str, Mapping[str, Any]] | None = None,
                   first_position: int = 0) -> None:
        """Offer register-unit rows as they are (their keys computed here), at positions
        `first_position`, `first_position + 1`, ... of the register."""
        entries = [unit_entry(row, self.country, geocodes.get(str(row.get("unit_id")))
                              if geocodes else None) for row in rows]
        self.offer_batch(range(first_position, first_position + len(entries)),
                         [e.unit_id for e in entries], b"".join(e.hashes for e in entries),
                         [len(e.hashes) // HASH.itemsize for e in entries],
                         [e.lat for e in entries], [e.lon for e in entries])

    def offer_batch(self, positions: Sequence[int], unit_ids: Sequence[str], hashes: bytes,
                    counts: Sequence[int], lats: Sequence[float | None],
                    lons: Sequence[float | None]) -> None:
        """Look register units up under each of their keys and among the places'
        neighbours. Unit k is at `positions[k]` in the register (which breaks ties, in
        whatever order and batches units are offered), its keys are the next `counts[k]`
        hashes of `hashes` (`key_hashes` of its `unit_keys`), and (lats[k], lons[k]) is
        where it is (None or NaN: unknown).

        Written for speed (it sees every unit of a national register): one numpy
        membership test finds the keys that some place shares; which of them are too
        common to use is decided at `finish`, once every unit has been counted.
        """
        n = len(unit_ids)
        if not n:
            return
        pos = np.asarray(positions, dtype=np.int64)
        self.scanned += n
        self._sample_batch(unit_ids, pos)
        found = np.frombuffer(hashes, dtype=HASH)
        wanted = self._wanted_hash
        if len(found) and len(wanted):
            owner = np.repeat(np.arange(n), np.asarray(counts, dtype=np.int64))
            at = np.minimum(np.searchsorted(wanted, found), len(wanted) - 1)
            hit = wanted[at] == found
            unit, key = owner[hit], at[hit]  # by unit, in the order offered
            kind = self._kind[key]
            postcode = kind == _KIND_CODE["postcode"]
            self._hits.append((pos[unit[~postcode]], key[~postcode]))
            if len(self._local_code):
                self._offer_local(pos, unit, key, kind, postcode)
        lat = np.asarray(lats, dtype=np.float64)
        lon = np.asarray(lons, dtype=np.float64)
        south, west, north, east = self.extent
        # NaN (no position) compares false: left out with the units far from every place
        inside = np.flatnonzero((lat >= south) & (lat <= north) & (lon >= west) & (lon <= east))
        first = 0
        while first < len(inside):
            # batches doubling from a small first one: the places' bounds (see
            # `_offer_near`) tighten early and leave little of the later ones to sort
            size = min(NEAR_BATCH, max(NEAR_FIRST_BATCH, self._near_units))
            part = inside[first:first + size]
            first += size
            self._near_units += len(part)
            self._offer_near(pos[part], lat[part], lon[part])

    def _offer_local(self, pos: np.ndarray, unit: np.ndarray, key: np.ndarray,
                     kind: np.ndarray, postcode: np.ndarray) -> None:
        """The local keys (postcode, name word) of the units' hits: each name word a
        unit shares with the places, with each of the places' postcodes it has."""
        token = kind == _KIND_CODE["token"]
        t_unit, t_word = unit[token], self._word[key[token]]
        p_unit, p_code = unit[postcode], self._code[key[postcode]]
        if not len(t_unit) or not len(p_unit):
            return
        ti, pi = _equal_ranges(p_unit, t_unit)
        if not len(ti):
            return
        code = p_code[pi] * self._n_words + t_word[ti]
        at = np.minimum(np.searchsorted(self._local_code, code), len(self._local_code) - 1)
        ok = self._local_code[at] == code
        self._local_hits.append((pos[t_unit[ti[ok]]], at[ok]))

    def _sample_batch(self, unit_ids: Sequence[str], pos: np.ndarray) -> None:
        size = self.sample_size
        if not size:
            return
        seed = self.seed
        hashed = np.fromiter((zlib.crc32(f"{seed}:{uid}".encode()) for uid in unit_ids),
                             dtype=np.int64, count=len(unit_ids))
        if len(self.sample) >= size:
            keep = np.flatnonzero(hashed <= self.sample[-1][0])
        else:
            keep = np.argsort(hashed, kind="stable")[:size]
        if len(keep):
            self.sample = sorted([*self.sample, *(
                (int(hashed[k]), unit_ids[k], int(pos[k])) for k in keep.tolist())])[:size]

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

    def _offer_near(self, upos: np.ndarray, ulat: np.ndarray, ulon: np.ndarray) -> None:
        """The units' distances to the places around their cell, in one batch; only each
        place's nearest of them are kept (see `_nearest`)."""
        if not len(upos):
            return
        ekey, elat, elon, owners = self._cell_arrays()
        g, m_lon = self.config.grid_m, self.m_per_deg_lon
        # the same arithmetic as `_cell` and the distance below, element by element
        ukey = (np.floor(ulat * M_PER_DEG / g).astype(np.int64) * _CELL_SPAN
                + np.floor(ulon * m_lon / g).astype(np.int64))
        uidx, eidx = _equal_ranges(ekey, ukey)
        if not len(uidx):
            return
        dy = (ulat[uidx] - elat[eidx]) * M_PER_DEG
        dx = (ulon[uidx] - elon[eidx]) * m_lon
        d2 = dx * dx + dy * dy
        owner = owners[eidx]
        # A place that already has its `near_keep` nearest units can only take a unit no
        # farther than the farthest of them (at the same distance, position decides).
        within = np.flatnonzero((d2 <= self.config.max_distance_m ** 2)
                                & (d2 <= self._near_bound[owner]))
        if not len(within):
            return
        found = (owner[within], d2[within], upos[uidx[within]])
        self.near = self._nearest(_concat([self.near, found]))
        owner, d2, _pos = self.near
        if not len(owner):
            return  # no place keeps any neighbour (`max_nearest` = 0)
        last = np.flatnonzero(np.r_[owner[1:] != owner[:-1], True])  # each place's farthest
        full = np.diff(np.r_[-1, last]) >= self._keep_array()[owner[last]]
        self._near_bound[owner[last[full]]] = d2[last[full]]

    def _nearest(self, found: NearParts) -> NearParts:
        """Of (place, squared distance, position) entries, each place's `near_keep`
        nearest units: the nearest win and, of two units at the same distance, the one
        earlier in the register (in whatever order units were offered); a unit near two
        of a place's points counts once, at its nearest."""
        owner, d2, pos = found
        order = self._nearest_order(owner, d2, pos)
        return owner[order], d2[order], pos[order]

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
        """What the units offered here hit, to be added to another process's blocker
        over the same places (`absorb`)."""
        return {"hits": self._hits, "local_hits": self._local_hits, "near": self.near,
                "scanned": self.scanned, "sample": self.sample}

    def absorb(self, part: Mapping[str, Any]) -> None:
        """Add another process's `partial()` scan of other units, as if offered here: the
        same candidates, whichever process offered which units."""
        self._hits.extend(part["hits"])
        self._local_hits.extend(part["local_hits"])
        self.near = self._nearest(_concat([self.near, part["near"]]))
        self.scanned += part["scanned"]
        self.sample = sorted([*self.sample, *part["sample"]])[:self.sample_size]

    def _buckets(self) -> tuple[dict[str, dict[Any, list[int] | None]], dict[str, int]]:
        """kind -> key -> the positions of the units filed under it, in register order
        (None for a key shared by more units than its kind's limit); and for each of the
        places' name words, how many units' names hold it (counted even when too common)."""
        buckets: dict[str, dict[Any, list[int] | None]] = {k: {} for k in self.index}
        token_df: dict[str, int] = {}
        for hits, keys in ((self._hits, self._wanted), (self._local_hits, self._local)):
            if not hits:
                continue
            pos = np.concatenate([h[0] for h in hits])
            key = np.concatenate([h[1] for h in hits])
            if not len(key):
                continue
            order = np.lexsort((pos, key))
            pos, key = pos[order], key[order]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]).tolist()
            ends = [*starts[1:], len(key)]
            ids = key[starts].tolist()
            positions = pos.tolist()
            for k, first, end in zip(ids, starts, ends, strict=True):
                kind, value = keys[k]
                if kind == "token":
                    token_df[value] = end - first
                too_many = end - first > self._limits[kind]
                buckets[kind][value] = None if too_many else positions[first:end]
        return buckets, token_df

    # ------------------------------------------------------------------ result

    def finish(self, prepare_many: PrepareMany) -> CandidateSet:
        """The candidates. `prepare_many` reads and prepares the chosen units (and the
        sample) for comparison, given their positions in the register, e.g. in several
        processes (see `prepare_rows` for units held in memory)."""
        per_place: list[dict[int, int]] = [{} for _ in self.places]  # position -> mask
        stats: dict[str, dict[str, int]] = {}
        buckets, token_df = self._buckets()
        for kind, keys in buckets.items():
            used = dropped = pairs = 0
            bit = KIND_BIT[kind]
            for key, bucket in keys.items():
                if bucket is None:
                    dropped += 1
                    continue
                used += 1
                for i in self.index[kind][key]:
                    cand = per_place[i]
                    for p in bucket:
                        cand[p] = cand.get(p, 0) | bit
                    pairs += len(bucket)
            stats[kind] = {"keys": used, "dropped_common_keys": dropped, "pairs": pairs}
        owner, _d2, near_pos = self.near
        near_bit = KIND_BIT["near"]
        for i, p in zip(owner.tolist(), near_pos.tolist(), strict=True):
            per_place[i][p] = per_place[i].get(p, 0) | near_bit
        stats["near"] = {"keys": len(self.cells), "dropped_common_keys": 0,
                         "pairs": len(near_pos)}
        # Keep the best-supported candidates when a place has too many: more kinds of
        # key first, then the stronger kinds (lower bit = stronger, see KINDS).
        truncated = 0
        cap = self.config.max_candidates_per_place
        index_of: dict[int, int] = {}  # position -> unit index
        pairs_out: list[list[tuple[int, int]]] = []
        for cand in per_place:
            items = list(cand.items())
            if len(items) > cap:
                truncated += 1
                items.sort(key=lambda it: (-bin(it[1]).count("1"), _strength(it[1]), it[0]))
                items = items[:cap]
            items.sort()
            pairs_out.append([(index_of.setdefault(p, len(index_of)), mask)
                              for p, mask in items])
        chosen = list(index_of)  # in unit index order
        prepared = prepare_many(chosen + [pos for _h, _uid, pos in self.sample])
        units, sample = prepared[:len(chosen)], prepared[len(chosen):]
        return CandidateSet(units=units, pairs=pairs_out,
                            units_scanned=self.scanned, stats=stats,
                            truncated_places=truncated, sample=sample,
                            token_df=token_df)


# (place index, squared distance in m², position in the register) arrays
NearParts = tuple[np.ndarray, np.ndarray, np.ndarray]


def _concat(parts: Sequence[NearParts]) -> NearParts:
    if not parts:
        return (np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.int64))
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


# Reads and prepares units for comparison, given their positions in the register, in order.
PrepareMany = Callable[[Sequence[int]], list[UnitRecord]]


def _equal_ranges(values: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (k, i) with queries[k] == values[i], `values` sorted: the arrays of k and
    of i, by k then i."""
    left = np.searchsorted(values, queries, side="left")
    counts = np.searchsorted(values, queries, side="right") - left
    query = np.repeat(np.arange(len(queries)), counts)
    at = np.arange(int(counts.sum())) + np.repeat(left - (np.cumsum(counts) - counts), counts)
    return query, at


def _strength(mask: int) -> int:
    return (mask & -mask).bit_length()  # position of the strongest (lowest) bit


def prepare_rows(units: Sequence[Mapping[str, Any]], *, country: str = "BE",
                 geocodes: Mapping[str, Mapping[str, Any]] | None = None) -> PrepareMany:
    """`finish`'s preparation for units held in memory: position = index in `units`."""
    def prepare(positions: Sequence[int]) -> list[UnitRecord]:
        return [prepare_unit(units[pos], country=country,
                             geocode=geocodes.get(str(units[pos].get("unit_id")))
                             if geocodes else None)
                for pos in positions]
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
    blocker.offer_rows(rows, geocodes)
    return blocker.finish(prepare_rows(rows, country=country, geocodes=geocodes))
