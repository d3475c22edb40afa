"""The offline gazetteer: an in-memory index of streets per postcode, and address matching.

Built once per run from the `gazetteer_streets` (segments: numbers interpolate linearly
from `house_from` to `house_to`) and `gazetteer_addresses` (BeST Address points, their
streets in `gazetteer_address_streets`) tables.

Matching a query, in order:

1. the postcode's area (or, without a postcode, the areas of the named locality);
2. the street by its normalised name in any language (FR, NL, DE are all indexed), then
   by its `street_core` (type words and articles removed), then fuzzily (rapidfuzz) among
   the streets of the same postcode, then by exact name in the other postcodes of the
   same municipality (platforms often give the wrong one of a city's postcodes);
3. the house number: an exact point (a letter suffix falls back to the plain number);
   else the segment that holds it; else linear interpolation between the neighbouring
   numbers on the same side of the street (same parity);
4. fallbacks: the street's centroid (precision `street`), the postcode's centroid
   (`postcode`), the locality's centroid (`locality`).

Boxes play no part: all boxes of a building share its position.
"""

from __future__ import annotations

import bisect
import marshal
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import groupby
from operator import itemgetter

import sqlite_utils
from rapidfuzz import fuzz, process

from horeca.geocode.geo import centroid, lerp
from horeca.geocode.model import (
    GAZETTEER,
    STATUS_NOT_FOUND,
    STATUS_OK,
    AddressQuery,
    Answer,
)
from horeca.normalize import (
    fold,
    normalize_postcode,
    normalize_street,
    parse_house_number,
    street_core,
)
from horeca.store import param_batches, source_fingerprint, transaction

Point = tuple[float, float]
# An address point as the index build reads it: (street id, number, suffix, lat, lon).
PointRow = tuple[int | None, int, str, float, float]

DEFAULT_FUZZY_CUTOFF = 85.0
# A fuzzy match on the whole name must also agree on the identity part: "rue de la paix"
# and "rue de la paille" score 86 on the whole name but only 60 on "paix" / "paille".
_CORE_AGREEMENT = 70.0


@dataclass
class Segment:
    house_from: int
    house_to: int
    start: Point
    end: Point
    lo: int = field(init=False)
    hi: int = field(init=False)

    def __post_init__(self) -> None:
        self.lo, self.hi = sorted((self.house_from, self.house_to))

    def contains(self, number: int) -> bool:
        return self.lo <= number <= self.hi

    def same_side(self, number: int) -> bool:
        return self.house_from % 2 == self.house_to % 2 == number % 2

    def position(self, number: int) -> Point:
        span = self.house_to - self.house_from
        t = 0.5 if span == 0 else (number - self.house_from) / span
        return lerp(self.start, self.end, t)


