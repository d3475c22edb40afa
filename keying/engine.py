"""The keying run as one pure function: places + candidates -> decisions.

    places     = consolidate(prepare listings)           (consolidate.py)
    candidates = block(places, register units)           (blocking.py)
    run        = key_places(places, candidates, config)  (this module)

`key_places` compares every candidate pair, learns the Fellegi-Sunter weights by EM,
scores, decides match / doubt / no-match with reasons, and resolves units claimed by two
places. Nothing here reads or writes the store (see store_io.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from horeca.keying.blocking import CandidateSet, reasons_of
from horeca.keying.compare import (
    GRADES,
    A,
    B,
    Comparison,
    ComparisonRow,
    compare,
    compare_batches,
    comparison_from_row,
    grade_letter,
    has_identity,
    model_levels_of,
    premises_only,
)
from horeca.keying.config import GRADED_FIELDS, MODEL_FIELDS, KeyingConfig
from horeca.keying.model import (
    FIELDS,
    MISSING,
    TF_FIELDS,
    FSModel,
    candidate_probabilities,
    estimate,
    estimate_u,
    pair_bits,
)
from horeca.keying.records import Address, PlaceRecord, UnitRecord, min_distance_m

OUTCOMES = ("match", "doubt", "no-match")
TOP_CANDIDATES = 3
SHARED_UNIT_MAX_M = 150.0  # two places this close may both be one register unit


@dataclass
class Decision:
    place_id: str
    outcome: str
    unit_id: str | None
    score: float | None               # match probability of the decisive candidate
    grades: str | None
    candidates: list[dict[str, Any]]  # top candidates, best first, with weights
    reason: str


@dataclass
class KeyingRun:
    decisions: list[Decision]
    model: FSModel
    pairs: int
    counts: dict[str, int] = field(default_factory=dict)
    blocking: dict[str, Any] = field(default_factory=dict)
    candidates_of: dict[str, list[str]] = field(default_factory=dict)  # place -> unit ids

    def by_place(self) -> dict[str, Decision]:
        return {d.place_id: d for d in self.decisions}


@dataclass(frozen=True)
class Labels:
    """Reviewed knowledge about pairs: (place_id, unit_id) -> 1 same business / 0 not."""

    pairs: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # place_id -> unit_id a reviewer said the place is registered under (forced match)
    registered_under: Mapping[str, str] = field(default_factory=dict)
    # place_ids reviewed as absent from the register (every candidate pair is a non-match)
    absent: frozenset[str] = frozenset()


# ----------------------------------------------------------------------------- scoring

_COLUMN = {f: j for j, f in enumerate(FIELDS)}


@dataclass(slots=True)
class _Pair:
    unit: int
    mask: int
    levels: tuple[int, ...]      # graded levels (GRADES order)
    trade_name_known: bool
    model: tuple[int, ...] = ()  # model levels (model.FIELDS order)
    shared: dict[str, int] | None = None  # A-level field -> units sharing it
    bits: float = 0.0
    comparison: Comparison | None = None  # kept to explain the pair without comparing again
    row: ComparisonRow | None = None      # or its plain values, from another process

    @property
    def premises_only(self) -> bool:
        return premises_only(self.levels, self.trade_name_known)


def _pair(j: int, mask: int, c: Comparison | ComparisonRow) -> _Pair:
    if isinstance(c, Comparison):
        return _Pair(j, mask, c.levels, c.trade_name_known, c.model_levels, comparison=c)
    # a row (`comparison_row`): its Comparison is only made if the pair is explained
    levels, trade_name_known, close = c[0], c[10], c[11]
    return _Pair(j, mask, levels, trade_name_known,
                 model_levels_of(levels, trade_name_known, close), row=c)


def _with_model_levels(place: PlaceRecord, units: Sequence[UnitRecord],
                       comps: Sequence[Comparison | ComparisonRow],
                       pairs: Sequence[tuple[int, int]],
                       token_df: Mapping[str, int]) -> list[_Pair]:
    out = [_pair(j, mask, c) for (j, mask), c in zip(pairs, comps, strict=True)]
    # How many register units carry the agreeing value: the k in u = k / N. At least the
    # candidates that agree on it; for a name resting on one word, every unit whose
    # name holds that word ("Paleis" is in many names, "Vesuvio" in few).
    for f in TF_FIELDS:
        col = _COLUMN[f]
        agreeing = [(p, unit) for p, unit in zip(out, units, strict=True) if p.model[col] == 0]
        k = len(agreeing)
        for p, unit in agreeing:
            shared = k
            if f == "name":
                common = place.names.tokens & unit.names.tokens
                if len(common) == 1:
                    shared = max(k, token_df.get(next(iter(common)), 0))
            if p.shared is None:
                p.shared = {}
            p.shared[f] = shared
    return out


@dataclass
class Compared:
    """Comparisons made ahead of `key_places` (e.g. by several processes): per place, one
    per candidate pair in `CandidateSet.pairs` order (a `Comparison` or its
    `comparison_row`); and the random pairs' model levels."""

    pairs: list[list[Comparison | ComparisonRow]]
    random_gamma: np.ndarray


