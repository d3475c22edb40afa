"""Comparison-ready records: listings, places and register units after normalisation.

Everything here is pure: a listing dict (the `listings` table shape) or a register-unit dict
(the `register_units` shape, JSON columns already decoded or still as text) goes in, a
frozen record with folded names, street cores, number ranges, E.164 phones, registered
domains and coordinates comes out. The normalisers themselves live in `horeca.normalize`;
this module only decides which of them apply to which column.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from horeca.geocode.geo import EARTH_RADIUS_M, haversine_m
from horeca.normalize import (
    FREE_MAIL_DOMAINS,
    GENERIC_WORDS,
    email_domain,
    fold,
    normalize_name,
    normalize_postcode,
    normalize_street,
    parse_address,
    parse_enterprise_number,
    parse_house_number,
    registered_domain,
    street_core,
    to_e164,
)
from horeca.store import json_text


def _by_fields(self: Any) -> tuple[type, tuple[Any, ...]]:
    """Pickled as the call that makes the record (its fields in order): several times
    quicker to send between processes than the generic state of a slots dataclass."""
    return type(self), tuple(getattr(self, name) for name in type(self).__slots__)


@dataclass(frozen=True, slots=True)
class Address:
    """One address in comparable form. `lo`/`hi` is the house-number range (None if none)."""

    street: str            # normalised street ("avenue louise")
    core: str              # its identity part ("louise")
    lo: int | None
    hi: int | None
    suffix: str
    postcode: str | None
    seat: bool = False     # the enterprise's registered seat, weaker evidence than a unit

    __reduce__ = _by_fields


@dataclass(frozen=True, slots=True)
class Names:
    """Every name of a record, normalised two ways, in the same order."""

    display: tuple[str, ...]      # as written (first = preferred)
    full: tuple[str, ...]         # normalize_name: folded, legal form removed
    informative: tuple[str, ...]  # informative tokens joined by spaces ("" if none)
    tokens: frozenset[str]        # informative tokens, for blocking
    kinds: tuple[frozenset[str], ...] = ()  # kind-of-place words per name ("bar", "hotel")

    __reduce__ = _by_fields


@dataclass(frozen=True, slots=True)
class UnitRecord:
    unit_id: str
    enterprise_number: str | None
    names: Names
    addresses: tuple[Address, ...]        # the unit's own address (FR and NL street names)
    seat_addresses: tuple[Address, ...]   # the enterprise's seat, when it differs
    phones: frozenset[str]
    domains: frozenset[str]
    points: tuple[tuple[float, float], ...]
    horeca: bool | None = None       # None: the register gives no activity for it
    natural_person: bool = False
    trade_name_known: bool = True    # the register holds a commercial or branch name

    __reduce__ = _by_fields


@dataclass(frozen=True, slots=True)
class PlaceRecord:
    """One business as seen online: one or more listings consolidated."""

    id: str
    listing_ids: tuple[str, ...]
    sources: tuple[str, ...]
    names: Names
    addresses: tuple[Address, ...]
    phones: frozenset[str]
    domains: frozenset[str]
    vats: frozenset[str]
    site_points: tuple[tuple[float, float], ...]      # coordinates published by platforms
    address_points: tuple[tuple[float, float], ...]   # geocoded addresses
    natural_person: bool = False
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # Where the business is: the platforms' coordinates and the geocoded addresses (a
    # platform pin is sometimes the street's middle; the nearest point counts). Derived
    # from the two fields above when not given.
    points: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.points:
            merged = self.site_points + tuple(p for p in self.address_points
                                              if p not in self.site_points)
            object.__setattr__(self, "points", merged)

    @property
    def postcodes(self) -> frozenset[str]:
        return frozenset(a.postcode for a in self.addresses if a.postcode)


# ----------------------------------------------------------------------------- helpers


def json_list(value: Any) -> list:
    """A JSON column as a list, whether it arrives decoded, as text or empty."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return [value]
        if isinstance(decoded, list):
            return decoded
        return [decoded]
    return [value]