@dataclass
class Street:
    postcode: str
    label: str                           # a display name, for `matched`
    names: set[str] = field(default_factory=set)   # normalised names, every language
    langs: dict[str, str] = field(default_factory=dict)   # language -> normalised name
    segments: list[Segment] = field(default_factory=list)
    # (number, suffix) -> (sum of lat, sum of lon, count): duplicates are averaged.
    sums: dict[tuple[int, str], tuple[float, float, int]] = field(default_factory=dict,
                                                                  repr=False)
    # Points read in bulk: lists of PointRow sorted by (number, suffix).
    batches: list[list[PointRow]] = field(default_factory=list, repr=False)
    lettered: dict[tuple[int, str], Point] = field(default_factory=dict)   # "12A" etc.
    plain: dict[int, Point] = field(default_factory=dict)   # number -> a point, any suffix
    sides: dict[int, tuple[list[int], list[Point]]] = field(default_factory=dict)
    center: Point | None = None

    def add_point(self, number: int, suffix: str, lat: float, lon: float) -> None:
        key = (number, suffix)
        prev = self.sums.get(key)
        self.sums[key] = (lat, lon, 1) if prev is None else (
            prev[0] + lat, prev[1] + lon, prev[2] + 1)

    def add_sorted_points(self, rows: list[PointRow]) -> None:
        """Rows sorted by (number, suffix): the index build's fast path (the usual street
        has one such list, with one row per number and suffix)."""
        self.batches.append(rows)

    def finalize(self) -> None:
        if (self.sums or len(self.batches) > 1
                or (self.batches and not self._index_points(self.batches[0]))):
            # Slow path: points from several lists or one by one, or a number written
            # twice ("12a", "12A"): duplicates are averaged.
            for batch in self.batches:
                for _street_id, number, suffix, lat, lon in batch:
                    self.add_point(number, suffix, lat, lon)
            self._index_points(sorted(
                (None, number, suffix, *((a, b) if n == 1 else (a / n, b / n)))
                for (number, suffix), (a, b, n) in self.sums.items()))
        self.sums, self.batches = {}, []
        ends = [p for s in self.segments for p in (s.start, s.end)]
        self.center = centroid([*self.plain.values(), *ends])

    def _index_points(self, rows: Iterable[PointRow]) -> bool:
        """Index points sorted by (number, suffix); False, and nothing indexed, when a
        (number, suffix) comes twice.

        A number's plain point is its own, else its first lettered one ("12A" for "12");
        each side of the street (odd, even) keeps its numbers in order for interpolation.
        """
        plain: dict[int, Point] = {}
        lettered: dict[tuple[int, str], Point] = {}
        sides: tuple[tuple[list[int], list[Point]], ...] = (([], []), ([], []))
        for _street_id, number, suffix, lat, lon in rows:
            point = (lat, lon)
            if suffix:
                key = (number, suffix)
                if key in lettered:
                    return False
                lettered[key] = point
            if number not in plain:   # "" sorts first: a number's own point comes first
                plain[number] = point
                numbers, positions = sides[number % 2]
                numbers.append(number)
                positions.append(point)
            elif not suffix:
                return False
        self.plain, self.lettered = plain, lettered
        self.sides = {side: pair for side, pair in enumerate(sides) if pair[0]}
        return True

    def knows(self, number: int) -> bool:
        """Whether this street has the number itself (a point, or a segment holding it)."""
        return number in self.plain or any(s.lo <= number <= s.hi for s in self.segments)

    def locate(self, number: int, suffix: str) -> tuple[Point, str] | None:
        """(position, method) of a number on this street, or None when it cannot be placed
        between known numbers (the caller falls back to the street's centroid)."""
        point = (suffix and self.lettered.get((number, suffix))) or self.plain.get(number)
        if point is not None:
            return point, "exact"
        if self.segments:
            holding = [s for s in self.segments if s.lo <= number <= s.hi]
            if holding:
                seg = next((s for s in holding if s.same_side(number)), holding[0])
                return seg.position(number), "segment"
        numbers, points = self.sides.get(number % 2) or ([], [])
        i = bisect.bisect_left(numbers, number)
        if 0 < i < len(numbers):
            lo_n, hi_n = numbers[i - 1], numbers[i]
            return lerp(points[i - 1], points[i], (number - lo_n) / (hi_n - lo_n)), "interpolated"
        if numbers:
            j = 0 if i == 0 else len(numbers) - 1
            return points[j], "nearest_number"
        return None


@dataclass
class Area:
    """One postcode: its streets indexed by every normalised name and by core."""

    postcode: str
    municipalities: set[str] = field(default_factory=set)   # folded names
    label: str = ""
    # A name can belong to two streets of one postcode: "Avenue X" and "Boulevard X" are
    # both "X-laan" in Dutch.
    by_name: dict[str, list[Street]] = field(default_factory=dict)
    by_core: dict[str, list[Street]] = field(default_factory=dict)
    streets: list[Street] = field(default_factory=list)
    name_choices: list[str] = field(default_factory=list)
    center: Point | None = None

    def finalize(self) -> None:
        for street in self.streets:
            street.finalize()
        self.by_core = defaultdict(list)
        for name, streets in self.by_name.items():
            core = street_core(name)
            for street in streets:
                if core and street not in self.by_core[core]:
                    self.by_core[core].append(street)
        self.by_core = dict(self.by_core)
        self.name_choices = list(self.by_name)
        self.center = centroid(s.center for s in self.streets if s.center is not None)


@dataclass(slots=True)
class StreetMatch:
    street: Street
    how: str            # name | alt_name | core | fuzzy | other_postcode
    score: float = 100.0


LANGS = ("fr", "nl", "de")


def pick(streets: list[Street], number: int | None) -> Street:
    """One of the streets sharing a name: the one that has the number, else the first."""
    if len(streets) > 1 and number is not None:
        for street in streets:
            if street.knows(number):
                return street
    return streets[0]