def compare_places(places: Sequence[PlaceRecord], cands: CandidateSet,
                   config: KeyingConfig, indices: Sequence[int]) -> list[list[Comparison]]:
    """The comparisons of the places at `indices` with their candidates."""
    return compare_batches([(places[i], [cands.units[j] for j, _ in cands.pairs[i]])
                            for i in indices], config.grades)


def _compare_all(places: Sequence[PlaceRecord], cands: CandidateSet,
                 config: KeyingConfig,
                 compared: Sequence[Sequence[Comparison | ComparisonRow]] | None = None
                 ) -> list[list[_Pair]]:
    if compared is None:
        compared = compare_places(places, cands, config, range(len(places)))
    out: list[list[_Pair]] = []
    for place, pairs, comps in zip(places, cands.pairs, compared, strict=True):
        units = [cands.units[j] for j, _ in pairs]
        out.append(_with_model_levels(place, units, comps, pairs, cands.token_df))
    return out


def random_gamma(places: Sequence[PlaceRecord], sample: Sequence[UnitRecord],
                 config: KeyingConfig) -> np.ndarray:
    """Model levels of random (place, unit) pairs: places drawn at random, each against
    units drawn (with a fixed seed) from a uniform sample of the register. Few places
    with many units each, so that names are compared in large batches."""
    if not places or not sample:
        return np.empty((0, len(FIELDS)), dtype=np.int8)
    rng = random.Random(config.scoring.seed)
    per_place = min(len(sample), 25)
    n_places = min(len(places), max(1, math.ceil(config.scoring.random_pairs / per_place)))
    batches = [(place, rng.sample(list(sample), per_place))
               for place in rng.sample(list(places), n_places)]
    rows = [c.model_levels for comps in compare_batches(batches, config.grades) for c in comps]
    return np.array(rows, dtype=np.int8).reshape(-1, len(FIELDS))


def _label_array(places: Sequence[PlaceRecord], units: Sequence[UnitRecord],
                 pairs: list[list[_Pair]], labels: Labels | None) -> np.ndarray:
    flat = [(place.id, units[p.unit]) for place, ps in zip(places, pairs, strict=True)
            for p in ps]
    out = np.full(len(flat), -1, dtype=np.int8)
    if labels is None:
        return out
    for k, (pid, unit) in enumerate(flat):
        if (pid, unit.unit_id) in labels.pairs:
            out[k] = labels.pairs[(pid, unit.unit_id)]
        elif pid in labels.registered_under:
            forced = _digits(labels.registered_under[pid])
            out[k] = 1 if forced in (_digits(unit.unit_id),
                                     _digits(unit.enterprise_number or "")) else 0
        elif pid in labels.absent:
            out[k] = 0
    return out


def _tf_matrix(flat: Sequence[_Pair], register_size: int) -> np.ndarray:
    tf = np.full((len(flat), len(FIELDS)), np.nan)
    size = max(1, register_size)
    for k, p in enumerate(flat):
        if p.shared:
            for f, shared in p.shared.items():
                tf[k, _COLUMN[f]] = shared / size
    return tf


