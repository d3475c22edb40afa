"""Pure extraction of schema.org entities from HTML: JSON-LD and microdata.

`entities(html)` returns every schema.org node (a dict with "@type") found in the page's
JSON-LD blocks (plain, lists, "@graph", nested, "@id" references resolved) and microdata
(itemscope/itemtype/itemprop, written here with lxml because the rules are short and a
dependency such as extruct would pull in several more parsers we do not need).
`listing_from_entity` maps one FoodEstablishment / LodgingBusiness node to the listing model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from lxml import etree
from lxml import html as lxml_html

# schema.org types we collect, mapped to the category vocabulary shared with OpenStreetMap.
TYPE_CATEGORY: dict[str, str] = {
    "FoodEstablishment": "food",
    "Restaurant": "restaurant",
    "FastFoodRestaurant": "fast_food",
    "CafeOrCoffeeShop": "cafe",
    "BarOrPub": "bar",
    "Bakery": "bakery",
    "Brewery": "bar",
    "Distillery": "bar",
    "Winery": "bar",
    "IceCreamShop": "ice_cream",
    "LodgingBusiness": "lodging",
    "Hotel": "hotel",
    "Hostel": "hostel",
    "BedAndBreakfast": "guest_house",
    "Motel": "motel",
    "Resort": "hotel",
    "Campground": "camp_site",
    "VacationRental": "apartment",
}
_SCHEMA_PREFIX = re.compile(r"^(?:https?://schema\.org/|schema:)", re.I)
_ITEMSCOPE = re.compile("itemscope", re.I)
_SOCIAL = re.compile(r"(facebook|instagram|twitter|x\.com|tiktok|youtube|linkedin|"
                     r"tripadvisor|wikipedia|wikidata)\.", re.I)

JsonNode = dict[str, Any]


class ExtractionErrors(list):
    """Problems met while reading a page (kind, detail); the page is still used."""


# --------------------------------------------------------------------------- JSON-LD

def _json_loads_lenient(text: str) -> Any:
    """JSON-LD blocks in the wild carry comments, trailing commas and raw newlines."""
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        cleaned = re.sub(r"^\s*<!--|-->\s*$", "", text.strip())
        cleaned = re.sub(r",\s*([}\]])", r"\1", cleaned)
        return json.loads(cleaned, strict=False)


def _walk_jsonld(node: Any, inside: bool = False) -> list[tuple[JsonNode, bool]]:
    """Every dict in a JSON-LD document, depth first (covers @graph, lists, nesting), with
    whether it sits inside a business node (a hotel's restaurant is part of the hotel)."""
    found: list[tuple[JsonNode, bool]] = []
    stack: list[tuple[Any, bool]] = [(node, inside)]
    while stack:  # a stack, not recursion: pages nest deeply and this runs for each
        current, within = stack.pop()
        if isinstance(current, list):
            stack.extend((child, within) for child in reversed(current))
        elif isinstance(current, dict):
            found.append((current, within))
            below = within or is_business(current)
            stack.extend((value, below) for key, value in reversed(current.items())
                         if key != "@context" and isinstance(value, (dict, list)))
    return found


def _resolve_refs(node: Any, by_id: dict[str, JsonNode], depth: int = 0) -> Any:
    """Replace {"@id": ...} stubs by the node they name, so "@graph" documents read flat."""
    if depth > 8:
        return node
    if isinstance(node, list):
        return [_resolve_refs(child, by_id, depth + 1) for child in node]
    if isinstance(node, dict):
        if set(node) == {"@id"} and node["@id"] in by_id:
            node = by_id[node["@id"]]
        return {k: _resolve_refs(v, by_id, depth + 1) if k != "@context" else v
                for k, v in node.items()}
    return node


_JSONLD_SCRIPTS = etree.XPath('//script[contains(translate(@type, "LDJSON", "ldjson"),'
                              ' "ld+json")]')  # compiled once, not per page


def jsonld_blocks(doc: Any) -> tuple[list[Any], ExtractionErrors]:
    """Parsed JSON of every <script type="application/ld+json"> block."""
    errors = ExtractionErrors()
    blocks: list[Any] = []
    for script in _JSONLD_SCRIPTS(doc):
        text = script.text or ""
        if not text.strip():
            continue
        try:
            blocks.append(_json_loads_lenient(text))
        except (json.JSONDecodeError, ValueError) as err:
            errors.append(("jsonld_invalid", str(err)[:120]))
    return blocks, errors


def jsonld_entities(blocks: list[Any], *,
                    only: Callable[[JsonNode], bool] | None = None) -> list[tuple[JsonNode, bool]]:
    """Typed nodes of JSON-LD documents (those `only` accepts) with "@id" references
    resolved, each with whether it is nested inside a business node."""
    walked = [pair for block in blocks for pair in _walk_jsonld(block)]
    by_id = {n["@id"]: n for n, _ in walked if isinstance(n.get("@id"), str) and len(n) > 1}
    chosen = [(n, inside) for n, inside in walked if "@type" in n and (only is None or only(n))]
    if not any(len(n) == 1 and isinstance(n.get("@id"), str) and n["@id"] in by_id
               for n, _ in walked):
        return chosen  # nothing refers to another node: resolving would only copy
    return [(_resolve_refs(n, by_id), inside) for n, inside in chosen]


# --------------------------------------------------------------------------- microdata

_URL_PROPS = {"a", "area", "link"}
_SRC_PROPS = {"img", "audio", "video", "source", "embed", "iframe", "track"}


def _microdata_value(el: Any) -> Any:
    if el.get("itemscope") is not None:
        return _microdata_item(el)
    tag = el.tag.lower() if isinstance(el.tag, str) else ""
    if tag == "meta":
        return el.get("content", "")
    if tag in _URL_PROPS:
        return el.get("href", "")
    if tag in _SRC_PROPS:
        return el.get("src", "")
    if tag == "object":
        return el.get("data", "")
    if tag in {"data", "meter"}:
        return el.get("value", "")
    if tag == "time" and el.get("datetime"):
        return el.get("datetime")
    if el.get("content") is not None:
        return el.get("content")
    return el.text_content()


def _property_elements(scope: Any) -> Iterator[Any]:
    """Descendants carrying itemprop that belong to this scope, not to a nested one."""
    stack = list(reversed(scope))
    while stack:
        el = stack.pop()
        if not isinstance(el.tag, str):
            continue
        if el.get("itemprop") is not None:
            yield el
        if el.get("itemscope") is None:
            stack.extend(reversed(el))


def _microdata_item(scope: Any) -> JsonNode:
    item: JsonNode = {}
    itemtype = (scope.get("itemtype") or "").split()
    if itemtype:
        item["@type"] = [t.rstrip("/").rsplit("/", 1)[-1] for t in itemtype]
    if scope.get("itemid"):
        item["@id"] = scope.get("itemid")
    for el in _property_elements(scope):
        value = _microdata_value(el)
        for prop in el.get("itemprop").split():
            prop = prop.rstrip("/").rsplit("/", 1)[-1]
            if prop in item:
                current = item[prop]
                item[prop] = [*current, value] if isinstance(current, list) else [current, value]
            else:
                item[prop] = value
    return item


def microdata_entities(doc: Any) -> list[tuple[JsonNode, bool]]:
    """Typed items of the page's microdata (nested items too), each with whether it is
    nested inside a business item."""
    found: list[tuple[JsonNode, bool]] = []
    for scope in doc.xpath("//*[@itemscope and @itemtype]"):
        inside = any(
            is_business({"@type": [t.rstrip("/").rsplit("/", 1)[-1]
                                   for t in (a.get("itemtype") or "").split()]})
            for a in scope.iterancestors() if a.get("itemscope") is not None)
        found.append((_microdata_item(scope), inside))
    return found


# --------------------------------------------------------------------------- page level

def parse_html(text: str) -> Any:
    """An lxml document; tolerant of broken markup. Empty pages give an empty document."""
    if not text or not text.strip():
        return lxml_html.fromstring("<html></html>")
    try:
        return lxml_html.fromstring(text)
    except (ValueError, lxml_html.etree.ParserError):
        # e.g. a str with an XML encoding declaration
        return lxml_html.fromstring(text.encode("utf-8", "replace"))


def types_of(node: JsonNode) -> list[str]:
    raw = node.get("@type")
    values = raw if isinstance(raw, list) else [raw]
    # both prefixes contain ":"; most types are bare names
    return [_SCHEMA_PREFIX.sub("", v) if ":" in v else v for v in values if isinstance(v, str)]


def is_business(node: JsonNode) -> bool:
    return any(t in TYPE_CATEGORY for t in types_of(node))


def entities(text: str, *, only: Callable[[JsonNode], bool] | None = None
             ) -> tuple[list[tuple[JsonNode, bool]], ExtractionErrors]:
    """Schema.org nodes in a page (JSON-LD first, then microdata; those `only` accepts),
    each with whether it is nested inside a business, and the errors met."""
    doc = parse_html(text)
    blocks, errors = jsonld_blocks(doc)
    found = jsonld_entities(blocks, only=only)
    # the text test first: searching the tree costs more than the page's JSON-LD
    if _ITEMSCOPE.search(text) and doc.find(".//*[@itemscope]") is not None:
        found += [(n, inside) for n, inside in microdata_entities(doc)
                  if only is None or only(n)]
    return found, errors


def businesses(text: str) -> tuple[list[JsonNode], ExtractionErrors]:
    """FoodEstablishment / LodgingBusiness nodes (and subtypes) of a page, outermost only.

    A business nested inside another (a hotel's restaurant) belongs to that listing; the
    same node reached twice (graph member and reference) is returned once.
    """
    found, errors = entities(text, only=is_business)
    outermost = [node for node, inside in found if not inside and is_business(node)]
    if len(outermost) < 2:
        return outermost, errors
    seen: set[str] = set()
    unique: list[JsonNode] = []
    for node in outermost:
        key = json.dumps(node, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(node)
    return unique, errors


# --------------------------------------------------------------------------- mapping

def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _text(value: Any) -> str | None:
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value") or value.get("value")
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _texts(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    out = [_text(v) for v in values]
    return [v for v in out if v]


def _number(value: Any) -> Any:
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("value") or value.get("@value")
    return value


def _address(value: Any) -> dict[str, Any]:
    value = _first(value)
    if value is None:
        return {}
    if isinstance(value, str):
        return {"address_raw": value}
    if not isinstance(value, dict):
        return {}
    street = _text(value.get("streetAddress"))
    postcode = _text(value.get("postalCode"))
    locality = _text(value.get("addressLocality"))
    country = _text(value.get("addressCountry"))
    line2 = " ".join(p for p in (postcode, locality) if p)
    raw = ", ".join(p for p in (street, line2) if p) or _text(value.get("name"))
    parts = {"address_raw": raw, "postcode": postcode, "locality": locality,
             "country": country}
    return {k: v for k, v in parts.items() if v}


def _opening_hours(node: JsonNode) -> str | None:
    hours = _texts(node.get("openingHours"))
    if hours:
        return "; ".join(hours)
    specs = node.get("openingHoursSpecification")
    specs = specs if isinstance(specs, list) else [specs] if specs else []
    rendered = []
    for spec in specs:
        if not isinstance(spec, dict):
            continue
        days = ",".join(_SCHEMA_PREFIX.sub("", d).rsplit("/", 1)[-1][:2]
                        for d in _texts(spec.get("dayOfWeek")))
        rendered.append(f"{days} {spec.get('opens', '')}-{spec.get('closes', '')}".strip())
    return "; ".join(rendered) or None


def category_of(node: JsonNode) -> str | None:
    for t in types_of(node):
        if t in TYPE_CATEGORY and t not in {"FoodEstablishment", "LodgingBusiness"}:
            return TYPE_CATEGORY[t]
    for t in types_of(node):
        if t in TYPE_CATEGORY:
            return TYPE_CATEGORY[t]
    return None


def _website(node: JsonNode, own_hosts: tuple[str, ...]) -> str | None:
    """The business's own site: `url`/`sameAs` that is not the platform and not social media.

    Platforms put their own listing URL in `url`; a link to one of the source's own hosts is
    therefore not the business's website.
    """
    for candidate in [*_texts(node.get("url")), *_texts(node.get("sameAs"))]:
        if not re.match(r"^(https?:)?//|^www\.", candidate, re.I):
            continue
        host = re.sub(r"^(https?:)?//", "", candidate, flags=re.I).split("/")[0].lower()
        host = host.split(":")[0]
        if any(host == h or host.endswith("." + h) for h in own_hosts):
            continue
        if _SOCIAL.search(host):
            continue
        return candidate
    return None


def listing_from_entity(node: JsonNode, *, own_hosts: tuple[str, ...] = ()) -> dict[str, Any]:
    """Map one schema.org business node to listing fields (raw values; pipelines clean them).

    The address keeps the page's postcode, locality and country as parts and its
    streetAddress (street and number together) inside `address_raw`, for the address
    pipeline to split. Reviews, reviewers, photos and e-mail addresses are never read: the
    extractor maps business fields only (the gate's minimiser is the second line).
    """
    geo = _first(node.get("geo")) if isinstance(_first(node.get("geo")), dict) else {}
    rating = _first(node.get("aggregateRating"))
    rating = rating if isinstance(rating, dict) else {}
    item: dict[str, Any] = {
        "name": _text(node.get("name")),
        "alt_names": _texts(node.get("alternateName")),
        "phone_raw": _text(node.get("telephone")),
        "website": _website(node, own_hosts),
        "lat": _number(geo.get("latitude")),
        "lon": _number(geo.get("longitude")),
        "category": category_of(node),
        "review_count": _number(rating.get("reviewCount") or rating.get("ratingCount")),
        "rating": _number(rating.get("ratingValue")),
        "price_range": _text(node.get("priceRange")),
        "rooms": _number(node.get("numberOfRooms")),
        "opening_hours": _opening_hours(node),
        "legal_name": _text(node.get("legalName")),
        "vat": _text(node.get("vatID")) or _text(node.get("taxID")),
        "_url": _text(node.get("url")),
        "_node_id": node.get("@id") if isinstance(node.get("@id"), str) else None,
    }
    item.update(_address(node.get("address")))
    return {k: v for k, v in item.items() if v is not None and v != []}