_JSON_STRING = re.compile(r'"([^"\\]*)"')


def json_strings(value: Any) -> list:
    """The values of a JSON list column where only strings matter: a plain list of strings
    (the register's form) is read with a pattern instead of being decoded; anything else
    is decoded (`json_list`). The strings are the same either way."""
    if isinstance(value, str) and value.startswith("[") and value.endswith("]") \
            and "\\" not in value and "{" not in value and value.count("[") == 1:
        return _JSON_STRING.findall(value)
    return json_list(value)


def min_distance_m(points_a: Sequence[tuple[float, float]],
                   points_b: Sequence[tuple[float, float]]) -> float | None:
    """Shortest distance between two sets of points, in metres (None if one is empty).

    An equirectangular approximation: within a few kilometres it is off by well under a
    metre, and grades only ask "within 60 m?" and "within 250 m?".
    """
    best: float | None = None
    for alat, alon in points_a:
        k = math.cos(math.radians(alat))
        for blat, blon in points_b:
            dy = (alat - blat) * _M_PER_DEG
            dx = (alon - blon) * _M_PER_DEG * k
            d = math.sqrt(dx * dx + dy * dy)
            if best is None or d < best:
                best = d
    if best is not None and best > 20_000:
        # far apart: the approximation drifts, take the exact great-circle distance
        best = min(haversine_m(*a, *b) for a in points_a for b in points_b)
    return best


_M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0


def valid_point(lat: Any, lon: Any) -> tuple[float, float] | None:
    try:
        la, lo = float(lat), float(lon)
    except (TypeError, ValueError):
        return None
    if math.isnan(la) or math.isnan(lo) or not (-90 <= la <= 90 and -180 <= lo <= 180):
        return None
    if la == 0 and lo == 0:  # "null island": a missing value written as zeros
        return None
    return (la, lo)


_WORD = re.compile(r"[a-z0-9]+")


def quick_tokens(name: str) -> list[str]:
    """Folded words of a name, fast for plain ASCII (blocking scans millions of names).

    Gives the same words as `normalize.fold(name).split()` for the tokens blocking uses
    (letters and digits); non-ASCII names go through `fold` itself.
    """
    if name.isascii():
        return _WORD.findall(name.lower())
    return fold(name).split()


# Generic words that are grammar, not a kind of place: they never contradict.
FUNCTION_WORDS = frozenset({
    "le", "la", "les", "l", "un", "une", "de", "du", "des", "d", "au", "aux", "a", "chez",
    "et", "en", "and", "und", "&", "het", "den", "der", "t", "een", "van", "bij", "op", "in",
    "the", "of", "da", "di", "del", "della", "il", "lo", "el", "los", "las", "o", "dos", "do",
    "zum", "zur", "im", "am", "die", "das", "s"})


def kind_words(normalized_name: str) -> frozenset[str]:
    """The generic words of a normalised name that say what kind of place it is."""
    return frozenset(t for t in normalized_name.split()
                     if t in GENERIC_WORDS and t not in FUNCTION_WORDS)


@lru_cache(maxsize=262_144)
def _name_forms(raw: str) -> tuple[str, str, frozenset[str], tuple[str, ...]] | None:
    """(normalised, informative words joined, kind words, informative words) of one name,
    None when nothing is left of it. Cached per name string: a register repeats names
    (chains, branches, enterprise names on every unit) and each is needed several times."""
    if not raw.strip():
        return None
    norm = normalize_name(raw)
    if not norm:
        return None
    words = norm.split()
    info = tuple(w for w in words if w not in GENERIC_WORDS)  # = informative_tokens(raw)
    return norm, " ".join(info), frozenset(
        w for w in words if w in GENERIC_WORDS and w not in FUNCTION_WORDS), info


