"""Fellegi-Sunter scoring: grades -> match weights -> probability, with weights learnt by EM.

For each field and level, `m` is the probability of that level when the place and the unit
are the same business, `u` when a unit is picked at random from the register. A level's
match weight is log2(m / u) bits; a missing field (grade Z) adds nothing. The sum reads like
a waterfall: which field pushed how far.

u comes from the register itself, without labels:
  * for agreement (level A) on a name, an address, a phone, a website or a VAT number, u is
    the share of the register that carries that very value: k / N when k of the N units
    share it ("term-frequency" u, as in Splink). Agreeing on a name five units carry says
    less than agreeing on a name only one carries;
  * for every other level, u is its frequency among random (place, unit) pairs.
Random pairs, not candidate pairs: blocking picks candidates because they agree on
something, so among candidates a neighbour agrees on the street and a namesake on the name
far more often than chance, and weights learnt there would forgive a namesake its wrong
address (a mistake that looks like a moved business).

A place is one business and has at most one register unit. With probability `prior` it is
registered, and then its unit is any of the N units with equal chance; so the odds that
candidate j is the place's unit, against "none of them", are

    prior / ((1 - prior) * N)  x  product over fields of m / u        (in bits: a sum)

and its probability is  odds_j / (1 + sum of every candidate's odds).  Two candidates that
fit equally well share the probability, so an ambiguous place never reaches "match".

m and the prior are estimated by expectation-maximisation over the candidate pairs with
that one-unit-per-place structure (u held fixed). Reviewed verdicts, when there are some,
clamp their pairs to 1 (same business) or 0 (not): semi-supervised EM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from horeca.keying.config import MODEL_FIELDS

FIELDS: tuple[str, ...] = tuple(MODEL_FIELDS)  # the model's fields, in order
MISSING = -1  # grade Z: the field is empty on one side
TF_FIELDS = ("name", "location", "phone", "web", "vat")  # A is weighed by value frequency

# Starting values for EM (m) and fallbacks when there are too few random pairs (u). They
# encode common sense: agreement is likely for a true match and rare otherwise.
PRIOR_M: dict[str, tuple[float, ...]] = {
    "name": (0.60, 0.15, 0.15, 0.10), "location": (0.80, 0.05, 0.03, 0.04, 0.04, 0.04),
    "phone": (0.70, 0.30), "web": (0.80, 0.20), "vat": (0.95, 0.05), "activity": (0.90, 0.10),
}
PRIOR_U: dict[str, tuple[float, ...]] = {
    "name": (0.0005, 0.01, 0.70, 0.2895), "location": (0.0005, 0.001, 0.004, 0.01, 0.08, 0.9045),
    "phone": (0.0005, 0.9995), "web": (0.0005, 0.9995), "vat": (0.0005, 0.9995),
    "activity": (0.30, 0.70),
}
PRIOR_SHARE = 0.7  # share of places that are registered, to start with


@dataclass
class FSModel:
    """m and u per field level, the share of registered places, and the register size."""

    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    prior: float
    register_size: int = 1
    iterations: int = 0
    converged: bool = False
    pairs: int = 0
    places: int = 0
    random_pairs: int = 0
    labelled: int = 0
    fixed: tuple[str, ...] = ()
    history: list[float] = field(default_factory=list)

    @property
    def prior_bits(self) -> float:
        """Log2 odds, before any evidence, that a given unit is a given place's unit."""
        return math.log2(self.prior / ((1.0 - self.prior) * max(1, self.register_size)))

    def weight(self, field_name: str, level: int, tf_u: float | None = None) -> float:
        """Bits for one field; `tf_u` replaces u for agreement on a value of known frequency."""
        if level == MISSING:
            return 0.0
        u = tf_u if (tf_u is not None and level == 0 and field_name in TF_FIELDS) \
            else self.u[field_name][level]
        return float(math.log2(self.m[field_name][level] / u))

    def level_bits(self) -> dict[str, tuple[float, ...]]:
        """`weight` of every level of every field, without term frequencies: a table for
        code that weighs many pairs one at a time."""
        return {f: tuple(math.log2(m / u) for m, u in zip(self.m[f].tolist(), self.u[f].tolist(),
                                                           strict=True))
                for f in self.m}

    def as_dict(self) -> dict:
        """For the run record and the methodology page: every m, u and weight."""
        out: dict = {"prior": round(self.prior, 6), "register_size": self.register_size,
                     "prior_bits": round(self.prior_bits, 3), "iterations": self.iterations,
                     "converged": self.converged, "pairs": self.pairs, "places": self.places,
                     "random_pairs": self.random_pairs, "labelled_pairs": self.labelled,
                     "fixed_fields": list(self.fixed), "fields": {}}
        for f in FIELDS:
            out["fields"][f] = {
                level: {"m": round(float(self.m[f][i]), 6), "u": round(float(self.u[f][i]), 8),
                        "bits": round(float(math.log2(self.m[f][i] / self.u[f][i])), 3)}
                for i, level in enumerate(MODEL_FIELDS[f])}
        return out