class Gazetteer:
    """Streets per postcode; build with `add_*` then `finalize()`, or use `load_gazetteer`."""

    def __init__(self, fuzzy_cutoff: float = DEFAULT_FUZZY_CUTOFF) -> None:
        self.fuzzy_cutoff = fuzzy_cutoff
        self.areas: dict[str, Area] = {}
        self.localities: dict[str, set[str]] = defaultdict(set)   # folded name -> postcodes
        self._streets: dict[tuple[str, str, str], Street] = {}   # (postcode, lang, name)
        self._resolved: dict[tuple[str, tuple[str | None, ...], tuple[str | None, ...]],
                             Street | None] = {}

    # ------------------------------------------------------------------ building
    def __len__(self) -> int:
        return sum(len(a.streets) for a in self.areas.values())

    def _area(self, postcode: str, municipalities: Iterable[str | None]) -> Area:
        area = self.areas.get(postcode)
        if area is None:
            area = self.areas[postcode] = Area(postcode=postcode)
        for name in municipalities:
            if name:
                folded = fold(name)
                if folded and folded not in area.municipalities:
                    area.municipalities.add(folded)
                    self.localities[folded].add(postcode)
                    area.label = area.label or name
        return area

    def _street(self, area: Area, names: Iterable[str | None]) -> Street | None:
        """The street with these names (FR, NL, DE in that order), created if new.

        Two sources describe the same street when they agree on a name in one language
        and disagree in none: "Avenue X / X-laan" and "Boulevard X / X-laan" stay two.
        """
        given = [(lang, raw, normalize_street(raw)) for lang, raw in zip(LANGS, names,
                                                                          strict=False)
                 if raw and raw.strip()]
        tagged = {lang: name for lang, _raw, name in given if name}
        if not tagged:
            return None
        street = None
        for lang, name in tagged.items():
            known = self._streets.get((area.postcode, lang, name))
            if known is not None and all(known.langs.get(lg, nm) == nm
                                         for lg, nm in tagged.items()):
                street = known
                break
        if street is None:
            street = Street(postcode=area.postcode, label=given[0][1])
            area.streets.append(street)
        for lang, name in tagged.items():
            street.langs.setdefault(lang, name)
            self._streets.setdefault((area.postcode, lang, name), street)
            if name not in street.names:
                street.names.add(name)
                homonyms = area.by_name.setdefault(name, [])
                homonyms.append(street)
        return street

    def _resolve(self, postcode: str, street_names: tuple[str | None, ...],
                 municipalities: tuple[str | None, ...]) -> Street | None:
        # Address points come sorted by street, thousands per street: resolving names
        # once per distinct (postcode, names) keeps the index build fast.
        memo_key = (postcode, street_names, municipalities)
        if memo_key in self._resolved:
            return self._resolved[memo_key]
        area = self._area(postcode, municipalities)
        street = self._resolved[memo_key] = self._street(area, street_names)
        return street

    def add_segment(self, *, postcode: str, street_names: Iterable[str | None],
                    municipalities: Iterable[str | None], house_from: int, house_to: int,
                    start: Point, end: Point) -> None:
        street = self._resolve(postcode, tuple(street_names), tuple(municipalities))
        if street is not None:
            street.segments.append(Segment(house_from, house_to, start, end))

    def add_point(self, *, postcode: str, street_names: Iterable[str | None],
                  municipalities: Iterable[str | None], house_number: str | None,
                  lat: float, lon: float) -> None:
        street = self._resolve(postcode, tuple(street_names), tuple(municipalities))
        if street is None:
            return
        first, _last, suffix = parse_house_number(house_number)
        if first is not None:
            street.add_point(first, suffix, lat, lon)

    def finalize(self) -> Gazetteer:
        self._resolved = {}
        for area in self.areas.values():
            area.finalize()
        self.localities = dict(self.localities)
        return self

    def absorb(self, other: Gazetteer) -> None:
        """Add the areas of another finalised gazetteer built on other postcodes: an area
        is built from its own postcode's rows only, so areas loaded apart combine as
        they are."""
        self.areas.update(other.areas)
        for name, postcodes in other.localities.items():
            self.localities.setdefault(name, set()).update(postcodes)

    # ------------------------------------------------------------------ matching
    def match(self, query: AddressQuery) -> Answer:
        """The best position the gazetteer can give for one query (never raises)."""
        # The query used is the normalised key itself: street|number|postcode|locality|country.
        asked = query.gazetteer_key
        area = self.areas.get(query.postcode) if query.postcode else None
        if area is not None and query.street:
            # The common case, first and cheap: the street by its name in the postcode.
            streets = area.by_name.get(query.street)
            if streets:
                return self._on_street(query, asked, pick(streets, query.number), "name")
        if area is not None:
            areas = [area]
        else:
            areas = [self.areas[p] for p in sorted(self.localities.get(query.locality, ()))
                     if p in self.areas]
        if not areas:
            return self._not_found(query, asked, "postcode and locality not in the gazetteer")
        if query.street:
            found = self._find_street(areas, query)
            if found is not None:
                return self._on_street(query, asked, found.street, found.how, found.score)
        if area is not None:
            if area.center is None:
                return self._not_found(query, asked, "postcode has no positions")
            note = f"street not found: {query.street}; " if query.street else ""
            return self._answer(query, asked, area.center, "postcode", "postcode_centroid",
                                f"{note}postcode {area.postcode}")
        centers = [a.center for a in areas if a.center is not None]
        point = centroid(centers)
        if point is None:
            return self._not_found(query, asked, "locality has no positions")
        note = f"street not found: {query.street}; " if query.street else ""
        return self._answer(query, asked, point, "locality", "locality_centroid",
                            f"{note}locality {query.locality}")

    def _find_street(self, areas: list[Area], query: AddressQuery) -> StreetMatch | None:
        for area in areas:   # the common case, first and cheap
            streets = area.by_name.get(query.street)
            if streets:
                return StreetMatch(pick(streets, query.number), "name")
        names = [(query.street, "name")]
        if query.street_alt and query.street_alt != query.street:
            names.append((query.street_alt, "alt_name"))
        for name, how in names:
            for area in areas:
                streets = area.by_name.get(name)
                if streets:
                    return StreetMatch(pick(streets, query.number), how)
        for name, _how in names:
            found = self._by_core(areas, name)
            if found is not None:
                return found
        best: StreetMatch | None = None
        for name, _how in names:
            for area in areas:
                found = self._fuzzy(area, name, query.number)
                if found is not None and (best is None or found.score > best.score):
                    best = found
        if best is not None:
            return best
        return self._in_sibling_postcodes(areas, [n for n, _ in names], query.number)

    def _by_core(self, areas: list[Area], name: str) -> StreetMatch | None:
        core = street_core(name)
        if not core:
            return None
        candidates = [s for a in areas for s in a.by_core.get(core, ())]
        if not candidates:
            return None
        # Several streets can share a core (Rue / Place Sainte-Catherine): the closest
        # whole name decides.
        scored = [(max(fuzz.ratio(name, n) for n in s.names), s) for s in candidates]
        score, street = max(scored, key=lambda pair: pair[0])
        return StreetMatch(street, "core", score)

    def _fuzzy(self, area: Area, name: str, number: int | None) -> StreetMatch | None:
        if not area.name_choices:
            return None
        query_core = street_core(name)
        for choice, score, _ in process.extract(
                name, area.name_choices, scorer=fuzz.ratio, score_cutoff=self.fuzzy_cutoff,
                limit=5):
            choice_core = street_core(choice)
            if (query_core and choice_core and query_core != name
                    and fuzz.ratio(query_core, choice_core) < _CORE_AGREEMENT):
                continue
            return StreetMatch(pick(area.by_name[choice], number), "fuzzy", float(score))
        return None

    def _in_sibling_postcodes(self, areas: list[Area], names: list[str],
                              number: int | None) -> StreetMatch | None:
        seen = {a.postcode for a in areas}
        siblings = sorted({p for a in areas for m in a.municipalities
                           for p in self.localities.get(m, ())} - seen)
        for postcode in siblings:
            area = self.areas.get(postcode)
            if area is None:
                continue
            for name in names:
                streets = area.by_name.get(name)
                if streets:
                    return StreetMatch(pick(streets, number), "other_postcode")
        return None

    def _on_street(self, query: AddressQuery, asked: str, street: Street, found_by: str,
                   score: float = 100.0) -> Answer:
        if found_by in ("name", "alt_name"):
            how = ""
        elif found_by == "fuzzy":
            how = f" (fuzzy {score:.0f})"
        else:
            how = f" ({found_by})"
        if query.number is not None:
            located = street.locate(query.number, query.suffix)
            if located is not None:
                point, method = located
                precision = "street" if method == "nearest_number" else "house_number"
                return self._answer(query, asked, point, precision, method,
                                    f"{street.label} {query.number}{query.suffix}, "
                                    f"{street.postcode}{how}")
        if street.center is None:
            return self._not_found(query, asked, f"street {street.label} has no positions")
        return self._answer(query, asked, street.center, "street", "street_centroid",
                            f"{street.label}, {street.postcode}{how}")

    @staticmethod
    def _answer(query: AddressQuery, asked: str, point: Point, precision: str, method: str,
                matched: str) -> Answer:
        return Answer(GAZETTEER, query.gazetteer_key, asked, STATUS_OK, round(point[0], 7),
                      round(point[1], 7), precision, method, matched)

    @staticmethod
    def _not_found(query: AddressQuery, asked: str, why: str) -> Answer:
        return Answer(provider=GAZETTEER, query_key=query.gazetteer_key, query=asked,
                      status=STATUS_NOT_FOUND, error=f"not_found: {why}")