def make_names(raw_names: Iterable[str | None]) -> Names:
    display: list[str] = []
    full: list[str] = []
    informative: list[str] = []
    kinds: list[frozenset[str]] = []
    tokens: set[str] = set()
    seen: set[str] = set()
    for raw in raw_names:
        if not raw or not isinstance(raw, str):
            continue
        forms = _name_forms(raw)
        if forms is None or forms[0] in seen:
            continue
        norm, info_text, kind, info = forms
        seen.add(norm)
        display.append(raw.strip())
        full.append(norm)
        informative.append(info_text)
        kinds.append(kind)
        tokens.update(info)
    return Names(tuple(display), tuple(full), tuple(informative), frozenset(tokens),
                 tuple(kinds))


_BILINGUAL = re.compile(r"\s+[-–/]\s+")


def street_spellings(street: str | None) -> list[str | None]:
    """The street as written, split when it carries both languages.

    OpenStreetMap and some platforms write bilingual Brussels streets as
    "Rue de la Loi - Wetstraat"; each half is compared on its own.
    """
    if not street:
        return [street]
    parts = [p.strip() for p in _BILINGUAL.split(street) if p.strip()]
    return parts if len(parts) > 1 else [street]


def make_address(street: str | None, house_number: str | None, postcode: str | None,
                 country: str, *, seat: bool = False) -> Address | None:
    pc = normalize_postcode(str(postcode), country) if postcode else None
    street_norm = normalize_street(street) if street else ""
    if not street_norm and not pc:
        return None
    lo, hi, suffix = parse_house_number(str(house_number)) if house_number else (None, None, "")
    return Address(street_norm, street_core(street) if street else "", lo, hi, suffix, pc,
                   seat)


def _domains(urls: Iterable[Any], ignored: frozenset[str]) -> frozenset[str]:
    out = set()
    for url in urls:
        if not url or not isinstance(url, str):
            continue
        d = registered_domain(url)
        if d and d not in ignored and d not in FREE_MAIL_DOMAINS:
            out.add(d)
    return frozenset(out)


def _email_domains(emails: Iterable[Any]) -> frozenset[str]:
    # A business address ("info@resto-x.be") names the business's domain; free mail does not.
    out = set()
    for email in emails:
        d = email_domain(email) if isinstance(email, str) else None
        if d and d not in FREE_MAIL_DOMAINS:
            out.add(d)
    return frozenset(out)


def _phones(values: Iterable[Any], country: str) -> frozenset[str]:
    out = set()
    for value in values:
        if not value or not isinstance(value, str):
            continue
        e164 = value if value.startswith("+") and value[1:].isdigit() else to_e164(value, country)
        if e164:
            out.add(e164)
    return frozenset(out)


# ----------------------------------------------------------------------------- listings


# One URL (nothing that `normalize_url` would split several URLs at), lowercase host, no
# port or user: its registered domain is its host's.
_PLAIN_SITE = re.compile(r"(https?://[a-z0-9.-]+)(?:[/?#][^\s,;|]*)?")


def site_domain(url: str) -> str | None:
    """`registered_domain(url)`, quick for the usual platform page URL: a plain
    "http(s)://host/..." has the registered domain of its host, computed once per host
    (every listing of a platform has one such URL)."""
    plain = _PLAIN_SITE.fullmatch(url) if isinstance(url, str) else None
    if plain:
        return registered_domain(plain.group(1) + "/")
    return registered_domain(url)



@dataclass(frozen=True, slots=True)
class ListingRecord:
    """One listing, normalised; consolidation merges these into places."""

    id: str
    source: str
    names: Names
    addresses: tuple[Address, ...]   # one per spelling of the street ("FR - NL" gives two)
    phone: str | None
    domain: str | None
    vat: str | None
    site_point: tuple[float, float] | None
    address_point: tuple[float, float] | None
    natural_person: bool
    raw: Mapping[str, Any] = field(compare=False, hash=False)


