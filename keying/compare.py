"""Field-by-field comparison of a place with a register unit, and the grades A / B / F / Z.

A  the field is the same on both sides (after normalisation)
B  similar: a typo, a near house number, a name that contains the other, the seat address
F  different
Z  missing on one side: no evidence either way (weight 0)

Names are compared against EVERY name of the unit (legal, abbreviation, commercial, branch;
every language) and every name of the place (every platform's spelling); the best pair
counts. Streets are compared against the unit's French and Dutch street names and, as
weaker evidence (at most B), against the enterprise's registered seat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from horeca.keying.config import GRADED_FIELDS, MODEL_FIELDS, GradeConfig
from horeca.keying.model import MISSING
from horeca.keying.records import Address, Names, PlaceRecord, UnitRecord, min_distance_m

A, B, F = 0, 1, 2  # level codes for three-level fields; two-level fields use A, 1 = F
GRADES: tuple[str, ...] = tuple(GRADED_FIELDS)  # the graded fields, in display order
_FIELD_INDEX = {f: j for j, f in enumerate(GRADES)}
IDENTITY_CONTACTS = ("phone", "web", "vat")  # with the name: what identifies a business
_NAME = {lv: i for i, lv in enumerate(MODEL_FIELDS["name"])}
_LOCATION = {lv: i for i, lv in enumerate(MODEL_FIELDS["location"])}


def grade_letter(field: str, level: int) -> str:
    return "Z" if level == MISSING else GRADED_FIELDS[field][level]


def grade_string(levels: Sequence[int]) -> str:
    """'name A, street B, number A, postcode A, phone Z, web Z, vat Z, distance A, ...'."""
    # levels are plain ints here, except from numpy arrays: equal and hashed alike
    return _grade_string(levels if isinstance(levels, tuple) else tuple(levels))


@lru_cache(maxsize=4096)  # a few hundred combinations occur
def _grade_string(levels: tuple[int, ...]) -> str:
    return ", ".join(f"{f} {grade_letter(f, int(lv))}" for f, lv in zip(GRADES, levels,
                                                                            strict=True))


def location_level(street: int, number: int, postcode: int, distance: int,
                   close: bool = False) -> int:
    """The model's one "location" level from the street, number, postcode and distance
    grades (`close`: the pins are within `distance_close_m`, a few metres)."""
    # A street of the same name in another postcode is another street ("Rue du Moulin").
    same_street = street in (A, B) and postcode != 1
    if same_street and number == A:
        return _LOCATION["A"]                      # same door
    if same_street and number in (B, F):
        return _LOCATION["S"]                      # same street, another door
    if distance == A:
        return _LOCATION["C" if close else "N"]    # the pins are together / within reach
    if same_street:
        return _LOCATION["S"]                      # same street, number unknown
    if postcode == 0 or distance == B:
        return _LOCATION["P"]                      # same postcode or neighbourhood
    if street == MISSING and postcode == MISSING and distance == MISSING:
        return MISSING
    return _LOCATION["F"]


def name_model_level(name: int, *, trade_name_known: bool) -> int:
    if name == MISSING:
        return MISSING
    if name == A:
        return _NAME["A"]
    if name == B:
        return _NAME["B"]
    return _NAME["F"] if trade_name_known else _NAME["L"]


def model_levels(levels: Sequence[int], *, trade_name_known: bool = True,
                 close: bool = False) -> tuple[int, ...]:
    """Graded levels (display order) -> the scoring model's levels (model.FIELDS order)."""
    name, street, number, postcode, phone, web, vat, distance, activity = levels
    return (name_model_level(name, trade_name_known=trade_name_known),
            location_level(street, number, postcode, distance, close), phone, web, vat,
            activity)


@lru_cache(maxsize=8192)  # a few hundred combinations occur, each asked for many times
def model_levels_of(levels: tuple[int, ...], trade_name_known: bool,
                     close: bool) -> tuple[int, ...]:
    return model_levels(levels, trade_name_known=trade_name_known, close=close)