# ---------------------------------------------------------------------- loading

def gazetteer_postcodes(db: sqlite_utils.Database) -> dict[str, set[str]]:
    """Folded municipality name -> postcodes, over everything imported (every language
    an area is known by: BeST streets carry German names too)."""
    out: dict[str, set[str]] = defaultdict(set)
    sql = ("SELECT DISTINCT postcode, municipality_fr, municipality_nl, NULL "
           "FROM gazetteer_streets "
           "UNION SELECT DISTINCT postcode, municipality_fr, municipality_nl, municipality_de "
           "FROM gazetteer_address_streets")
    for postcode, *names in db.conn.execute(sql):
        for name in names:
            if name and postcode:
                out[fold(name)].add(postcode)
    return dict(out)


def has_gazetteer(db: sqlite_utils.Database) -> bool:
    """Whether any gazetteer (segments or address points) is imported."""
    return db.conn.execute("SELECT EXISTS (SELECT 1 FROM gazetteer_streets) OR "
                           "EXISTS (SELECT 1 FROM gazetteer_address_streets)").fetchone()[0] == 1


class Reach:
    """Which postcodes' streets a query can reach: its own, the other postcodes of the
    same municipality, and the postcodes of a locality named without a known postcode.
    A query's answer depends on these areas only."""

    def __init__(self, by_locality: dict[str, set[str]]) -> None:
        self.by_locality = by_locality
        self.by_postcode: dict[str, set[str]] = defaultdict(set)
        for postcodes in by_locality.values():
            for p in postcodes:
                self.by_postcode[p] |= postcodes

    def postcodes(self, queries: Iterable[AddressQuery]) -> set[str]:
        by_locality, by_postcode = self.by_locality, self.by_postcode
        needed: set[str] = set()
        for postcode, locality in {(q.postcode, q.locality) for q in queries}:
            if postcode:
                needed.add(postcode)
                needed |= by_postcode.get(postcode, set())
            if locality and (not postcode or postcode not in by_postcode):
                needed |= by_locality.get(locality, set())
        return needed