def prepare_listing(listing: Mapping[str, Any], *, country: str = "BE",
                    geocode: Mapping[str, Any] | None = None,
                    ignored_domains: frozenset[str] = frozenset()) -> ListingRecord:
    """A `listings` row (plus its `entity_geocodes` row, if any) in comparable form.

    When the structured address columns are empty, `address_raw` is parsed.
    """
    lid = listing.get("id") or f"{listing.get('source')}:{listing.get('source_id')}"
    names = make_names([listing.get("name"), *json_list(listing.get("alt_names")),
                        listing.get("legal_name")])
    street, number, postcode = (listing.get("street"), listing.get("house_number"),
                                listing.get("postcode"))
    if not street and not postcode and listing.get("address_raw"):
        parts = parse_address(listing["address_raw"], country)
        street, number, postcode = parts.street, parts.house_number, parts.postcode
    addresses = tuple(a for a in (make_address(part, number, postcode, country)
                                  for part in street_spellings(street)) if a is not None)
    phone_values = [listing.get("phone") or listing.get("phone_raw")]
    phones = _phones(phone_values, country)
    # A platform often puts its own page in the website field: never evidence.
    own = site_domain(listing["url"]) if listing.get("url") else None
    domains = _domains([listing.get("website")], ignored_domains | ({own} if own else set()))
    vat = parse_enterprise_number(str(listing["vat"])) if listing.get("vat") else None
    site = valid_point(listing.get("lat"), listing.get("lon"))
    geo = valid_point(geocode.get("lat"), geocode.get("lon")) if geocode else None
    return ListingRecord(
        id=str(lid), source=str(listing.get("source") or str(lid).split(":", 1)[0]),
        names=names, addresses=addresses, phone=min(phones) if phones else None,
        domain=min(domains) if domains else None, vat=vat, site_point=site,
        address_point=geo, natural_person=bool(listing.get("natural_person")), raw=listing)


# ----------------------------------------------------------------------------- units


def unit_names(unit: Mapping[str, Any]) -> list[str]:
    """Every name of a unit, establishment-level names first (they name the premises)."""
    return _names_in_order(json_list(unit.get("names")))


def _names_in_order(entries: Sequence[Any]) -> list[str]:
    named: list[tuple[int, str]] = []
    for entry in entries:
        if isinstance(entry, Mapping):
            text = entry.get("name")
            rank = 0 if entry.get("level") == "establishment" else 1
        else:
            text, rank = entry, 1
        if text:
            named.append((rank, str(text)))
    named.sort(key=lambda item: item[0])
    return [text for _, text in named]


def unit_addresses(unit: Mapping[str, Any], country: str, *, seat: bool) -> tuple[Address, ...]:
    prefix = "seat_" if seat else ""
    out: list[Address] = []
    for lang in ("fr", "nl"):
        street = unit.get(f"{prefix}street_{lang}")
        if not street and out:
            continue
        addr = make_address(street, unit.get(f"{prefix}house_number"),
                            unit.get(f"{prefix}postcode"), country, seat=seat)
        if addr and addr not in out:
            out.append(addr)
    return tuple(out)


# Kind words that also make ordinary company names ("Peeters Food", "X Catering"): they
# do not make a legal name read like the name over a door.
CORPORATE_KIND_WORDS = frozenset({"food", "catering", "events", "event", "delivery", "shop",
                                  "kitchen", "cuisine"})


def _has_trade_name(unit: Mapping[str, Any]) -> bool:
    """Whether the register names the business, not only the company or the person: a
    commercial or branch name at the unit or its enterprise, or a legal name that reads
    like a venue ("Brasserie du Parc SRL", with a word for a kind of place in it)."""
    return _trade_name_in(json_list(unit.get("names")))


def _trade_name_in(entries: Sequence[Any]) -> bool:
    for entry in entries:
        if not isinstance(entry, Mapping):
            return True  # untyped names (generic CSV registers): assume they can be
        if entry.get("type") in ("commercial", "branch"):
            return True
        text = entry.get("name")
        if isinstance(text, str) and text:
            forms = _name_forms(text)
            kinds = forms[2] if forms else frozenset()
            if kinds - CORPORATE_KIND_WORDS:
                return True
    return False


def _horeca(unit: Mapping[str, Any]) -> bool | None:
    """Whether the unit (or its enterprise) declares a HoReCa activity; None if no
    activity at all is known (then the field is graded Z)."""
    nace = unit.get("nace")
    if unit.get("horeca"):
        return True
    if nace in (None, "", "[]"):
        return None
    if isinstance(nace, str) and nace.startswith("[{"):
        return False  # a non-empty list of activities (the register's form), not decoded
    if not json_list(nace):
        return None
    return False