def fit_model(places: Sequence[PlaceRecord], cands: CandidateSet, pairs: list[list[_Pair]],
              config: KeyingConfig, labels: Labels | None = None,
              random_levels: np.ndarray | None = None) -> FSModel:
    """u from random pairs, then m and the registered share by EM over the candidates."""
    size = max(1, cands.units_scanned)
    if random_levels is None:
        random_levels = random_gamma(places, cands.sample, config)
    u = estimate_u(random_levels, size)
    flat = [p for ps in pairs for p in ps]
    gamma = np.array([p.model for p in flat], dtype=np.int8).reshape(-1, len(FIELDS))
    groups = np.array([i for i, ps in enumerate(pairs) for _ in ps], dtype=np.intp)
    s = config.scoring
    model = estimate(gamma, groups, u, size, n_places=len(places),
                     tf_u=_tf_matrix(flat, size),
                     labels=_label_array(places, cands.units, pairs, labels),
                     fixed=config.fixed_weights, max_iterations=s.em_max_iterations,
                     tolerance=s.em_tolerance, min_probability=s.min_probability,
                     fixed_share=s.registered_share or None)
    model.random_pairs = int(random_levels.shape[0])
    return model


def _score(pairs: list[list[_Pair]], model: FSModel) -> None:
    flat = [p for ps in pairs for p in ps]
    if not flat:
        return
    gamma = np.array([p.model for p in flat], dtype=np.int8)
    bits = pair_bits(model, gamma, _tf_matrix(flat, model.register_size)) + model.prior_bits
    for p, b in zip(flat, bits, strict=True):
        p.bits = float(b)
    for ps in pairs:
        ps.sort(key=lambda p: (-p.bits, p.unit))


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _log2_odds(p: float) -> float:
    p = min(max(p, 1e-300), 1 - 1e-16)
    return math.log2(p / (1 - p))


# ----------------------------------------------------------------------------- explaining


def _format_address(a: Address | None) -> str:
    if a is None:
        return ""
    number = "" if a.lo is None else (str(a.lo) if a.hi in (None, a.lo) else f"{a.lo}-{a.hi}")
    return " ".join(x for x in (a.street, number + a.suffix, a.postcode or "") if x)


def explain_pair(place: PlaceRecord, unit: UnitRecord, model: FSModel, config: KeyingConfig,
                 *, probability: float | None = None, mask: int = 0,
                 shared: Mapping[str, int] | None = None,
                 comparison: Comparison | None = None,
                 level_bits: Mapping[str, Sequence[float]] | None = None) -> dict[str, Any]:
    """One candidate as stored in `keying_results.candidates`: who, grades, and the
    waterfall of weights that adds up to its score. `shared` says how many register units
    carry the agreeing value of a field (a chain's name, a building's address);
    `probability` is the candidate's share after competing with the place's other
    candidates (without it, the candidate is taken alone); `level_bits` is
    `model.level_bits()`, for callers explaining many pairs."""
    c = comparison or compare(place, unit, config.grades)
    shared = dict(shared or {})
    size = max(1, model.register_size)
    model_levels = c.model_levels
    table = level_bits or model.level_bits()

    def weight(f: str, level: int) -> float:
        if level == MISSING:
            return 0.0
        if f in shared:  # agreement on a value of known frequency
            return model.weight(f, level, shared[f] / size)
        return table[f][level]

    weights = {f: round(weight(f, lv), 3) for f, lv in zip(FIELDS, model_levels, strict=True)}
    prior = model.prior_bits
    bits = prior + sum(weights.values())
    alone = 1.0 / (1.0 + 2.0 ** (-bits)) if bits > -1000 else 0.0
    p = alone if probability is None else probability
    waterfall = {"prior": round(prior, 3), **weights}
    if probability is not None:
        # What the other candidates take away: the waterfall then sums to log2 odds(p).
        waterfall["other candidates"] = round(_log2_odds(p) - bits, 3)
    unit_name = unit.names.display[0] if unit.names.display else ""
    return {
        "unit_id": unit.unit_id,
        "enterprise_number": unit.enterprise_number,
        "name": unit_name,
        "names": list(unit.names.display),
        "address": _format_address(c.address.unit_address),
        "seat_address": bool(c.address.unit_address and c.address.unit_address.seat),
        "grades": c.grades,
        "levels": dict(_letters(c.levels)),
        "probability": round(p, 6),
        "bits": round(bits, 3),
        "waterfall": waterfall,
        "model_levels": dict(_model_letters(model_levels)),
        "shared_by": shared,
        "name_similarity": round(c.name_same, 1),
        "street_similarity": round(c.address.street_score, 1),
        "distance_m": None if c.distance_m is None else round(c.distance_m, 1),
        "found_by": reasons_of(mask),
        "horeca": unit.horeca,
    }