def _normalise(counts: np.ndarray, floor: float) -> np.ndarray:
    p = counts / counts.sum() if counts.sum() > 0 else np.full(len(counts), 1 / len(counts))
    p = np.clip(p, floor, 1.0)
    return p / p.sum()


def estimate_u(random_gamma: np.ndarray, register_size: int,
               pseudo_count: float = 1.0) -> dict[str, np.ndarray]:
    """u per field level from the levels of random (place, unit) pairs.

    Each level starts from `pseudo_count` pairs spread as PRIOR_U, so a level never seen
    among the random pairs keeps a small, finite u (at most about 1 / pairs).
    """
    u: dict[str, np.ndarray] = {}
    floor = 0.5 / max(1, register_size)
    for j, f in enumerate(FIELDS):
        k = len(MODEL_FIELDS[f])
        col = random_gamma[:, j] if random_gamma.size else np.empty(0, dtype=np.int8)
        col = col[col != MISSING].astype(np.intp)
        counts = np.bincount(col, minlength=k).astype(np.float64)
        u[f] = _normalise(counts + pseudo_count * np.array(PRIOR_U[f]), floor)
    return u


def pair_bits(model: FSModel, gamma: np.ndarray, tf_u: np.ndarray | None = None) -> np.ndarray:
    """Sum of field weights (no prior) for each row of a level matrix.

    tf_u: optional (pairs x fields) array of term-frequency u for level A (NaN = none).
    """
    total = np.zeros(gamma.shape[0], dtype=np.float64)
    for j, f in enumerate(FIELDS):
        col = gamma[:, j]
        present = col != MISSING
        if not present.any():
            continue
        w = np.log2(model.m[f] / model.u[f])
        total[present] += w[col[present]]
        if tf_u is not None and f in TF_FIELDS:
            adjust = present & (col == 0) & ~np.isnan(tf_u[:, j])
            total[adjust] += np.log2(model.u[f][0] / tf_u[adjust, j])
    return total


def candidate_probabilities(bits: Sequence[float]) -> list[float]:
    """Probability that each candidate is the unit, from their log2 odds against "none"
    (prior included). The candidates compete: the probabilities sum to at most 1."""
    if not bits:
        return []
    top = max(bits)
    if top > 0:
        odds = [2.0 ** (b - top) for b in bits]  # scaled by 2^-top against overflow
        none = 2.0 ** (-top)
    else:
        odds = [2.0 ** b for b in bits]
        none = 1.0
    total = none + sum(odds)
    return [o / total for o in odds]