def prepare_unit(unit: Mapping[str, Any], *, country: str = "BE",
                 geocode: Mapping[str, Any] | None = None) -> UnitRecord:
    """A `register_units` row (plus its geocode, if any) in comparable form."""
    entries = json_list(unit.get("names"))  # decoded once: names, trade name
    addresses = unit_addresses(unit, country, seat=False)
    seat = unit_addresses(unit, country, seat=True)
    if not addresses and seat:
        # An enterprise without establishment units trades, if anywhere, at its seat.
        addresses = tuple(replace(a, seat=False) for a in seat)
        seat = ()
    own = {(a.core, a.lo, a.postcode) for a in addresses}
    seat = tuple(a for a in seat if (a.core, a.lo, a.postcode) not in own)
    point = valid_point(unit.get("lat"), unit.get("lon"))
    record = UnitRecord(
        unit_id=str(unit["unit_id"]),
        enterprise_number=(str(unit["enterprise_number"]).replace(".", "")
                           if unit.get("enterprise_number") else None),
        names=make_names(_names_in_order(entries)),
        addresses=addresses, seat_addresses=seat,
        phones=_phones(json_strings(unit.get("phones")), country),
        domains=_domains(json_strings(unit.get("websites")), frozenset())
        | _email_domains(json_strings(unit.get("emails"))),
        points=(point,) if point else (), horeca=_horeca(unit),
        trade_name_known=_trade_name_in(entries),
        natural_person=bool(unit.get("natural_person")))
    return with_geocode(record, geocode)


def with_geocode(record: UnitRecord, geocode: Mapping[str, Any] | None) -> UnitRecord:
    """The unit with its geocoded position first among its points (its own coordinates,
    when they differ, after it)."""
    point = valid_point(geocode.get("lat"), geocode.get("lon")) if geocode else None
    if point is None:
        return record
    return replace(record, points=(point, *(p for p in record.points if p != point)))


# A prepared unit as JSON, so that a keying run can keep the units it prepared for the
# next run (keying/register_keys.py): plain lists, sets sorted, in field order.

def _address_values(a: Address) -> list[Any]:
    return [a.street, a.core, a.lo, a.hi, a.suffix, a.postcode, a.seat]


def unit_record_json(record: UnitRecord) -> str:
    n = record.names
    return json_text.dumps([
        record.unit_id, record.enterprise_number,
        [n.display, n.full, n.informative, sorted(n.tokens), [sorted(k) for k in n.kinds]],
        [_address_values(a) for a in record.addresses],
        [_address_values(a) for a in record.seat_addresses],
        sorted(record.phones), sorted(record.domains), record.points, record.horeca,
        record.natural_person, record.trade_name_known])


def unit_record_from_json(text: str) -> UnitRecord:
    """The inverse of `unit_record_json`: an equal record."""
    return _unit_record(json_text.loads(text))


def unit_records_from_json(texts: Sequence[str]) -> list[UnitRecord]:
    """`unit_record_from_json` of many records, parsed as one JSON array (one call into
    the parser instead of one per record)."""
    if not texts:
        return []
    return [_unit_record(values) for values in json_text.loads("[" + ",".join(texts) + "]")]


def _unit_record(values: list[Any]) -> UnitRecord:
    (unit_id, enterprise, (display, full, informative, tokens, kinds), addresses, seat,
     phones, domains, points, horeca, natural_person, trade_name_known) = values
    return UnitRecord(
        unit_id, enterprise,
        Names(tuple(display), tuple(full), tuple(informative), frozenset(tokens),
              tuple(frozenset(k) for k in kinds)),
        tuple(Address(*a) for a in addresses), tuple(Address(*a) for a in seat),
        frozenset(phones), frozenset(domains), tuple(tuple(p) for p in points), horeca,
        natural_person, trade_name_known)
