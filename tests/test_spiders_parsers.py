"""Spider parsers on saved pages: JSON-LD (@graph, lists, nesting, broken blocks),
microdata, CSS selectors on broken markup, windows-1252 pages, Overpass JSON, and the pure
listing steps (cleaning, address, phone, numbers, region) including property tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrapy.http import HtmlResponse, Request

from horeca.errors import UserError
from horeca.region import Region, resolve_region
from horeca.spiders import steps
from horeca.spiders.kinds import SelectorSpider, StructuredSpider
from horeca.spiders.options import parse_options
from horeca.spiders.overpass import build_query, listings_from_overpass
from horeca.spiders.structured import businesses, listing_from_entity

PAGES = Path(__file__).parent / "data" / "spiders"
BRUSSELS = resolve_region("brussels")


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def html_response(name: str, url: str, headers: dict | None = None) -> HtmlResponse:
    return HtmlResponse(url=url, body=(PAGES / name).read_bytes(), headers=headers or {},
                        request=Request(url))


class FakeSource:
    def __init__(self, name: str, spider: str, options: dict, domains: tuple[str, ...]):
        self.name = name
        self.spider = spider
        self.spider_options = options
        self.allowed_domains = domains
        self.start_urls = (f"http://{domains[0]}/",)


class FakeStats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, n: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + n


class FakeCrawler:
    def __init__(self) -> None:
        self.stats = FakeStats()


def make_spider(cls, source: FakeSource):
    options = parse_options(source.spider, source.spider_options, source=source.name)
    spider = cls(source=source, region=BRUSSELS, options=options)
    spider.crawler = FakeCrawler()
    return spider


# --------------------------------------------------------------------------- JSON-LD

def test_graph_with_id_references_gives_one_restaurant_with_its_address() -> None:
    nodes, errors = businesses(page("jsonld_graph.html"))
    assert errors == []
    assert len(nodes) == 1
    item = listing_from_entity(nodes[0], own_hosts=("reviews.example",))
    assert item["address_raw"] == "Rue des Bouchers 18 bte 2, 1000 Bruxelles"
    assert item["postcode"] == "1000" and item["country"] == "BE"
    assert item["vat"] == "BE 0403.448.140"
    # the platform's own URL is not the business website, nor is facebook
    assert item["website"] == "www.chezleon.be"
    assert item["category"] == "restaurant"


def test_the_same_business_twice_on_a_page_is_one_listing_and_others_stay() -> None:
    cafe = {"@context": "https://schema.org", "@type": "CafeOrCoffeeShop", "name": "Café A",
            "telephone": "02 511 11 11"}
    bar = {**cafe, "@type": "BarOrPub", "name": "Bar B"}
    blocks = "".join(f'<script type="application/ld+json">{json.dumps(node)}</script>'
                     for node in (cafe, bar, cafe))
    nodes, errors = businesses(f"<html><head>{blocks}</head><body></body></html>")
    assert errors == [] and [n["name"] for n in nodes] == ["Café A", "Bar B"]


def test_extractor_never_reads_reviews_reviewers_or_photos() -> None:
    nodes, _ = businesses(page("jsonld_graph.html"))
    item = listing_from_entity(nodes[0])
    text = json.dumps(item, ensure_ascii=False)
    assert "Marie Dupont" not in text and "mussels" not in text and "leon.jpg" not in text


def test_lists_item_lists_prefixed_types_and_trailing_commas() -> None:
    nodes, errors = businesses(page("jsonld_lists.html"))
    names = [n["name"] for n in nodes]
    # WebSite/Organization are not businesses; the hotel's restaurant belongs to the hotel
    assert names == ["Café Central", "Hôtel Métropole", "Delirium"]
    assert [kind for kind, _ in errors] == ["jsonld_invalid"]
    hotel = listing_from_entity(nodes[1])
    assert hotel["rooms"] == 238 and hotel["category"] == "hotel"


def test_listing_without_name_is_extracted_then_dropped_by_validation() -> None:
    nodes, _ = businesses(page("missing_fields.html"))
    items = [steps.clean_strings({**listing_from_entity(n), "source": "s", "source_id": "1"})
             for n in nodes]
    reasons = [steps.validate(i) for i in items]
    assert reasons == ["missing_name", "missing_name", None]


# --------------------------------------------------------------------------- microdata

def test_microdata_hotel_with_nested_scopes() -> None:
    nodes, _ = businesses(page("microdata_hotel.html"))
    assert len(nodes) == 1  # the nested restaurant and the breadcrumb are not listings
    raw = listing_from_entity(nodes[0], own_hosts=("stay.example",))
    item = steps.normalise_listing({**raw, "source": "s", "source_id": "4411"})
    assert item["name"] == "Hotel Amigo"
    assert item["street"] == "Rue de l'Amigo" and item["house_number"] == "1-3"
    assert item["phone"] == "+3225474747" and item["phone_raw"] == "02/547.47.47"
    assert (item["lat"], item["lon"]) == (50.8458, 4.3526)
    assert item["rooms"] == 174 and item["review_count"] == 2018 and item["rating"] == 9.1
    assert "Jan Peeters" not in json.dumps(item)


def test_structured_spider_takes_ids_from_the_detail_url_pattern() -> None:
    source = FakeSource("stay", "structured",
                        {"detail_url_pattern": r"/hotel/[^/]+-(?P<id>\d+)/$"}, ("stay.example",))
    spider = make_spider(StructuredSpider, source)
    url = "http://stay.example/hotel/hotel-amigo-4411/"
    out = list(spider.parse(html_response("microdata_hotel.html", url)))
    items = [o for o in out if isinstance(o, dict)]
    assert [(i["source_id"], i["url"], i["source"]) for i in items] == [("4411", url, "stay")]
    assert not any(k.startswith("_") for k in items[0])


def test_structured_spider_ids_for_several_listings_on_one_page() -> None:
    source = FakeSource("rev", "structured", {"items_on_listing_pages": True,
                                              "detail_url_pattern": r"/place/[^/]+-(\d+)/"},
                        ("reviews.example",))
    spider = make_spider(StructuredSpider, source)
    out = list(spider.listings(html_response("jsonld_lists.html",
                                             "http://reviews.example/brussels/"), detail=False))
    assert [i["source_id"] for i in out] == ["77", "78", "79"]
    assert out[0]["url"] == "http://reviews.example/place/cafe-central-77/"
    assert spider.crawler.stats.values["horeca/errors/jsonld_invalid"] == 1


# --------------------------------------------------------------------------- selectors

TABLEBOOK_OPTIONS = {
    "detail_url_pattern": r"/restaurant/[^/]+-(?P<id>\d+)/$",
    "fields": {
        "name": "h1.venue-name",
        "source_id": ".venue::attr(data-id)",
        "address_raw": "p.addr::text",
        "phone_raw": {"css": "span.tel::text"},
        "website": "a.site::attr(href)",
        "lat": ".venue::attr(data-lat)",
        "lon": ".venue::attr(data-lon)",
        "review_count": {"css": ".reviews-count::text", "re": r"(\d+)\s+reviews"},
        "price_range": {"css": "p.kind::text", "re": r"·\s*(\S+)"},
    },
}


def test_selector_spider_reads_a_page_with_unclosed_tags() -> None:
    source = FakeSource("tb", "selector", TABLEBOOK_OPTIONS, ("tb.example",))
    spider = make_spider(SelectorSpider, source)
    url = "http://tb.example/restaurant/la-bonne-fourchette-5521/"
    (raw,) = [o for o in spider.parse(html_response("broken_venue.html", url))
              if isinstance(o, dict)]
    item = steps.normalise_listing(raw)
    assert item["name"] == "La Bonne Fourchette" and item["source_id"] == "5521"
    assert item["street"] == "Chaussée de Wavre" or item["street"].startswith("Chau")
    assert item["postcode"] == "1050" and item["box"] == "3"
    assert item["phone"] == "+3225123456"
    assert item["website"] == "http://www.bonnefourchette.be/"
    assert item["review_count"] == 87 and item["price_range"] == "€€"


def test_windows_1252_page_is_decoded_from_its_meta_charset() -> None:
    source = FakeSource("tb", "selector", TABLEBOOK_OPTIONS, ("tb.example",))
    spider = make_spider(SelectorSpider, source)
    url = "http://tb.example/restaurant/brasserie-de-l-ecluse-7001/"
    (raw,) = [o for o in spider.parse(html_response("cp1252_venue.html", url))
              if isinstance(o, dict)]
    assert raw["name"] == "Brasserie de l'Écluse – Café"
    assert steps.normalise_listing(raw)["phone"] == "+3222190000"
    assert raw["price_range"] == "€€"


def test_selector_page_without_name_counts_an_error_and_yields_nothing() -> None:
    source = FakeSource("tb", "selector", TABLEBOOK_OPTIONS, ("tb.example",))
    spider = make_spider(SelectorSpider, source)
    url = "http://tb.example/restaurant/x-1/"
    out = list(spider.parse(html_response("jsonld_lists.html", url)))
    assert not [o for o in out if isinstance(o, dict)]
    assert spider.crawler.stats.values["horeca/errors/selector_no_name"] == 1


@pytest.mark.parametrize(("options", "message"), [
    ({"fields": {"phone_raw": "a"}}, "at least `name`"),
    ({"fields": {"name": "h1[["}}, "invalid CSS selector"),
    ({"fields": {"name": "xpath://h1[", }}, "invalid XPath selector"),
    ({"fields": {"name": "h1", "reviews": "p"}}, "not a listing field"),
    ({"fields": {"name": "h1"}, "detail_url_pattern": "(unclosed"}, "invalid regular"),
    ({"fields": {"name": "h1"}, "follow": "a"}, "not an option"),
])
def test_bad_selector_options_name_the_source_and_key(options: dict, message: str) -> None:
    with pytest.raises(UserError) as err:
        parse_options("selector", options, source="tb", path="sources.toml")
    assert message in str(err.value) and "sources.tb.spider_options" in str(err.value)


# --------------------------------------------------------------------------- overpass

def test_overpass_nodes_ways_relations_with_center() -> None:
    payload = json.loads(page("overpass.json"))
    items = {i["source_id"]: i for i in listings_from_overpass(payload)}
    assert set(items) == {"node/101", "way/45", "relation/6", "node/103", "way/46"}
    assert items["way/45"]["lat"] == 50.8410 and items["way/45"]["category"] == "hotel"
    assert items["way/45"]["phone_raw"] == "02 513 60 40"
    assert "lat" not in items["way/46"]  # a way without `out center` has no coordinates
    node = steps.normalise_listing({**items["node/101"], "source": "osm"})
    assert node["alt_names"] == ["In 't Spinnekopke"]
    assert node["street"] == "Rue des Bouchers" and node["postcode"] == "1000"
    assert node["url"] == "https://www.openstreetmap.org/node/101"
    assert steps.parse_vat(items["relation/6"])["vat"] == "0403448140"


def test_overpass_query_covers_the_bbox_and_every_category() -> None:
    query = build_query((50.76, 4.24, 50.91, 4.48))
    assert "(50.76,4.24,50.91,4.48)" in query and "out center" in query
    for tag in ("restaurant", "cafe", "bar", "pub", "fast_food", "hotel", "hostel",
                "guest_house"):
        assert tag in query


# --------------------------------------------------------------------------- steps

def test_region_filter_uses_postcode_then_coordinates() -> None:
    assert steps.region_drop_reason({"postcode": "1050"}, BRUSSELS) is None
    assert steps.region_drop_reason({"postcode": "2000"}, BRUSSELS) == "outside_region"
    assert steps.region_drop_reason({"lat": 51.2, "lon": 4.4}, BRUSSELS) == "outside_region"
    assert steps.region_drop_reason({"lat": 50.85, "lon": 4.35}, BRUSSELS) is None
    assert steps.region_drop_reason({"postcode": "1000", "country": "FR"},
                                    BRUSSELS) == "outside_region"
    assert steps.region_drop_reason({"name": "x"}, BRUSSELS) is None
    narrow = Region(name="x", postcode_ranges=((1050, 1050),))
    assert steps.region_drop_reason({"postcode": "1000"}, narrow) == "outside_region"


@pytest.mark.parametrize(("raw", "expected"), [
    ("1 234", 1234), ("1.234", 1234), ("(87)", 87), ("2,018 reviews", 2018), ("4.5", 4),
    ("none", None), (12.0, 12), ("", None),
])
def test_counts_read_as_integers(raw, expected) -> None:
    assert steps.to_int(raw) == expected


def test_impossible_values_are_removed_not_stored() -> None:
    item = steps.coerce_numbers({"lat": "200", "lon": "4", "review_count": "-3",
                                 "rating": "55", "rooms": "12"})
    assert "lat" not in item and "lon" not in item
    assert "review_count" not in item and "rating" not in item and item["rooms"] == 12


def test_invalid_vat_and_phone_are_dropped_but_raw_phone_is_kept() -> None:
    item = steps.normalise_listing({"vat": "BE 0403.448.141", "phone_raw": "tel:12"})
    assert "vat" not in item and "phone" not in item and item["phone_raw"] == "12"


listing_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(name=listing_text, address=listing_text, phone=listing_text,
       count=st.one_of(listing_text, st.integers(-5, 10**6), st.none()),
       lat=st.one_of(st.floats(allow_nan=True), listing_text))
def test_normalising_never_fails_and_is_idempotent(name, address, phone, count, lat) -> None:
    raw = {"source": "s", "source_id": "1", "name": name, "address_raw": address,
           "phone_raw": phone, "review_count": count, "lat": lat, "lon": 4.35,
           "alt_names": [name, " ", address]}
    once = steps.normalise_listing(raw)
    assert steps.normalise_listing(once) == once
    for value in once.values():
        assert value != ""


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_clean_text_of_plain_ascii_is_the_general_cleaning(text: str) -> None:
    import html
    import re
    import unicodedata

    general = html.unescape(text) if "&" in text else text  # the slow path, spelled out
    general = re.sub(r"<[^>]{0,200}>", " ", general) if "<" in general else general
    general = unicodedata.normalize("NFC", general)
    general = re.sub(r"\s+", " ", general).strip() or None
    assert steps.clean_text(text) == general


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_clean_text_collapses_whitespace_and_is_idempotent(text: str) -> None:
    cleaned = steps.clean_text(text)
    if cleaned is not None:
        assert cleaned == cleaned.strip() and "  " not in cleaned
        assert steps.clean_text(cleaned) == cleaned
