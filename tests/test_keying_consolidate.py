"""Consolidation: one business on several platforms becomes one place; different
businesses stay apart; place ids are stable."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.keying.config import ConsolidationConfig
from horeca.keying.consolidate import consolidate, place_id, platform_domains
from horeca.keying.records import prepare_listing

C = ConsolidationConfig()


def listing(lid: str, **kw) -> dict:
    source, _, sid = lid.partition(":")
    base = {"id": lid, "source": source, "source_id": sid, "name": "Brasserie du Parc",
            "street": "Rue de la Loi", "house_number": "17", "postcode": "1000",
            "phone": "+3225135151", "lat": 50.8460, "lon": 4.3640, "review_count": 10}
    base.update(kw)
    return base


def places_of(*rows: dict) -> list[list[str]]:
    ignored = platform_domains(rows, C.max_listings_per_domain)
    records = [prepare_listing(r, ignored_domains=ignored) for r in rows]
    return sorted(list(p.listing_ids) for p in consolidate(records, C))


def test_same_business_on_two_platforms_is_one_place_with_all_evidence() -> None:
    rows = (listing("gusto:1", review_count=120),
            listing("table:9", name="Brasserie Du Parc", phone=None, lat=50.84605,
                    website="http://brasserieduparc.be", review_count=30))
    ignored = platform_domains(rows, C.max_listings_per_domain)
    [place] = consolidate([prepare_listing(r, ignored_domains=ignored) for r in rows], C)
    assert place.listing_ids == ("gusto:1", "table:9")
    assert place.evidence["review_counts"] == {"gusto": 120, "table": 30}
    assert place.phones == {"+3225135151"} and place.domains == {"brasserieduparc.be"}
    assert len(place.evidence["listings"]) == 2


def test_shared_phone_and_name_merge_even_when_one_platform_has_an_old_address() -> None:
    rows = (listing("gusto:1"),
            listing("table:2", street="Avenue Louise", house_number="300", postcode="1050",
                    lat=50.8200, lon=4.3700))
    assert places_of(*rows) == [["gusto:1", "table:2"]]


def test_chain_branches_sharing_a_switchboard_stay_apart() -> None:
    rows = [listing(f"gusto:{k}", name=f"Quick {area}", street=street, house_number="5",
                    postcode=pc, lat=lat, lon=4.35, phone="+3227000000")
            for k, (area, street, pc, lat) in enumerate([
                ("Louise", "Avenue Louise", "1050", 50.82), ("Midi", "Rue du Midi", "1000",
                                                              50.845),
                ("Flagey", "Place Flagey", "1050", 50.827)])]
    rows.append(listing("table:1", name="Quick Louise", street="Avenue Louise",
                        house_number="5", postcode="1050", lat=50.82, lon=4.35,
                        phone="+3227000000"))
    places = places_of(*rows)
    assert ["gusto:0", "table:1"] in places
    assert ["gusto:1"] in places and ["gusto:2"] in places


def test_neighbours_with_other_names_are_not_merged() -> None:
    rows = (listing("gusto:1", phone=None),
            listing("table:2", name="Pizzeria Napoli", phone=None, house_number="19",
                    lat=50.84605))
    assert places_of(*rows) == [["gusto:1"], ["table:2"]]


def test_two_listings_of_one_platform_need_contact_and_name() -> None:
    rows = (listing("gusto:1", phone=None), listing("gusto:2", phone=None))
    assert places_of(*rows) == [["gusto:1"], ["gusto:2"]]
    assert places_of(listing("gusto:1"), listing("gusto:2")) == [["gusto:1", "gusto:2"]]


def test_platform_domains_in_the_website_field_are_no_evidence() -> None:
    rows = [listing(f"gusto:{k}", name=f"Resto {k}", phone=None, lat=50.80 + k / 100,
                    website=f"https://facebook.com/resto{k}") for k in range(8)]
    assert "facebook.com" in platform_domains(rows, C.max_listings_per_domain)
    assert len(places_of(*rows)) == 8


@settings(max_examples=30, deadline=None)
@given(st.permutations(["gusto:1", "table:7", "osm:node/3", "stay:44"]))
def test_place_id_depends_on_members_not_their_order(ids: list[str]) -> None:
    assert place_id(ids) == place_id(sorted(ids))
    assert place_id(ids) != place_id(ids[:-1])


def test_consolidation_is_deterministic_whatever_the_input_order() -> None:
    rows = [listing("gusto:1"), listing("table:2", name="Brasserie du Parc", lat=50.84604),
            listing("osm:node/5", name="Chez Luigi", phone=None, lat=50.8500,
                    alt_names=json.dumps(["Luigi"]))]
    ids_a = [p.id for p in consolidate([prepare_listing(r) for r in rows], C)]
    ids_b = [p.id for p in consolidate([prepare_listing(r) for r in reversed(rows)], C)]
    assert ids_a == ids_b