def premises_only(levels: Sequence[int], trade_name_known: bool) -> bool:
    """Same door, a HoReCa unit, and a name the register cannot contradict (it holds
    only a legal name): what the register says about the premises, not the business."""
    g = dict(zip(GRADES, levels, strict=True))
    return (not trade_name_known and g["name"] == F and g["activity"] == 0
            and location_level(g["street"], g["number"], g["postcode"], g["distance"])
            == _LOCATION["A"] and g["phone"] != 1 and g["web"] != 1 and g["vat"] != 1)


def has_identity(levels: Sequence[int]) -> bool:
    """True when something that names the business (not only where it is) agrees:
    the name (A or B), the phone, the website or the VAT number."""
    if levels[_FIELD_INDEX["name"]] in (A, B):
        return True
    return any(levels[_FIELD_INDEX[f]] == 0 for f in IDENTITY_CONTACTS)

# ----------------------------------------------------------------------------- names


@dataclass(frozen=True, slots=True)
class NameScore:
    same: float        # similarity that can grade A
    similar: float     # similarity that can grade B (also counts one name inside the other)
    place_index: int = -1
    unit_index: int = -1


# Same identity words but contradicting kinds of place ("Bar Renard" / "Renard Catering")
# can still be one business, but not certainly: the similarity is capped below "same".
KIND_CONFLICT_CAP = 85.0


# One keyboard slip (two in long names) makes a name similar however short it is: "Parc"
# and "Prac" share only 75 % of their letters in order, but one transposed pair apart.
TYPO_SIMILARITY = 90.0


def _typo_edits(text: str) -> int:
    return 0 if len(text) < 4 else 1 if len(text) < 10 else 2


def kinds_conflict(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a and b and not (a <= b or b <= a))


def _pair_scores(full_a: str, info_a: str, kinds_a: frozenset[str], full_b: str, info_b: str,
                 kinds_b: frozenset[str]) -> tuple[float, float]:
    if full_a == full_b:
        return 100.0, 100.0
    if info_a and info_b:
        same = fuzz.token_sort_ratio(info_a, info_b)
        similar = max(same, fuzz.token_set_ratio(info_a, info_b))
        allowed = _typo_edits(min(info_a, info_b, key=len))
        if allowed and OSA.distance(_sorted(info_a), _sorted(info_b)) <= allowed:
            similar = max(similar, TYPO_SIMILARITY)
        if kinds_conflict(kinds_a, kinds_b):
            same = min(same, KIND_CONFLICT_CAP)
            similar = min(similar, KIND_CONFLICT_CAP)
        return same, similar
    # One side has only generic words ("Wok Express"): the whole names must agree to be
    # the same; one inside the other ("Wok Express l'Epee") is similar.
    same = fuzz.token_sort_ratio(full_a, full_b)
    return same, max(same, fuzz.token_set_ratio(full_a, full_b))


def _sorted(text: str) -> str:
    return " ".join(sorted(text.split()))


def _kinds(names: Names) -> tuple[frozenset[str], ...]:
    return names.kinds or tuple(frozenset() for _ in names.full)


def name_score(a: Names, b: Names) -> NameScore:
    """Best similarity over every pair of names (0-100), for "same" and for "similar"
    separately; -1 when either side has no name. The indexes name the pair that gave
    the best "same"."""
    best = NameScore(-1.0, -1.0)
    best_similar = -1.0
    for i, (fa, ia, ka) in enumerate(zip(a.full, a.informative, _kinds(a), strict=True)):
        for j, (fb, ib, kb) in enumerate(zip(b.full, b.informative, _kinds(b), strict=True)):
            same, similar = _pair_scores(fa, ia, ka, fb, ib, kb)
            best_similar = max(best_similar, similar)
            if same > best.same:
                best = NameScore(same, similar, i, j)
    return NameScore(best.same, max(best_similar, best.same), best.place_index,
                     best.unit_index)


def name_scores_batch(place: Names, units: Sequence[UnitRecord]) -> tuple[np.ndarray, np.ndarray]:
    """`name_score` of one place against many units (see `name_scores_many`)."""
    return name_scores_many([(place, [u.names for u in units])])[0]


