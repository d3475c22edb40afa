"""The Fellegi-Sunter model: EM recovers m without labels, weights stay ordered, the
candidates of one place share one unit's probability, and labels steer the estimate."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from horeca.keying.config import MODEL_FIELDS
from horeca.keying.model import (
    FIELDS,
    MISSING,
    candidate_probabilities,
    estimate,
    estimate_u,
    monotone,
    pair_bits,
)

TRUE_M = {"name": [0.80, 0.10, 0.06, 0.04], "location": [0.85, 0.04, 0.03, 0.02, 0.03, 0.03],
          "phone": [0.90, 0.10], "web": [0.95, 0.05], "vat": [0.97, 0.03],
          "activity": [0.97, 0.03]}
TRUE_U = {"name": [0.001, 0.01, 0.60, 0.389],
          "location": [0.001, 0.002, 0.006, 0.02, 0.10, 0.871],
          "phone": [0.001, 0.999], "web": [0.001, 0.999], "vat": [0.001, 0.999],
          "activity": [0.30, 0.70]}
MISSING_RATE = {"name": 0.0, "location": 0.05, "phone": 0.5, "web": 0.8, "vat": 0.95,
                "activity": 0.1}


def _draw(rng: np.random.Generator, probs: dict[str, list[float]], n: int) -> np.ndarray:
    gamma = np.empty((n, len(FIELDS)), dtype=np.int8)
    for j, f in enumerate(FIELDS):
        col = rng.choice(len(probs[f]), size=n, p=probs[f]).astype(np.int8)
        col[rng.random(n) < MISSING_RATE[f]] = MISSING
        gamma[:, j] = col
    return gamma


def synthetic_candidates(seed: int, places: int = 3000, per_place: int = 8,
                         registered: float = 0.8, register_size: int = 2_000):
    """Candidate pairs drawn from known m and u: per place one true pair (if registered)
    among non-matching pairs whose grades follow u *as blocking would skew them*."""
    rng = np.random.default_rng(seed)
    rows, groups, truth = [], [], []
    # Blocking makes non-matching candidates agree more often than random pairs.
    skewed_u = {f: list(np.array(p) / np.sum(p)) for f, p in TRUE_U.items()}
    skewed_u["location"] = [0.005, 0.01, 0.05, 0.30, 0.30, 0.335]
    for i in range(places):
        k = per_place
        if rng.random() < registered:
            rows.append(_draw(rng, TRUE_M, 1))
            groups.append(i)
            truth.append(1)
            k -= 1
        rows.append(_draw(rng, skewed_u, k))
        groups.extend([i] * k)
        truth.extend([0] * k)
    return np.vstack(rows), np.array(groups), np.array(truth), register_size


def test_em_recovers_m_and_the_registered_share_without_labels() -> None:
    gamma, groups, _truth, size = synthetic_candidates(seed=1)
    random_pairs = _draw(np.random.default_rng(2), TRUE_U, 50_000)
    u = estimate_u(random_pairs, size)
    model = estimate(gamma, groups, u, size, n_places=3000)
    assert model.converged
    assert model.prior == pytest.approx(0.8, abs=0.06)  # weak true pairs pull it down a little
    for f in ("name", "phone", "web", "activity"):
        assert model.m[f][0] == pytest.approx(TRUE_M[f][0], abs=0.05), f
    # and the log-likelihood never went down
    assert all(b >= a - 1e-6 * abs(a) for a, b in itertools.pairwise(model.history))


def test_weights_separate_true_pairs_from_the_rest() -> None:
    gamma, groups, truth, size = synthetic_candidates(seed=3)
    u = estimate_u(_draw(np.random.default_rng(4), TRUE_U, 50_000), size)
    model = estimate(gamma, groups, u, size, n_places=3000)
    bits = pair_bits(model, gamma) + model.prior_bits
    # a true pair outranks the place's other candidates in nearly every place
    wins = 0
    registered = 0
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if truth[rows].any():
            registered += 1
            wins += truth[rows][np.argmax(bits[rows])] == 1
    assert wins / registered > 0.95


def test_labels_clamp_their_pairs() -> None:
    gamma = np.array([[0, 0, 0, MISSING, MISSING, 0], [3, 5, 1, MISSING, MISSING, 1]] * 50,
                     dtype=np.int8)
    groups = np.repeat(np.arange(50), 2)
    u = estimate_u(np.empty((0, len(FIELDS)), dtype=np.int8), 1000)
    labels = np.tile(np.array([1, 0], dtype=np.int8), 50)
    model = estimate(gamma, groups, u, 1000, labels=labels)
    assert model.labelled == 100
    assert model.prior == pytest.approx(1.0, abs=1e-3)
    assert model.m["name"][0] > 0.9


def test_fixed_weights_are_kept() -> None:
    gamma, groups, _, size = synthetic_candidates(seed=5, places=200)
    u = estimate_u(np.empty((0, len(FIELDS)), dtype=np.int8), size)
    model = estimate(gamma, groups, u, size, fixed={"phone": {"A": (0.5, 0.01),
                                                              "F": (0.5, 0.99)}})
    assert list(model.m["phone"]) == [0.5, 0.5] and "phone" in model.fixed


def test_monotone_pools_levels_that_would_weigh_out_of_order() -> None:
    m = np.array([0.5, 0.1, 0.3, 0.1])
    u = np.array([0.01, 0.2, 0.2, 0.59])
    fixed = monotone(m, u)
    w = np.log2(fixed / u)
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(w))
    assert fixed.sum() == pytest.approx(m.sum())


def test_candidates_share_probability_and_none_keeps_the_rest() -> None:
    assert candidate_probabilities([]) == []
    one = candidate_probabilities([10.0])
    assert one[0] == pytest.approx(1 / (1 + 2 ** -10))
    twins = candidate_probabilities([10.0, 10.0])
    assert twins[0] == twins[1] < 0.5
    huge = candidate_probabilities([2000.0, 1990.0])
    assert sum(huge) <= 1.0 and not any(math.isnan(p) for p in huge)


def test_model_levels_are_ordered_best_first() -> None:
    for levels in MODEL_FIELDS.values():
        assert levels[0] == "A" and levels[-1] == "F"
