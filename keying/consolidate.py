"""Cross-source consolidation: listings of one business on several platforms -> one place.

Two listings are the same business when
  * they share a phone number or a website domain, and they are not far apart (a chain's
    switchboard or website is shared by branches across town), or
  * their coordinates are close and their names similar, or
  * their street, house number and postcode agree and their names are similar.
A phone or domain that more than a handful of listings share is a switchboard or a
platform, and links nothing. Two listings of the same platform are only merged on two
signals at once (contact and name): a platform rarely lists one business twice, while two
businesses on one platform often share a building.

The place id is derived from the sorted member listing ids, so the same listings always
give the same place, and a verdict given on a place can be found again from its listings.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from horeca.keying.compare import name_score
from horeca.keying.config import ConsolidationConfig
from horeca.keying.records import (
    Address,
    ListingRecord,
    PlaceRecord,
    make_names,
    min_distance_m,
)
from horeca.normalize import registered_domain

EVIDENCE_FIELDS = ("name", "url", "phone", "website", "review_count", "rating", "price_range",
                   "rooms", "category", "address_raw", "legal_name", "vat")


def place_id(listing_ids: Iterable[str]) -> str:
    digest = hashlib.sha1("\n".join(sorted(listing_ids)).encode()).hexdigest()
    return f"P{digest[:15]}"


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _same_address(x: ListingRecord, y: ListingRecord) -> bool:
    return any(_same_door(a, b) for a in x.addresses for b in y.addresses)


def _postcodes_differ(x: ListingRecord, y: ListingRecord) -> bool:
    px = {a.postcode for a in x.addresses if a.postcode}
    py = {a.postcode for a in y.addresses if a.postcode}
    return bool(px and py and not px & py)


def _same_door(a: Address, b: Address) -> bool:
    if not a.core or not b.core or a.lo is None or b.lo is None:
        return False
    if a.postcode and b.postcode and a.postcode != b.postcode:
        return False
    a_hi = a.hi if a.hi is not None else a.lo
    b_hi = b.hi if b.hi is not None else b.lo
    return a.core == b.core and a.lo <= b_hi and b.lo <= a_hi


def _points(rec: ListingRecord) -> list[tuple[float, float]]:
    return [p for p in (rec.site_point, rec.address_point) if p is not None]


def should_merge(a: ListingRecord, b: ListingRecord, config: ConsolidationConfig, *,
                 shared_contact: bool, exclusive_contact: bool = False) -> bool:
    """Whether two listings (already known to share a key) are one business.

    shared_contact: they share a phone or a website domain; exclusive_contact: they share
    a phone no other listing has (a chain's switchboard is on every branch's listing, and
    a website is too weak: namesakes pick look-alike domains).
    """
    distance = min_distance_m(_points(a), _points(b))
    close = distance is not None and distance <= config.max_distance_m
    very_close = distance is not None and distance <= config.max_distance_m / 2
    same_address = _same_address(a, b)
    if not shared_contact and (a.source == b.source or not (close or same_address)):
        # What the rules below would say, without comparing the names: most pairs met
        # through neighbouring cells are neither close nor at one door.
        return False
    ns = name_score(a.names, b.names)
    same_name = ns.same >= config.name_similarity
    if a.source == b.source:
        return shared_contact and same_name and (close or same_address or distance is None)
    if shared_contact:
        if exclusive_contact and ns.same >= 95:
            # One phone or site, one name, two platforms: one business, even when one
            # platform still shows an old address.
            return True
        far = (distance is not None and distance > config.shared_contact_max_distance_m
               and not same_address)
        if far:
            return False
        return bool(same_name or close or same_address) and not (
            _postcodes_differ(a, b) and not same_name)
    if very_close and ns.similar >= config.name_similarity:
        return True  # a few metres apart, one name inside the other ("Vesuvio")
    return same_name and (close or same_address)


def _candidate_pairs(records: Sequence[ListingRecord], config: ConsolidationConfig
                     ) -> tuple[dict[tuple[int, int], bool], set[tuple[int, int]]]:
    """({pair sharing a phone or domain: whether only they share it}, pairs sharing a
    place) to examine."""
    by_phone: dict[str, list[int]] = defaultdict(list)
    by_domain: dict[str, list[int]] = defaultdict(list)
    by_address: dict[tuple, list[int]] = defaultdict(list)
    by_cell: dict[tuple[int, int], list[int]] = defaultdict(list)
    lats = [p[0] for r in records for p in _points(r)]
    lat0 = sum(lats) / len(lats) if lats else 50.85
    cell_lat = config.max_distance_m / 111_320.0
    cell_lon = cell_lat / max(0.1, math.cos(math.radians(lat0)))
    for i, r in enumerate(records):
        if r.phone:
            by_phone[r.phone].append(i)
        if r.domain:
            by_domain[r.domain].append(i)
        for key in {(a.core, a.lo) for a in r.addresses if a.core and a.lo is not None}:
            by_address[key].append(i)
        for lat, lon in _points(r):
            by_cell[(int(lat // cell_lat), int(lon // cell_lon))].append(i)
    contact: dict[tuple[int, int], bool] = {}
    for groups, limit in ((by_phone, config.max_listings_per_phone),
                          (by_domain, config.max_listings_per_domain)):
        for members in groups.values():
            if 1 < len(members) <= limit:
                exclusive = len(members) == 2 and groups is by_phone
                for k, a in enumerate(members):
                    for b in members[k + 1:]:
                        contact[(a, b)] = contact.get((a, b), False) or exclusive
    spatial: set[tuple[int, int]] = set()
    for members in by_address.values():
        spatial.update((a, b) for k, a in enumerate(members) for b in members[k + 1:])
    for (cy, cx), members in by_cell.items():
        neighbours = [j for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                      for j in by_cell.get((cy + dy, cx + dx), ())]
        for a in members:
            for b in neighbours:
                if a < b:
                    spatial.add((a, b))
    return contact, spatial - set(contact)


def platform_domains(listings: Iterable[Mapping[str, Any]], limit: int) -> frozenset[str]:
    """Domains in the website field of more than `limit` listings: platforms, social
    networks, booking engines. They say nothing about which business it is."""
    counts: Counter[str] = Counter()
    for listing in listings:
        d = registered_domain(listing.get("website")) if listing.get("website") else None
        if d:
            counts[d] += 1
    return frozenset(d for d, n in counts.items() if n > limit)


def consolidate(records: Sequence[ListingRecord], config: ConsolidationConfig
                ) -> list[PlaceRecord]:
    """Group listings into places; every listing ends up in exactly one place."""
    uf = _UnionFind(len(records))
    contact, spatial = _candidate_pairs(records, config)
    for (a, b), exclusive in sorted(contact.items()):
        if should_merge(records[a], records[b], config, shared_contact=True,
                        exclusive_contact=exclusive):
            uf.union(a, b)
    points = [_points(r) for r in records]
    doors = [{a.core for a in r.addresses if a.core and a.lo is not None} for r in records]
    for a, b in sorted(spatial):
        ra, rb = records[a], records[b]
        if ra.source == rb.source or uf.find(a) == uf.find(b):
            continue  # without a shared contact, one platform's two listings stay apart
        distance = min_distance_m(points[a], points[b])
        if (distance is None or distance > config.max_distance_m) \
                and not doors[a] & doors[b]:
            continue  # neither close nor possibly at one door: `should_merge` says no
        if should_merge(ra, rb, config, shared_contact=False):
            uf.union(a, b)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        groups[uf.find(i)].append(i)
    places = [build_place([records[i] for i in members]) for members in groups.values()]
    places.sort(key=lambda p: p.id)
    return places


def _review_key(rec: ListingRecord) -> tuple:
    return (-(rec.raw.get("review_count") or 0), rec.id)


def build_place(members: Sequence[ListingRecord]) -> PlaceRecord:
    """One place from its listings, keeping every listing's evidence."""
    members = sorted(members, key=_review_key)  # best-known listing first: its name leads
    ids = tuple(sorted(m.id for m in members))
    raw_names: list[str] = []
    for m in members:
        raw_names.extend(m.names.display)
    addresses: list[Address] = []
    for m in members:
        for a in m.addresses:
            if a not in addresses:
                addresses.append(a)
    evidence = {
        "listings": [
            {"id": m.id, "source": m.source,
             **{k: m.raw.get(k) for k in EVIDENCE_FIELDS if m.raw.get(k) not in (None, "")}}
            for m in members],
        "names": list(dict.fromkeys(raw_names)),
        "phones": sorted({m.phone for m in members if m.phone}),
        "websites": sorted({m.raw["website"] for m in members if m.raw.get("website")}),
        "review_counts": {m.source: m.raw.get("review_count") for m in members
                          if m.raw.get("review_count") is not None},
    }
    return PlaceRecord(
        id=place_id(ids), listing_ids=ids,
        sources=tuple(sorted({m.source for m in members})),
        names=make_names(raw_names), addresses=tuple(addresses),
        phones=frozenset(m.phone for m in members if m.phone),
        domains=frozenset(m.domain for m in members if m.domain),
        vats=frozenset(m.vat for m in members if m.vat),
        site_points=tuple(dict.fromkeys(m.site_point for m in members if m.site_point)),
        address_points=tuple(dict.fromkeys(m.address_point for m in members
                                           if m.address_point)),
        natural_person=any(m.natural_person for m in members), evidence=evidence)