def needed_postcodes(db: sqlite_utils.Database, queries: Iterable[AddressQuery]) -> set[str]:
    """Postcodes whose streets the queries can reach (see `Reach`)."""
    return Reach(gazetteer_postcodes(db)).postcodes(queries)


# ---------------------------------------------------------------------- the stored index

INDEX_FORMAT = 1
# The code an area's index is derived from: any change to it makes stored areas stale.
INDEX_CODE = ("horeca.normalize", "horeca.geocode.gazetteer", "horeca.geocode.geo")
_INDEX_CHUNK = 64   # postcodes built at once when the index is stored


@lru_cache(maxsize=1)
def index_fingerprint() -> str:
    """A hash of the index format and of the source of the code that builds an area. The
    marshal format and the Python version are part of it: marshal data is only promised
    to read back in the Python that wrote it."""
    return source_fingerprint(INDEX_CODE, f"gazetteer index {INDEX_FORMAT} marshal "
                              f"{marshal.version} python {sys.version_info[:2]}")


def area_blob(area: Area) -> bytes:
    """One finalised area as plain data (marshal: the store is the user's own file, and
    its points come back in C, far faster than they are indexed from rows). Streets are
    numbered; the name and core indexes refer to them by number."""
    number = {id(street): i for i, street in enumerate(area.streets)}
    streets = [(s.label, s.names, s.langs,
                [(g.house_from, g.house_to, g.start, g.end) for g in s.segments],
                s.lettered, s.plain, s.sides, s.center) for s in area.streets]
    return marshal.dumps((
        INDEX_FORMAT, area.postcode, area.label, area.municipalities, area.center, streets,
        [(name, [number[id(s)] for s in group]) for name, group in area.by_name.items()],
        [(core, [number[id(s)] for s in group]) for core, group in area.by_core.items()]))


