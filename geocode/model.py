"""Records the geocoder passes around: a normalised query, an answer, a run's summary.

Everything here is plain data. A query's `key` is what deduplicates addresses and what the
cache is keyed on (with the provider in front): two addresses that differ only in case,
accents, abbreviations, box or locality spelling (when the postcode is known) share a key,
so they are geocoded, and sent online, once.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Best first. "locality" is the coarsest answer still worth keeping.
PRECISIONS: tuple[str, ...] = ("house_number", "street", "postcode", "locality")
_RANK = {p: i for i, p in enumerate(PRECISIONS)}

STATUS_OK = "ok"
STATUS_NOT_FOUND = "not_found"
STATUS_ERROR = "error"

GAZETTEER = "gazetteer"
# Shown wherever positions from Nominatim or Photon (OpenStreetMap data) are displayed.
OSM_ATTRIBUTION = "Geocoding: Nominatim, data © OpenStreetMap contributors, ODbL 1.0"


def precision_rank(precision: str | None) -> int:
    """0 for house_number ... 3 for locality; no position at all ranks last."""
    return _RANK.get(precision or "", len(PRECISIONS))


@dataclass(slots=True)
class AddressQuery:
    """One address, normalised for matching and deduplication (treat as read-only: its
    keys are derived once, at creation).

    `street` is folded with abbreviations expanded (`normalize_street`); `street_alt` is
    the other language's name when the source carries both (register units), tried by the
    gazetteer when `street` is not found but left out of the key. The first number of a
    range is the one geocoded: it keeps the side of the street, a midpoint may not.
    """

    street: str = ""
    number: int | None = None
    number_last: int | None = None
    suffix: str = ""
    postcode: str | None = None
    locality: str = ""          # folded
    country: str = "BE"
    street_alt: str = ""

    # Derived once at creation: keys are read many times per run (dedup, cache, pending).
    key: str = field(init=False, repr=False, compare=False)
    gazetteer_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        number = f"{self.number}{self.suffix}" if self.number is not None else ""
        # With a postcode the locality adds nothing but spelling variants (Bruxelles,
        # Brussel, Brussels): leaving it out lets those share one key and one request.
        locality = "" if self.postcode else self.locality
        key = f"{self.street}|{number}|{self.postcode or ''}|{locality}|{self.country.lower()}"
        self.key = key
        # The gazetteer's answer can depend on the other-language name too.
        self.gazetteer_key = f"{key}|alt={self.street_alt}" if self.street_alt else key

    @property
    def best_possible(self) -> str:
        """The finest precision this query can reach: no number, no house."""
        if self.street:
            return "house_number" if self.number is not None else "street"
        return "postcode" if self.postcode else "locality"

    def as_dict(self) -> dict[str, Any]:
        return {"street": self.street, "street_alt": self.street_alt, "number": self.number,
                "number_last": self.number_last, "suffix": self.suffix,
                "postcode": self.postcode, "locality": self.locality, "country": self.country}


KEY_SEPARATOR = "#"   # never in a provider id (a domain may hold ':') nor in a folded street


def cache_key(provider: str, query_key: str) -> str:
    return f"{provider}{KEY_SEPARATOR}{query_key}"


def split_cache_key(key: str) -> tuple[str, str]:
    """(provider, query key) of a cache key."""
    provider, _, query_key = key.partition(KEY_SEPARATOR)
    return provider, query_key


CACHE_COLUMNS = ("key", "provider", "query", "lat", "lon", "precision", "status", "error",
                 "created_at", "method", "matched")


@dataclass(slots=True)
class Answer:
    """What one provider said about one query (a row of the `geocodes` cache; read-only)."""

    provider: str
    query_key: str
    query: str                  # what was asked: JSON of the structured query
    status: str                 # ok | not_found | error
    lat: float | None = None
    lon: float | None = None
    precision: str | None = None
    method: str | None = None
    matched: str | None = None
    error: str | None = None    # reason code, then ": detail"
    key: str = field(init=False, repr=False, compare=False)   # the cache key

    def __post_init__(self) -> None:
        self.key = cache_key(self.provider, self.query_key)

    @property
    def found(self) -> bool:
        return self.status == STATUS_OK and self.lat is not None and self.lon is not None

    @property
    def reason(self) -> str | None:
        """The error's reason code (timeout, rate_limited, ...), or not_found."""
        if self.status == STATUS_NOT_FOUND:
            return "not_found"
        if self.error:
            return self.error.split(":", 1)[0]
        return None

    def row(self, created_at: str) -> dict[str, Any]:
        return dict(zip(CACHE_COLUMNS, self.values(created_at), strict=True))

    def values(self, created_at: str) -> tuple[Any, ...]:
        """Its `geocodes` row as a tuple, in `CACHE_COLUMNS` order."""
        return (self.key, self.provider, self.query, self.lat, self.lon, self.precision,
                self.status, self.error, created_at, self.method, self.matched)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Answer:
        provider, query_key = split_cache_key(row["key"])
        return cls(provider=provider, query_key=query_key, query=row["query"] or "",
                   status=row["status"], lat=row["lat"], lon=row["lon"],
                   precision=row["precision"], method=row.get("method"),
                   matched=row.get("matched"), error=row["error"])


def better(a: Answer | None, b: Answer | None) -> Answer | None:
    """The more precise of two answers; on a tie the first (the offline one) wins.

    When neither has a position, the second (the online one) is kept if there is one: its
    error says why the address could not be improved.
    """
    if a is not None and a.found and (
            b is None or not b.found or precision_rank(a.precision) <= precision_rank(b.precision)):
        return a
    if b is not None:
        return b
    return a


def query_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


@dataclass
class GeocodeSummary:
    """Counts a run reports; `as_counts()` is what goes into `runs.counts`."""

    entities: int = 0                 # listings and units in scope
    pending: int = 0                  # of which needed (re)geocoding
    up_to_date: int = 0
    queries: int = 0                  # distinct normalised addresses among the pending
    cache_hits: int = 0               # answers read from the cache instead of computed/sent
    online_requests: int = 0          # HTTP requests sent (retries included)
    online_queries: int = 0           # distinct queries sent online
    online_skipped: int = 0           # would have gone online, but online is off
    # Entities by precision reached ("none" = no position) and by provider of the answer.
    by_precision: Counter[str] = field(default_factory=Counter)
    by_provider: Counter[str] = field(default_factory=Counter)
    # Entities left without a position, by reason; distinct queries that failed online.
    failures: Counter[str] = field(default_factory=Counter)
    online_errors: Counter[str] = field(default_factory=Counter)
    gaps_checked: int = 0
    large_gaps: int = 0
    gap_threshold_m: float = 250.0
    bad_coordinates: int = 0          # own coordinates that are not a position (0,0, out of range)
    attribution: str | None = None

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def as_counts(self) -> dict[str, Any]:
        return {
            "entities": self.entities, "pending": self.pending, "up_to_date": self.up_to_date,
            "queries": self.queries, "cache_hits": self.cache_hits,
            "online_requests": self.online_requests, "online_queries": self.online_queries,
            "online_skipped": self.online_skipped,
            "by_precision": dict(self.by_precision), "by_provider": dict(self.by_provider),
            "failures": dict(self.failures), "online_errors": dict(self.online_errors),
            "gaps_checked": self.gaps_checked, "large_gaps": self.large_gaps,
            "gap_threshold_m": self.gap_threshold_m, "bad_coordinates": self.bad_coordinates,
        }
