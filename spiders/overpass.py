"""Pure helpers for Overpass-style open-data APIs (OpenStreetMap, ODbL).

`build_query` writes the Overpass QL for a region's bounding box; `listings_from_overpass`
maps the JSON answer's nodes, ways and relations (ways/relations need `out center`) to the
listing model. Source ids are "node/123", "way/45", "relation/6".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

AMENITIES: tuple[str, ...] = ("restaurant", "cafe", "bar", "pub", "fast_food")
TOURISM: tuple[str, ...] = ("hotel", "hostel", "guest_house")
ELEMENT_URL = "https://www.openstreetmap.org/{type}/{id}"


def build_query(bbox: tuple[float, float, float, float], *, timeout_s: int = 90,
                amenities: tuple[str, ...] = AMENITIES,
                tourism: tuple[str, ...] = TOURISM) -> str:
    """Overpass QL selecting HoReCa nodes, ways and relations inside (south, west, north, east)."""
    south, west, north, east = bbox
    box = f"({south},{west},{north},{east})"
    parts = []
    if amenities:
        parts.append(f'  nwr["amenity"~"^({"|".join(amenities)})$"]{box};')
    if tourism:
        parts.append(f'  nwr["tourism"~"^({"|".join(tourism)})$"]{box};')
    return f"[out:json][timeout:{timeout_s}];\n(\n" + "\n".join(parts) + "\n);\nout center tags;\n"


def _coords(element: dict[str, Any]) -> tuple[Any, Any]:
    if element.get("type") == "node":
        return element.get("lat"), element.get("lon")
    center = element.get("center") or {}
    return center.get("lat"), center.get("lon")


def _address_raw(tags: dict[str, str]) -> str | None:
    if tags.get("addr:full"):
        return tags["addr:full"]
    street = " ".join(p for p in (tags.get("addr:street"), tags.get("addr:housenumber")) if p)
    if tags.get("addr:unit"):
        street = f"{street} bus {tags['addr:unit']}" if street else ""
    town = " ".join(p for p in (tags.get("addr:postcode"),
                                tags.get("addr:city") or tags.get("addr:place")) if p)
    return ", ".join(p for p in (street, town) if p) or None


def listing_from_element(element: dict[str, Any], *,
                         element_url: str = ELEMENT_URL) -> dict[str, Any] | None:
    """One OSM element as raw listing fields, or None when it is not a HoReCa element."""
    tags = element.get("tags") or {}
    kind = element.get("type")
    if kind not in {"node", "way", "relation"} or element.get("id") is None:
        return None
    category = tags.get("amenity") if tags.get("amenity") in AMENITIES else None
    category = category or (tags.get("tourism") if tags.get("tourism") in TOURISM else None)
    if category is None:
        return None
    lat, lon = _coords(element)
    alt = [tags[k] for k in sorted(tags)
           if (k.startswith(("name:", "alt_name", "old_name", "official_name", "short_name"))
               or k == "brand") and tags[k] and tags[k] != tags.get("name")]
    item: dict[str, Any] = {
        "source_id": f"{kind}/{element['id']}",
        "url": element_url.format(type=kind, id=element["id"]),
        "name": tags.get("name"),
        "alt_names": list(dict.fromkeys(alt)),
        "address_raw": _address_raw(tags),
        "street": tags.get("addr:street"),
        "house_number": tags.get("addr:housenumber"),
        "box": tags.get("addr:unit") or tags.get("addr:door"),
        "postcode": tags.get("addr:postcode"),
        "locality": tags.get("addr:city") or tags.get("addr:place"),
        "country": tags.get("addr:country"),
        "phone_raw": tags.get("phone") or tags.get("contact:phone"),
        "website": tags.get("website") or tags.get("contact:website") or tags.get("url"),
        "lat": lat,
        "lon": lon,
        "category": category,
        "rooms": tags.get("rooms"),
        "opening_hours": tags.get("opening_hours"),
        "legal_name": tags.get("operator") if tags.get("operator") != tags.get("name") else None,
        "vat": tags.get("ref:vatin") or tags.get("ref:BE:kbo") or tags.get("ref:kbo"),
    }
    return {k: v for k, v in item.items() if v is not None and v != [] and v != ""}


def listings_from_overpass(payload: dict[str, Any], *,
                           element_url: str = ELEMENT_URL) -> Iterator[dict[str, Any]]:
    """Listings of an Overpass JSON answer (elements that are not HoReCa are skipped)."""
    for element in payload.get("elements") or []:
        if isinstance(element, dict):
            item = listing_from_element(element, element_url=element_url)
            if item is not None:
                yield item