def area_from_blob(data: bytes) -> Area:
    (_format, postcode, label, municipalities, center, streets_data, by_name,
     by_core) = marshal.loads(data)
    streets = [Street(postcode=postcode, label=s_label, names=names, langs=langs,
                      segments=[Segment(*g) for g in segments], lettered=lettered,
                      plain=plain, sides=sides, center=s_center)
               for (s_label, names, langs, segments, lettered, plain, sides, s_center)
               in streets_data]
    area = Area(postcode=postcode, municipalities=municipalities, label=label,
                streets=streets, center=center)
    area.by_name = {name: [streets[i] for i in group] for name, group in by_name}
    area.by_core = {core: [streets[i] for i in group] for core, group in by_core}
    area.name_choices = list(area.by_name)
    return area


def store_index(db: sqlite_utils.Database) -> int:
    """Build every postcode's area from the tables and store it (replacing the stored
    index); returns the number of areas. Gazetteer imports call it in their transaction."""
    db.conn.execute("DELETE FROM gazetteer_index")
    postcodes = sorted({row[0] for row in db.conn.execute(
        "SELECT DISTINCT postcode FROM gazetteer_streets WHERE postcode IS NOT NULL UNION "
        "SELECT DISTINCT postcode FROM gazetteer_address_streets")})
    code, stored = index_fingerprint(), 0
    for i in range(0, len(postcodes), _INDEX_CHUNK):
        areas = load_gazetteer(db, set(postcodes[i:i + _INDEX_CHUNK])).areas
        db.conn.executemany(
            "INSERT OR REPLACE INTO gazetteer_index (postcode, code, data) VALUES (?, ?, ?)",
            [(postcode, code, area_blob(area)) for postcode, area in areas.items()])
        stored += len(areas)
    return stored


def ensure_index(db: sqlite_utils.Database) -> int:
    """Store the index again if another version of the code built it, or if a gazetteer
    was imported before the index existed; returns the number of areas stored (0 when
    the stored index was up to date). Geocoding runs call it first: after an upgrade,
    the first run rebuilds it once instead of every run building it."""
    stale = db.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM gazetteer_index WHERE code != ?) OR "
        "(NOT EXISTS (SELECT 1 FROM gazetteer_index) AND "
        "(EXISTS (SELECT 1 FROM gazetteer_streets) OR "
        "EXISTS (SELECT 1 FROM gazetteer_address_streets)))",
        (index_fingerprint(),)).fetchone()[0]
    if not stale:
        return 0
    with transaction(db):
        return store_index(db)


def load_areas(db: sqlite_utils.Database, postcodes: set[str], *,
               fuzzy_cutoff: float = DEFAULT_FUZZY_CUTOFF) -> Gazetteer:
    """The areas of `postcodes`, as `load_gazetteer` builds them: from the stored index
    where it holds them in this code's format, else from the tables."""
    gaz = Gazetteer(fuzzy_cutoff=fuzzy_cutoff).finalize()
    code = index_fingerprint()
    for chunk in param_batches(sorted(postcodes)):
        sql = (f"SELECT postcode, data FROM gazetteer_index WHERE code = ? "
               f"AND postcode IN ({','.join('?' * len(chunk))})")
        for postcode, data in db.conn.execute(sql, (code, *chunk)):
            area = gaz.areas[postcode] = area_from_blob(data)
            for name in area.municipalities:
                gaz.localities.setdefault(name, set()).add(postcode)
    missing = postcodes - set(gaz.areas)
    if missing:
        gaz.absorb(load_gazetteer(db, missing, fuzzy_cutoff=fuzzy_cutoff))
    return gaz