def name_scores_many(batches: Sequence[tuple[Names, Sequence[Names]]]
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """`name_score` of each place against each of its units, for many places at once.

    Returns, per (place names, units' names) batch, (same, similar) arrays with one value
    per unit, -1 where a side has no name: exactly the values `name_score` gives pair by
    pair. Every (place name, unit name) cell of every batch is scored in one call per
    scorer (rapidfuzz `cpdist`), so the cost per place is a few list appends, not a few
    library calls.
    """
    # Columns of names (full, informative, kinds, informative words sorted, typing slips
    # allowed), once per Names object: a unit is a candidate of several places.
    columns: dict[int, _Columns] = {}

    def columns_of(names: Names) -> _Columns:
        found = columns.get(id(names))
        if found is None:
            info = names.informative
            found = columns[id(names)] = (names.full, info, _kinds(names),
                                          tuple(map(_sorted, info)),
                                          tuple(map(_typo_edits, info)))
        return found

    # the cells, place-name major within each batch, and their pair (output) indexes
    owner: list[int] = []
    a: tuple[list, ...] = ([], [], [], [], [])
    b: tuple[list, ...] = ([], [], [], [], [])
    starts: list[int] = []
    total = 0
    for place, units in batches:
        starts.append(total)
        if place.full:
            place_columns = columns_of(place)
            u_owner: list[int] = []
            u: tuple[list, ...] = ([], [], [], [], [])
            for k, names in enumerate(units):
                if names.full:
                    u_owner.extend([total + k] * len(names.full))
                    for column, values in zip(u, columns_of(names), strict=True):
                        column.extend(values)
            width = len(u_owner)
            for r in range(len(place.full)):
                owner.extend(u_owner)
                for column, values in zip(a, place_columns, strict=True):
                    column.extend([values[r]] * width)
                for column, unit_column in zip(b, u, strict=True):
                    column.extend(unit_column)
        total += len(units)
    same_out = np.full(total, -1.0)
    similar_out = np.full(total, -1.0)
    if owner:
        same, similar = _cell_scores(a, b)
        cells_of = np.asarray(owner)
        # best over every pair of names, for "same" and "similar" separately (name_score)
        np.maximum.at(same_out, cells_of, same)
        np.maximum.at(similar_out, cells_of, similar)
    ends = [*starts[1:], total] if starts else []
    return [(same_out[lo:hi], similar_out[lo:hi]) for lo, hi in zip(starts, ends, strict=True)]


# Names laid out for `name_scores_many`: full, informative, kinds, the informative words
# sorted (for typing slips) and the slips allowed; one entry per name.
_Columns = tuple[Sequence[str], Sequence[str], Sequence[frozenset[str]], Sequence[str],
                 Sequence[int]]


def _cell_scores(a: Sequence[Sequence[Any]], b: Sequence[Sequence[Any]]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """`_pair_scores` of aligned cells (`_Columns` each), vectorised: (same, similar)."""
    full_a, info_a, kinds_a, sorted_a, edits_a = a
    full_b, info_b, kinds_b, sorted_b, edits_b = b
    sort_info = process.cpdist(info_a, info_b, scorer=fuzz.token_sort_ratio, dtype=np.float64)
    set_info = process.cpdist(info_a, info_b, scorer=fuzz.token_set_ratio, dtype=np.float64)
    sort_full = process.cpdist(full_a, full_b, scorer=fuzz.token_sort_ratio, dtype=np.float64)
    set_full = process.cpdist(full_a, full_b, scorer=fuzz.token_set_ratio, dtype=np.float64)
    n = len(info_a)
    both = np.fromiter(map(bool, info_a), dtype=bool, count=n) & \
        np.fromiter(map(bool, info_b), dtype=bool, count=n)
    edits = process.cpdist(sorted_a, sorted_b, scorer=OSA.distance, dtype=np.int32)
    allowed = np.minimum(np.asarray(edits_a, dtype=np.int32), np.asarray(edits_b, dtype=np.int32))
    typo = both & (allowed > 0) & (edits <= allowed)
    set_info = np.where(typo, np.maximum(set_info, TYPO_SIMILARITY), set_info)
    same = np.where(both, sort_info, sort_full)
    similar = np.where(both, np.maximum(sort_info, set_info), np.maximum(sort_full, set_full))
    # Rare cells: contradicting kinds of place (capped) and identical names (100).
    for c in np.flatnonzero(both & (similar > KIND_CONFLICT_CAP)).tolist():
        if kinds_conflict(kinds_a[c], kinds_b[c]):
            same[c] = min(same[c], KIND_CONFLICT_CAP)
            similar[c] = min(similar[c], KIND_CONFLICT_CAP)
    for c in np.flatnonzero(sort_full == 100.0).tolist():
        if full_a[c] == full_b[c]:
            same[c] = similar[c] = 100.0
    return same, similar


def name_level(same: float, similar: float, grades: GradeConfig) -> int:
    if same < 0:
        return MISSING
    if same >= grades.name_same:
        return A
    if similar >= grades.name_similar:
        return B
    return F


# ----------------------------------------------------------------------------- addresses


@dataclass(frozen=True, slots=True)
class AddressMatch:
    street: int
    number: int
    postcode: int
    street_score: float
    place_address: Address | None
    unit_address: Address | None


def street_score(a: Address, b: Address) -> float:
    if not a.core or not b.core:
        return -1.0
    if a.core == b.core or a.street == b.street:
        return 100.0
    return max(fuzz.ratio(a.core, b.core), fuzz.ratio(a.street, b.street))


def number_level(a: Address, b: Address, grades: GradeConfig) -> int:
    if a.lo is None or b.lo is None:
        return MISSING
    a_hi, b_hi = a.hi if a.hi is not None else a.lo, b.hi if b.hi is not None else b.lo
    if a.lo <= b_hi and b.lo <= a_hi:
        if a.suffix and b.suffix and a.suffix != b.suffix and a.lo == a_hi and b.lo == b_hi:
            return B  # 12A / 12B: same building number, another door
        return A
    gap = min(abs(a.lo - b_hi), abs(b.lo - a_hi))
    return B if gap <= grades.number_near else F


def _street_level(score: float, grades: GradeConfig) -> int:
    if score < 0:
        return MISSING
    if score >= grades.street_same:
        return A
    if score >= grades.street_similar:
        return B
    return F


def _rank(level: int) -> int:
    # Z sits between B and F: missing is better than contradicting.
    return {A: 0, B: 1, MISSING: 2, F: 3}[level]


_RANK = {A: 0, B: 1, MISSING: 2, F: 3}


def address_match(place: Sequence[Address], unit: Sequence[Address],
                  seat: Sequence[Address], grades: GradeConfig) -> AddressMatch:
    """The best pairing of a place address with a unit address (own first, then seat):
    street first, then house number, then postcode."""
    best: AddressMatch | None = None
    best_key: tuple[int, int, int, bool] = (9, 9, 9, True)
    same_cut, similar_cut = grades.street_same, grades.street_similar
    for pa in place:
        for ua in (*unit, *seat):
            if not pa.core or not ua.core:
                s_score, street = -1.0, MISSING
            else:
                s_score = street_score(pa, ua)
                street = A if s_score >= same_cut else B if s_score >= similar_cut else F
                if ua.seat and street == A:
                    street = B  # the seat only says where the company is registered
            number = number_level(pa, ua, grades) if street in (A, B) else MISSING
            if pa.postcode and ua.postcode:
                postcode = 0 if pa.postcode == ua.postcode else 1
            else:
                postcode = MISSING
            key = (_RANK[street], _RANK[number], 0 if postcode == 0 else 1, ua.seat)
            if key < best_key:
                best_key = key
                best = AddressMatch(street, number, postcode, s_score, pa, ua)
                if key == (0, 0, 0, False):
                    return best  # the same door: nothing can do better
    if best is None:
        return AddressMatch(MISSING, MISSING, MISSING, -1.0, None, None)
    return best


# ----------------------------------------------------------------------------- pairs


@dataclass(frozen=True, slots=True)
class Comparison:
    """Grades of one (place, unit) pair and the values behind them, for explanations."""

    levels: tuple[int, ...]          # graded levels, display order (GRADES)
    name_same: float
    name_similar: float
    address: AddressMatch
    distance_m: float | None
    trade_name_known: bool = True
    close: bool = False              # pins within distance_close_m

    @property
    def grades(self) -> str:
        return grade_string(self.levels)

    @property
    def model_levels(self) -> tuple[int, ...]:
        return model_levels_of(self.levels, self.trade_name_known, self.close)


def _set_level(a: frozenset[str], b: frozenset[str]) -> int:
    if not a or not b:
        return MISSING
    return 0 if a & b else 1


def distance_level(distance: float | None, grades: GradeConfig) -> int:
    if distance is None:
        return MISSING
    if distance <= grades.distance_same_m:
        return A
    if distance <= grades.distance_near_m:
        return B
    return F


def compare_fields(place: PlaceRecord, unit: UnitRecord, name_same: float,
                   name_similar: float, grades: GradeConfig) -> Comparison:
    """Grades for every field, given the (batch-computed) name similarity."""
    addr = address_match(place.addresses, unit.addresses, unit.seat_addresses, grades)
    if place.vats and unit.enterprise_number:
        vat = 0 if unit.enterprise_number in place.vats else 1
    else:
        vat = MISSING
    distance = (min_distance_m(place.points, unit.points)
                if place.points and unit.points else None)
    levels = (name_level(name_same, name_similar, grades), addr.street, addr.number,
              addr.postcode, _set_level(place.phones, unit.phones),
              _set_level(place.domains, unit.domains), vat, distance_level(distance, grades),
              MISSING if unit.horeca is None else (0 if unit.horeca else 1))
    return Comparison(levels, name_same, name_similar, addr, distance, unit.trade_name_known,
                      distance is not None and distance <= grades.distance_close_m)


def _index_of(items: Sequence[Address], item: Address | None) -> int:
    return next((k for k, x in enumerate(items) if x is item), -1)


ComparisonRow = tuple  # a Comparison as plain values: see comparison_row


def comparison_row(place: PlaceRecord, unit: UnitRecord, c: Comparison) -> ComparisonRow:
    """A comparison as plain values, cheap to pass between processes; the addresses it
    refers to are given by their position in the place and in the unit."""
    a = c.address
    return (c.levels, c.name_same, c.name_similar, a.street, a.number, a.postcode,
            a.street_score, _index_of(place.addresses, a.place_address),
            _index_of((*unit.addresses, *unit.seat_addresses), a.unit_address),
            c.distance_m, c.trade_name_known, c.close)


def comparison_from_row(place: PlaceRecord, unit: UnitRecord, row: ComparisonRow) -> Comparison:
    """The `Comparison` that `comparison_row` was made from."""
    (levels, name_same, name_similar, street, number, postcode, street_score, pa, ua,
     distance, trade_name_known, close) = row
    unit_addresses = (*unit.addresses, *unit.seat_addresses)
    address = AddressMatch(street, number, postcode, street_score,
                           place.addresses[pa] if pa >= 0 else None,
                           unit_addresses[ua] if ua >= 0 else None)
    return Comparison(levels, name_same, name_similar, address, distance, trade_name_known,
                      close)


def compare(place: PlaceRecord, unit: UnitRecord, grades: GradeConfig) -> Comparison:
    """All grades of one pair (the slow, single-pair path used for explanations)."""
    ns = name_score(place.names, unit.names)
    return compare_fields(place, unit, ns.same, ns.similar, grades)


def compare_many(place: PlaceRecord, units: Sequence[UnitRecord],
                 grades: GradeConfig) -> list[Comparison]:
    """`compare` of one place against many units, names scored in one batch."""
    return compare_batches([(place, units)], grades)[0]


def compare_batches(batches: Sequence[tuple[PlaceRecord, Sequence[UnitRecord]]],
                    grades: GradeConfig) -> list[list[Comparison]]:
    """`compare_many` of several places, every name of every pair scored in one batch."""
    scores = name_scores_many([(place.names, [u.names for u in units])
                               for place, units in batches])
    return [[compare_fields(place, u, s, t, grades)
             for u, s, t in zip(units, same.tolist(), similar.tolist(), strict=True)]
            for (place, units), (same, similar) in zip(batches, scores, strict=True)]
