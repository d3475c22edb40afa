"""From a listing or register-unit row to a normalised `AddressQuery` (pure functions).

Boxes never reach the query: every box of a building shares its position, so "12 bte 3"
and "12" are one query. Brussels writes names in both languages at once, as
OpenStreetMap does ("Rue de la Fourche - Greepstraat", "Bruxelles - Brussel"): the first
name is the street, the second its alternative. An address with neither postcode nor
locality cannot be placed (a street name alone repeats across municipalities): it is
reported as `unparsable`, or `no_address` when there is nothing at all, and never sent.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from horeca.geocode.model import AddressQuery
from horeca.normalize import (
    country_code,
    fold,
    normalize_postcode,
    normalize_street,
    parse_address,
    parse_house_number,
)

_DIGIT = re.compile(r"\d")
# "FR - NL" (spaces around the dash: "Sainte-Catherine" is one name).
_BILINGUAL = re.compile(r"\s+[-–/]\s+")
# Names of the city of Brussels that no register column carries (English, German, the
# official "city of" forms); the gazetteer knows "Bruxelles" and "Brussel".
_LOCALITY_ALIASES = {
    "brussels": "bruxelles", "city of brussels": "bruxelles", "ville de bruxelles": "bruxelles",
    "stad brussel": "brussel", "bruxelles ville": "bruxelles", "brussel stad": "brussel",
    "brussels city": "bruxelles",
}

NO_ADDRESS = "no_address: nothing to geocode"
UNPARSABLE = "unparsable: neither postcode nor locality"


@lru_cache(maxsize=65_536)  # localities and bilingual street names repeat
def split_bilingual(name: str | None) -> tuple[str | None, str | None]:
    """"Rue de la Fourche - Greepstraat" -> ("Rue de la Fourche", "Greepstraat")."""
    if not name:
        return name, None
    parts = [p for p in _BILINGUAL.split(name.strip()) if p.strip()]
    if len(parts) == 2 and all(re.search(r"[^\W\d_]{2}", p) for p in parts):
        return parts[0].strip(), parts[1].strip()
    return name, None


@lru_cache(maxsize=65_536)
def locality_key(locality: str | None) -> str:
    if not locality:
        return ""
    first, _other = split_bilingual(locality)
    folded = fold(first)
    return _LOCALITY_ALIASES.get(folded, folded)


@lru_cache(maxsize=131_072)  # a street is written the same way by many listings
def street_names(street: str | None, street_alt: str | None) -> tuple[str, str]:
    """(street, other-language name), normalised: "Rue de la Fourche - Greepstraat"
    gives both; a given `street_alt` wins over the second half of a bilingual name."""
    first, second = split_bilingual(street)
    return normalize_street(first), normalize_street(street_alt or second)


def _names_the_locality(street: str | None, locality: str | None, locality_n: str) -> bool:
    """"Brussels, Brussels": the locality written where the street goes."""
    first, _second = split_bilingual(street)
    return locality_key(first) == locality_n or fold(first) == fold(locality)


def build_query(*, street: str | None, house_number: str | None, postcode: str | None,
                locality: str | None, country: str | None = None, street_alt: str | None = None,
                raw: str | None = None, default_country: str = "BE") -> AddressQuery | None:
    """The normalised query for one address, or None without postcode or locality.

    Structured fields win; `raw` (the address as one line) fills what they lack. A street
    with its number still attached ("Rue Neuve 12") is split.
    """
    return _build(street, house_number, postcode, locality, country, street_alt, raw,
                  default_country)


def _build(street: str | None, house_number: str | None, postcode: str | None,
           locality: str | None, country: str | None, street_alt: str | None,
           raw: str | None, default_country: str) -> AddressQuery | None:
    cc = country_code(country) or default_country.upper()
    if raw and not street and not postcode:
        parts = parse_address(raw, cc)
        street, house_number = parts.street, house_number or parts.house_number
        postcode, locality = parts.postcode, locality or parts.locality
    elif street and not house_number and _DIGIT.search(street):
        parts = parse_address(street, cc)
        if parts.street and parts.house_number:
            street, house_number = parts.street, parts.house_number
    # Each part is normalised by a memoised function: parts repeat far more than
    # whole addresses do.
    street_n, alt_n = street_names(street, street_alt)
    first, last, suffix = parse_house_number(house_number) if house_number else (None, None, "")
    postcode_n = normalize_postcode(postcode, cc) if postcode else None
    locality_n = locality_key(locality)
    if street_n and first is None and _names_the_locality(street, locality, locality_n):
        street_n, alt_n, last, suffix = "", "", None, ""
    if not street_n and alt_n:
        street_n, alt_n = alt_n, ""
    if not postcode_n and not locality_n:
        # A street name alone repeats across municipalities: nothing places it.
        return None
    return AddressQuery(street_n, first, last if last != first else None, suffix, postcode_n,
                        locality_n, cc, alt_n)


def why_no_query(*fields: str | None) -> str:
    """The reason an address gave no query: nothing at all, or nothing that places it."""
    return UNPARSABLE if any(f and str(f).strip() for f in fields) else NO_ADDRESS


# `build_query` with positional text arguments (street, house_number, postcode, locality,
# country, street_alt, raw, default_country), memoised: listings and units repeat addresses
# (chains, several platforms, boxes of one building), and parsing each distinct one once
# keeps collection fast. Callers must not modify the result.
address_query = lru_cache(maxsize=262_144)(_build)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def listing_query(row: dict[str, Any], default_country: str = "BE") -> AddressQuery | None:
    return address_query(_text(row.get("street")), _text(row.get("house_number")),
                         _text(row.get("postcode")), _text(row.get("locality")),
                         _text(row.get("country")), None, _text(row.get("address_raw")),
                         default_country)


def unit_query(row: dict[str, Any], default_country: str = "BE") -> AddressQuery | None:
    """Register units carry the street in French and Dutch; French leads (it is the name
    most platforms use in Brussels), Dutch is the gazetteer's second try."""
    street_fr, street_nl = row.get("street_fr"), row.get("street_nl")
    return address_query(_text(street_fr or street_nl), _text(row.get("house_number")),
                         _text(row.get("postcode")),
                         _text(row.get("municipality_fr") or row.get("municipality_nl")), None,
                         _text(street_nl if street_fr else None), None, default_country)