class AreaLoader:
    """One gazetteer grown batch by batch: before a batch of queries is matched, the
    areas it can reach that are not loaded yet are read (each area once). Every query is
    answered as by a gazetteer loaded for all queries at once."""

    def __init__(self, db: sqlite_utils.Database, *,
                 fuzzy_cutoff: float = DEFAULT_FUZZY_CUTOFF) -> None:
        self.db, self.fuzzy_cutoff = db, fuzzy_cutoff
        self.reach = Reach(gazetteer_postcodes(db))
        self.imported = has_gazetteer(db)
        self.gazetteer = Gazetteer(fuzzy_cutoff=fuzzy_cutoff).finalize()
        self.loaded: set[str] = set()

    def for_queries(self, queries: Iterable[AddressQuery]) -> Gazetteer:
        new = self.reach.postcodes(queries) - self.loaded
        if new:
            self.gazetteer.absorb(load_areas(self.db, new, fuzzy_cutoff=self.fuzzy_cutoff))
            self.loaded |= new
        return self.gazetteer



def load_gazetteer(db: sqlite_utils.Database, postcodes: set[str] | None = None, *,
                   fuzzy_cutoff: float = DEFAULT_FUZZY_CUTOFF) -> Gazetteer:
    """Build the index from the store; only `postcodes` when given (None = everything)."""
    gaz = Gazetteer(fuzzy_cutoff=fuzzy_cutoff)
    seg_sql = ("SELECT postcode, street_fr, street_nl, municipality_fr, municipality_nl, "
               "house_from, house_to, lat_start, lon_start, lat_end, lon_end "
               "FROM gazetteer_streets")
    street_sql = ("SELECT id, postcode, street_fr, street_nl, street_de, municipality_fr, "
                  "municipality_nl, municipality_de FROM gazetteer_address_streets s")
    # Sorted by number here, where sorting is cheap: each street's points index in one pass.
    point_sql = ("SELECT a.street_id, a.number, coalesce(a.suffix, ''), a.lat, a.lon "
                 "FROM gazetteer_address_streets s JOIN gazetteer_addresses a "
                 "ON a.street_id = s.id "
                 "WHERE a.number IS NOT NULL AND a.lat IS NOT NULL AND a.lon IS NOT NULL")
    order_seg = " ORDER BY source, seq"
    if postcodes is None:
        batches: list[tuple[str, tuple[str, ...]]] = [("", ())]
    else:
        batches = [(f" WHERE postcode IN ({','.join('?' * len(chunk))})", tuple(chunk))
                   for chunk in param_batches(sorted(postcodes))]
    for where, params in batches:
        for (pc, fr, nl, mfr, mnl, h_from, h_to, la1, lo1, la2, lo2) in db.conn.execute(
                seg_sql + where + order_seg, params):
            postcode = normalize_postcode(pc) or pc
            if postcode and None not in (h_from, h_to, la1, lo1, la2, lo2):
                gaz.add_segment(postcode=postcode, street_names=(fr, nl),
                                municipalities=(mfr, mnl), house_from=int(h_from),
                                house_to=int(h_to), start=(la1, lo1), end=(la2, lo2))
        streets: dict[int, Street | None] = {}
        for sid, pc, fr, nl, de, mfr, mnl, mde in db.conn.execute(
                street_sql + where.replace("postcode", "s.postcode") + " ORDER BY s.id",
                params):
            streets[sid] = gaz._resolve(pc, (fr, nl, de), (mfr, mnl, mde)) if pc else None
        _load_points(streets, db.conn.execute(
            point_sql + where.replace(" WHERE postcode", " AND s.postcode")
            + " ORDER BY a.street_id, a.number, 3", params))
    return gaz.finalize()


def _load_points(streets: dict[int, Street | None], rows: Iterable[PointRow]) -> None:
    """Hand each street its points; `rows` come sorted by (street, number, suffix)."""
    for street_id, group in groupby(rows, key=itemgetter(0)):
        street = streets.get(street_id)
        if street is not None:
            street.add_sorted_points(list(group))
