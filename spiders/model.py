"""The one listing model every spider and `listings import` produce.

A listing is a plain dict whose keys are the columns of the `listings` table (see
docs/architecture.md, "Listing"). Spiders may yield extra keys (the gate's minimiser drops
what the source may not keep); the store writer writes only `STORED_FIELDS`.
"""

from __future__ import annotations

from typing import Any

# Fields a spider or an import may fill, in the order of the table.
LISTING_FIELDS: tuple[str, ...] = (
    "source", "source_id", "url", "name", "alt_names", "address_raw", "street",
    "house_number", "box", "postcode", "locality", "country", "phone_raw", "phone",
    "website", "lat", "lon", "category", "review_count", "rating", "price_range", "rooms",
    "opening_hours", "legal_name", "vat", "natural_person",
)
# Columns the writer adds from the crawl itself.
BOOKKEEPING_FIELDS: tuple[str, ...] = ("id", "region", "first_seen", "last_seen", "last_run_id")
STORED_FIELDS: tuple[str, ...] = ("id", *LISTING_FIELDS, *BOOKKEEPING_FIELDS[1:])

TEXT_FIELDS: tuple[str, ...] = (
    "source_id", "url", "name", "address_raw", "street", "house_number", "box", "postcode",
    "locality", "country", "phone_raw", "phone", "website", "category", "price_range",
    "opening_hours", "legal_name", "vat",
)
INT_FIELDS: tuple[str, ...] = ("review_count", "rooms", "natural_person")
FLOAT_FIELDS: tuple[str, ...] = ("lat", "lon", "rating")

# Field coverage reported after each crawl: share of kept listings where the field is set.
# "address" means a street, "geo" means both coordinates.
COVERAGE_FIELDS: tuple[str, ...] = (
    "name", "address", "postcode", "phone", "website", "geo", "review_count",
)
# A fall of these by more than the threshold flags the crawl (a site changed its layout).
CORE_FIELDS: tuple[str, ...] = ("name", "address", "postcode", "phone", "website", "geo")


def listing_id(source: str, source_id: str) -> str:
    """The natural key of a listing: '<source>:<source_id>'."""
    return f"{source}:{source_id}"


def has_field(item: dict[str, Any], field: str) -> bool:
    """Whether a kept listing carries a coverage field."""
    if field == "address":
        return bool(item.get("street"))
    if field == "geo":
        return item.get("lat") is not None and item.get("lon") is not None
    value = item.get(field)
    return value is not None and value != "" and value != []