@lru_cache(maxsize=4096)  # a few hundred combinations occur
def _letters(levels: tuple[int, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((f, grade_letter(f, lv)) for f, lv in zip(GRADES, levels, strict=True))


@lru_cache(maxsize=4096)
def _model_letters(levels: tuple[int, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((f, "Z" if lv == MISSING else MODEL_FIELDS[f][lv])
                 for f, lv in zip(FIELDS, levels, strict=True))


_WORDS = {"name": "name", "street": "street", "number": "house number",
          "postcode": "postcode", "phone": "phone", "web": "website", "vat": "VAT number",
          "distance": "location", "activity": "HoReCa activity"}
_SIMILAR_COUNTS = ("name", "street", "number", "distance")


def agreeing_fields(levels: Sequence[int]) -> list[str]:
    """Fields graded A, or B where B still means "nearly the same", in plain words."""
    return [_WORDS[f] for f, lv in zip(GRADES, levels, strict=True)
            if lv == A or (lv == B and f in _SIMILAR_COUNTS)]


def differing_fields(levels: Sequence[int]) -> list[str]:
    """Fields graded F, in plain words."""
    return [_WORDS[f] for f, lv in zip(GRADES, levels, strict=True)
            if lv != MISSING and GRADED_FIELDS[f][lv] == "F"]


def _join(words: list[str]) -> str:
    if not words:
        return "nothing"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def _who(c: dict[str, Any]) -> str:
    return f"register unit {c['unit_id']} ({c['name']})" if c.get("name") else \
        f"register unit {c['unit_id']}"


# ----------------------------------------------------------------------------- deciding


def _same_business_evidence(a: PlaceRecord, b: PlaceRecord) -> bool:
    """Two places that may well be one business consolidation kept apart: close pins,
    the same door, or the same phone or website."""
    d = min_distance_m(a.points, b.points)
    if d is not None and d <= SHARED_UNIT_MAX_M:
        return True
    doors_a = {(x.core, x.lo) for x in a.addresses if x.lo is not None}
    doors_b = {(x.core, x.lo) for x in b.addresses if x.lo is not None}
    return bool(doors_a & doors_b or a.phones & b.phones or a.domains & b.domains)


def _may_share(place: PlaceRecord, holder: PlaceRecord, pair: _Pair,
               holder_pairs: list[_Pair]) -> bool:
    """A unit can be matched by two places when both are the same premises or business (a
    hotel and its restaurant, one business listed twice) and both name it, not only
    locate it."""
    if not has_identity(pair.levels):
        return False
    held = next((p for p in holder_pairs if p.unit == pair.unit), None)
    if held is None or not has_identity(held.levels):
        return False
    return _same_business_evidence(place, holder)


def key_places(places: Sequence[PlaceRecord], cands: CandidateSet, config: KeyingConfig,
               labels: Labels | None = None, compared: Compared | None = None) -> KeyingRun:
    """Decide every place. Deterministic: same inputs, same decisions. `compared`: the
    comparisons already made (`compare_places`, `random_gamma`), the same they would be."""
    pairs = _compare_all(places, cands, config, compared.pairs if compared else None)
    model = fit_model(places, cands, pairs, config, labels,
                      compared.random_gamma if compared else None)
    _score(pairs, model)
    units = cands.units
    forced = dict(labels.registered_under) if labels else {}
    # Places whose best candidate is most certain choose first, so that when two places
    # claim one unit the better-fitting one keeps it.
    order = sorted(range(len(places)), key=lambda i: (
        -(candidate_probabilities([p.bits for p in pairs[i]])[0] if pairs[i] else -1.0),
        -(pairs[i][0].bits if pairs[i] else -math.inf), places[i].id))
    taken: dict[int, int] = {}         # unit index -> place index holding it as a match
    decisions: dict[int, Decision] = {}
    decider = _Decider(places, pairs, units, model, config, taken, forced)
    for i in order:
        decisions[i] = decider.decide(i)
    out = [decisions[i] for i in range(len(places))]
    counts = {o: sum(1 for d in out if d.outcome == o) for o in OUTCOMES}
    candidates_of = {places[i].id: [units[p.unit].unit_id for p in pairs[i]]
                     for i in range(len(places))}
    return KeyingRun(decisions=out, model=model, pairs=sum(len(p) for p in pairs),
                     counts=counts, candidates_of=candidates_of,
                     blocking={"units_scanned": cands.units_scanned,
                               "candidate_units": len(units), "pairs": cands.pair_count,
                               "truncated_places": cands.truncated_places,
                               "by_kind": cands.stats})


@dataclass
class _Decider:
    places: Sequence[PlaceRecord]
    pairs: list[list[_Pair]]
    units: Sequence[UnitRecord]
    model: FSModel
    config: KeyingConfig
    taken: dict[int, int]
    forced: Mapping[str, str]
    level_bits: Mapping[str, Sequence[float]] = field(init=False)

    def __post_init__(self) -> None:
        self.level_bits = self.model.level_bits()  # the model is fit: weights are fixed

    def _explain(self, i: int, p: _Pair, probability: float | None) -> dict[str, Any]:
        place, unit = self.places[i], self.units[p.unit]
        comparison = p.comparison
        if comparison is None and p.row is not None:
            comparison = comparison_from_row(place, unit, p.row)
        return explain_pair(place, unit, self.model, self.config, probability=probability,
                            mask=p.mask, shared=p.shared, comparison=comparison,
                            level_bits=self.level_bits)

    def decide(self, i: int) -> Decision:
        place, ps = self.places[i], self.pairs[i]
        if place.id in self.forced:
            forced = self._forced(i)
            if forced is not None:
                return forced
        if not ps:  # pragma: no branch
            return Decision(place.id, "no-match", None, None, None, [],
                            "No register unit shares its phone, website, VAT number, "
                            "address, location or a distinctive name word.")
        free: list[_Pair] = []
        lost: tuple[_Pair, int] | None = None
        for p in ps:
            holder = self.taken.get(p.unit)
            if holder is not None and holder != i and not _may_share(
                    place, self.places[holder], p, self.pairs[holder]):
                lost = lost or (p, holder)
            else:
                free.append(p)
        probs = candidate_probabilities([p.bits for p in free])
        cands = [self._explain(i, p, q) for p, q in zip(free[:TOP_CANDIDATES], probs,
                                                        strict=False)]
        all_probs = candidate_probabilities([p.bits for p in ps])
        strong = self.config.scoring.match_probability
        if lost is not None and all_probs[ps.index(lost[0])] < strong:
            # The unit is explained by the place holding it; this place's weaker claim on
            # it (a namesake elsewhere, a neighbour) is dropped, not disputed.
            lost = None
        if lost is not None and (not free or lost[0].bits >= free[0].bits):
            # Two places would match one unit: the one that fits it best keeps it, the
            # other is left for a person to look at.
            lost_c = self._explain(i, lost[0], all_probs[ps.index(lost[0])])
            lost_c["matched_to_place"] = self.places[lost[1]].id
            cands = [lost_c, *cands][:TOP_CANDIDATES]
            return Decision(place.id, "doubt", None, lost_c["probability"], lost_c["grades"],
                            cands, f"Its best candidate, {_who(lost_c)}, is already matched "
                            f"to place {self.places[lost[1]].id}, which agrees with it "
                            f"better; agrees on {_join(agreeing_fields(lost[0].levels))}.")
        if not free:
            return Decision(place.id, "no-match", None, None, None, [],
                            "Its only, weak, candidates are matched to other places.")
        best, best_c, p_best = free[0], cands[0], probs[0]
        s = self.config.scoring
        agree, differ = agreeing_fields(best.levels), differing_fields(best.levels)
        runner_up = probs[1] if len(probs) > 1 else 0.0
        if (s.premises_probability < 1 and best.premises_only
                and s.premises_probability <= p_best < s.match_probability
                and p_best >= s.premises_lead * runner_up):
            # The register has a HoReCa unit at this very door and only a legal name for
            # it: nothing to check the listing's name against, nothing contradicting.
            self.taken[best.unit] = i
            return Decision(place.id, "match", self.units[best.unit].unit_id, p_best,
                            best_c["grades"], cands,
                            f"Premises match: {_who(best_c)} is a HoReCa business at the same "
                            f"address; the register gives only its legal name, so the "
                            f"listing's name cannot be checked, and nothing contradicts it "
                            f"(probability {p_best:.3f}).")
        identified = has_identity(best.levels) or best.premises_only
        if p_best >= s.match_probability and (not s.require_identity or identified):
            self.taken[best.unit] = i
            return Decision(place.id, "match", self.units[best.unit].unit_id, p_best,
                            best_c["grades"], cands,
                            f"{_who(best_c)[0].upper()}{_who(best_c)[1:]} agrees on "
                            f"{_join(agree)}"
                            + (f" (differs on {_join(differ)})" if differ else "")
                            + f"; probability {p_best:.3f}.")
        if p_best >= s.match_probability:
            text = (f"{_who(best_c)[0].upper()}{_who(best_c)[1:]} agrees on {_join(agree)} "
                    f"but nothing that identifies the business itself (name, phone, website "
                    f"or VAT number)" + (f"; it differs on {_join(differ)}." if differ else "."))
            return Decision(place.id, "doubt", None, p_best, best_c["grades"], cands, text)
        if p_best >= s.doubt_probability:
            if len(probs) > 1 and probs[1] >= s.doubt_probability:
                text = (f"Two register units fit: {_who(best_c)} (probability {p_best:.2f}) "
                        f"and {_who(cands[1])} (probability {probs[1]:.2f}); a person must "
                        f"choose.")
            else:
                text = (f"{_who(best_c)[0].upper()}{_who(best_c)[1:]} agrees on {_join(agree)}"
                        + (f" but differs on {_join(differ)}" if differ else "")
                        + f"; probability {p_best:.3f}, below the {s.match_probability} "
                        f"needed for a match.")
            return Decision(place.id, "doubt", None, p_best, best_c["grades"], cands, text)
        return Decision(place.id, "no-match", None, p_best, best_c["grades"], cands,
                        f"No register unit corroborates it: the closest, {_who(best_c)}, "
                        f"agrees only on {_join(agree)} (probability {p_best:.3f}).")

    def _forced(self, i: int) -> Decision | None:
        """A reviewer's "registered under <number>" overrides the model."""
        place, ps = self.places[i], self.pairs[i]
        number = self.forced[place.id]
        wanted = _digits(number)
        for p in ps:
            u = self.units[p.unit]
            if wanted and wanted in (_digits(u.unit_id), _digits(u.enterprise_number or "")):
                self.taken.setdefault(p.unit, i)
                probs = candidate_probabilities([q.bits for q in ps])
                top = [self._explain(i, p, probs[ps.index(p)])]
                top += [self._explain(i, q, probs[ps.index(q)]) for q in ps
                        if q is not p][:TOP_CANDIDATES - 1]
                return Decision(place.id, "match", u.unit_id, top[0]["probability"],
                                top[0]["grades"], top,
                                f"A reviewer found it registered under {number}; "
                                f"{_who(top[0])} agrees on {_join(agreeing_fields(p.levels))}.")
        return None


def key_region(*args: Any, **kwargs: Any) -> Any:
    """`horeca.keying.store_io.key_region` (here too, for callers that look for it here)."""
    from horeca.keying.store_io import key_region as _key_region
    return _key_region(*args, **kwargs)


__all__ = ["MISSING", "Decision", "KeyingRun", "Labels", "explain_pair", "key_places",
           "key_region"]
