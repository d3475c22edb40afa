"""Fixtures shared by several test modules."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

# How late a request's arrival may be timed on a busy 2-core machine: a test server can
# accept a connection, or start its handler, a little after the client sent it. A late
# arrival lengthens one gap and shortens the next, so single gaps are not a fair
# measure; the span between any two requests is.
ARRIVAL_JITTER = 0.25


def check_rate_at_most(times: list[float], per_second: float) -> None:
    """Server-side arrival times respect the rate, allowing for scheduling jitter.

    If the client sends request i at s_i, with s_(i+1) - s_i >= 1/rate, and each arrival
    is timed up to ARRIVAL_JITTER late, then for all i < j the arrivals satisfy
    t_j - t_i >= (j - i) / rate - ARRIVAL_JITTER. A client that ignores the rate sends
    requests back to back and the longer windows fall far short.
    """
    times = sorted(times)
    interval = 1 / per_second
    shortfalls = [
        (j - i, round(times[j] - times[i], 3))
        for i in range(len(times))
        for j in range(i + 1, len(times))
        if times[j] - times[i] < (j - i) * interval - ARRIVAL_JITTER
    ]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert not shortfalls, (shortfalls[:5], gaps)


@pytest.fixture
def assert_rate_at_most() -> Callable[[list[float], float], None]:
    return check_rate_at_most