def monotone(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """m adjusted so that log(m/u) never increases from one level to the next.

    Levels are ordered from "agrees" to "differs"; a worse grade must never weigh more
    than a better one (courts and inspectors would rightly ask why). Adjacent levels that
    violate the order are pooled, as in isotonic regression: each keeps its share of u and
    they get one common weight.
    """
    m = m.copy()
    blocks = [[i] for i in range(len(m))]

    def ratio(block: list[int]) -> float:
        return float(m[block].sum() / u[block].sum())

    changed = True
    while changed:
        changed = False
        for k in range(len(blocks) - 1):
            if ratio(blocks[k + 1]) > ratio(blocks[k]) * (1 + 1e-12):
                blocks[k] = blocks[k] + blocks.pop(k + 1)
                changed = True
                break
    for block in blocks:
        if len(block) > 1:
            m[block] = m[block].sum() * u[block] / u[block].sum()
    return m


def _group_logsumexp(values: np.ndarray, groups: np.ndarray, base: np.ndarray) -> np.ndarray:
    """log(exp(base_g) + sum of exp(values) in group g), per group, stably."""
    top = base.copy()
    np.maximum.at(top, groups, values)
    sums = np.exp(base - top)
    np.add.at(sums, groups, np.exp(values - top[groups]))
    return top + np.log(sums)


def estimate(gamma: np.ndarray, groups: np.ndarray, u: Mapping[str, np.ndarray],
             register_size: int, *, n_places: int | None = None,
             tf_u: np.ndarray | None = None, labels: np.ndarray | None = None,
             fixed: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
             max_iterations: int = 100, tolerance: float = 1e-7,
             min_probability: float = 1e-5, pseudo_count: float = 1.0,
             fixed_share: float | None = None) -> FSModel:
    """EM for m and the registered share, u fixed, at most one true unit per place.

    gamma: (pairs x fields) int8 level codes, MISSING for Z. groups: the place index of each
    pair. n_places: how many places there are (places without candidates count as not
    registered). tf_u: see `pair_bits`. labels: optional, per pair 1 (reviewed as the same
    business), 0 (reviewed as different) or -1. fixed: {field: {level: (m, u)}} held
    constant. A small pseudo-count pulls m towards PRIOR_M so that a level seen a handful of
    times cannot run to 0 or 1. fixed_share: the registered share, when known (a handful
    of places cannot estimate it).
    """
    m = {f: np.array(PRIOR_M[f], dtype=np.float64) for f in FIELDS}
    u = {f: np.asarray(u[f], dtype=np.float64).copy() for f in FIELDS}
    fixed = fixed or {}
    for f, levels in fixed.items():
        order = MODEL_FIELDS[f]
        m[f] = np.array([levels[lv][0] for lv in order])
        u[f] = np.array([levels[lv][1] for lv in order])
    share = fixed_share if fixed_share is not None else PRIOR_SHARE
    n = gamma.shape[0]
    groups = np.asarray(groups, dtype=np.intp)
    n_groups = n_places if n_places is not None else (int(groups.max()) + 1 if n else 0)
    if labels is None:
        labels = np.full(n, -1, dtype=np.int8)
    known = labels >= 0
    result = FSModel(m=m, u=u, prior=share, register_size=register_size, pairs=n,
                     places=n_groups, labelled=int(known.sum()), fixed=tuple(sorted(fixed)))
    if n == 0 or n_groups == 0:
        return result
    log_n = math.log(max(1, register_size))
    positive_groups = np.zeros(n_groups, dtype=bool)
    positive_groups[groups[labels == 1]] = True
    cols = {f: gamma[:, j].astype(np.intp) for j, f in enumerate(FIELDS)}
    present = {f: cols[f] != MISSING for f in FIELDS}
    safe = {f: np.where(present[f], cols[f], 0) for f in FIELDS}
    tf_log = np.zeros(n)
    if tf_u is not None:
        for j, f in enumerate(FIELDS):
            if f in TF_FIELDS:
                adjust = present[f] & (cols[f] == 0) & ~np.isnan(tf_u[:, j])
                tf_log[adjust] += np.log(u[f][0]) - np.log(tf_u[adjust, j])

    previous = -np.inf
    for it in range(1, max_iterations + 1):
        # E-step: each place's candidates compete with "none of them" for one unit.
        log_lr = tf_log.copy()
        for f in FIELDS:
            table = np.log(m[f]) - np.log(u[f])
            log_lr += np.where(present[f], table[safe[f]], 0.0)
        scores = log_lr + math.log(share) - log_n
        base = np.full(n_groups, math.log(1.0 - share))
        norm = _group_logsumexp(scores, groups, base)
        post = np.exp(scores - norm[groups])
        post[known] = labels[known]
        post[positive_groups[groups] & (labels != 1)] = 0.0
        # Log-likelihood, up to the constant part that u (held fixed) contributes.
        ll = float(norm.sum())
        result.history.append(ll)
        # M-step.
        if fixed_share is None:
            share = float(np.clip(post.sum() / n_groups, 1e-4, 1 - 1e-4))
        for f in FIELDS:
            if f in fixed:
                continue
            k = len(MODEL_FIELDS[f])
            c, p = cols[f][present[f]], post[present[f]]
            m_counts = np.bincount(c, weights=p, minlength=k)
            m[f] = monotone(_normalise(m_counts + pseudo_count * np.array(PRIOR_M[f]),
                                       min_probability), u[f])
        result.iterations = it
        if abs(ll - previous) < tolerance * max(1.0, abs(ll)):
            result.converged = True
            break
        previous = ll
    result.m, result.u, result.prior = m, u, share
    return result
