"""Offline gazetteer matching: bilingual names, abbreviations, typos, numbers, fallbacks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horeca.geocode.gazetteer import Gazetteer
from horeca.geocode.geo import haversine_m
from horeca.geocode.model import AddressQuery, Answer
from horeca.geocode.query import build_query, listing_query, unit_query

# Synthetic streets. Even numbers of Rue de la Fourche run along one line, odd ones along
# a parallel line 30 m away: interpolation must stay on its own side.
FOURCHE_EVEN = {10: (50.8480, 4.3540), 20: (50.8490, 4.3560), 30: (50.8500, 4.3580)}
FOURCHE_ODD = {11: (50.8477, 4.3545), 21: (50.8487, 4.3565)}


def _gazetteer() -> Gazetteer:
    g = Gazetteer()
    bxl = ("Bruxelles", "Brussel")
    for number, (lat, lon) in {**FOURCHE_EVEN, **FOURCHE_ODD}.items():
        g.add_point(postcode="1000", street_names=("Rue de la Fourche", "Greepstraat", None),
                    municipalities=bxl, house_number=str(number), lat=lat, lon=lon)
    # Two boxes of number 12 (the box is not part of the house number).
    g.add_point(postcode="1000", street_names=("Rue de la Loi", "Wetstraat", None),
                municipalities=bxl, house_number="16", lat=50.8462, lon=4.3665)
    g.add_point(postcode="1000", street_names=("Rue de la Loi", "Wetstraat", None),
                municipalities=bxl, house_number="12A", lat=50.8464, lon=4.3655)
    g.add_point(postcode="1000", street_names=("Rue de la Paille", "Strostraat", None),
                municipalities=bxl, house_number="2", lat=50.8430, lon=4.3540)
    g.add_point(postcode="1000", street_names=("Place Sainte-Catherine", "Sint-Katelijneplein",
                                               None),
                municipalities=bxl, house_number="1", lat=50.8510, lon=4.3480)
    g.add_point(postcode="1020", street_names=("Avenue Houba de Strooper",
                                               "Houba de Strooperlaan", None),
                municipalities=bxl, house_number="5", lat=50.8950, lon=4.3400)
    ixl = ("Ixelles", "Elsene")
    g.add_segment(postcode="1050", street_names=("Avenue Louise", "Louizalaan"),
                  municipalities=ixl, house_from=1, house_to=101,
                  start=(50.8400, 4.3600), end=(50.8300, 4.3700))
    g.add_segment(postcode="1050", street_names=("Chaussée de Wavre", "Waversesteenweg"),
                  municipalities=ixl, house_from=2, house_to=200,
                  start=(50.8380, 4.3700), end=(50.8300, 4.3900))
    return g.finalize()


GAZ = _gazetteer()


def geocode(street: str | None, number: str | None, postcode: str | None,
            locality: str | None = None, **kw) -> Answer:
    query = build_query(street=street, house_number=number, postcode=postcode,
                        locality=locality, **kw)
    assert query is not None
    return GAZ.match(query)


def test_french_and_dutch_names_of_one_street_give_the_same_point() -> None:
    fr = geocode("Rue de la Loi", "16", "1000")
    nl = geocode("Wetstraat", "16", "1000", "Brussel")
    assert fr.found and fr.precision == "house_number" and fr.method == "exact"
    assert (fr.lat, fr.lon) == (nl.lat, nl.lon) == (50.8462, 4.3665)


@pytest.mark.parametrize("street", ["Av. Louise", "Av Louise", "AVENUE LOUISE", "Louizaln",
                                    "Louizalaan"])
def test_abbreviations_and_case_reach_the_segment(street: str) -> None:
    answer = geocode(street, "51", "1050")
    assert answer.precision == "house_number" and answer.method == "segment"
    # 51 is half-way along 1..101.
    assert answer.lat == pytest.approx(50.8350) and answer.lon == pytest.approx(4.3650)


def test_chaussee_abbreviation_matches_its_dutch_compound() -> None:
    a = geocode("Chau. de Wavre", "101", "1050")
    b = geocode("Waversestwg", "101", "1050")
    assert a.precision == b.precision == "house_number"
    assert (a.lat, a.lon) == (b.lat, b.lon)


def test_a_range_is_geocoded_at_its_first_number_which_keeps_the_side_of_the_street() -> None:
    ranged = geocode("Rue de la Fourche", "11-20", "1000")
    assert (ranged.lat, ranged.lon) == FOURCHE_ODD[11]
    assert ranged.method == "exact"


def test_a_box_does_not_change_the_query_or_the_position() -> None:
    plain = build_query(street="Rue de la Fourche", house_number="20", postcode="1000",
                        locality=None)
    boxed = build_query(street="rue de la fourche", house_number="20 bte 3", postcode="1000",
                        locality="Bruxelles")
    assert plain is not None and boxed is not None
    assert plain.key == boxed.key
    assert (GAZ.match(boxed).lat, GAZ.match(boxed).lon) == FOURCHE_EVEN[20]


def test_a_letter_suffix_uses_its_own_point_else_the_plain_number() -> None:
    assert (geocode("Rue de la Loi", "12A", "1000").lat) == 50.8464
    twelve_b = geocode("Rue de la Loi", "12B", "1000")
    assert twelve_b.method == "exact" and twelve_b.lat == 50.8464


def test_missing_number_is_interpolated_between_neighbours_on_the_same_side() -> None:
    answer = geocode("Rue de la Fourche", "14", "1000")
    assert answer.precision == "house_number" and answer.method == "interpolated"
    lat10, lon10 = FOURCHE_EVEN[10]
    lat20, lon20 = FOURCHE_EVEN[20]
    assert answer.lat == pytest.approx(lat10 + (lat20 - lat10) * 0.4)
    assert answer.lon == pytest.approx(lon10 + (lon20 - lon10) * 0.4)


def test_odd_number_is_interpolated_along_the_odd_side_only() -> None:
    answer = geocode("Rue de la Fourche", "15", "1000")
    lat11, _ = FOURCHE_ODD[11]
    lat21, _ = FOURCHE_ODD[21]
    assert answer.lat == pytest.approx(lat11 + (lat21 - lat11) * 0.4)


def test_a_number_beyond_the_known_ones_is_only_street_precision() -> None:
    answer = geocode("Rue de la Fourche", "90", "1000")
    assert answer.precision == "street" and answer.method == "nearest_number"
    assert (answer.lat, answer.lon) == FOURCHE_EVEN[30]


def test_segment_number_outside_every_segment_falls_back_to_the_street_centroid() -> None:
    answer = geocode("Avenue Louise", "500", "1050")
    assert answer.precision == "street" and answer.method == "street_centroid"
    assert answer.lat == pytest.approx(50.8350)


def test_no_number_gives_the_street_centroid() -> None:
    answer = geocode("Rue de la Fourche", None, "1000")
    assert answer.precision == "street" and answer.method == "street_centroid"


def test_misspelt_street_is_found_by_fuzzy_matching_within_the_postcode() -> None:
    answer = geocode("Rue de la Fourch", "20", "1000")
    assert answer.precision == "house_number"
    assert (answer.lat, answer.lon) == FOURCHE_EVEN[20]
    assert "fuzzy" in (answer.matched or "")
    swapped = geocode("Reu de la Fourche", "20", "1000")
    assert (swapped.lat, swapped.lon) == FOURCHE_EVEN[20]


def test_a_similar_but_different_street_is_not_taken_for_a_typo() -> None:
    # "Paix" is not "Paille": similar whole names, different identity part.
    answer = geocode("Rue de la Paix", "2", "1000")
    assert answer.precision == "postcode" and answer.method == "postcode_centroid"


def test_unknown_street_falls_back_to_the_postcode_centroid() -> None:
    answer = geocode("Rue Qui N'Existe Pas", "3", "1050")
    assert answer.found and answer.precision == "postcode"
    assert "street not found" in (answer.matched or "")


def test_without_postcode_the_locality_names_the_postcodes_to_search() -> None:
    answer = geocode("Wetstraat", "16", None, "Brussel")
    assert answer.precision == "house_number" and answer.lat == 50.8462
    fallback = geocode("Onbekendestraat", "1", None, "Elsene")
    assert fallback.precision == "locality" and fallback.method == "locality_centroid"


def test_wrong_postcode_of_the_same_municipality_still_finds_the_street() -> None:
    answer = geocode("Avenue Houba de Strooper", "5", "1000")
    assert answer.precision == "house_number" and answer.lat == 50.8950
    assert "other_postcode" in (answer.matched or "")


def test_unknown_postcode_and_locality_is_not_found() -> None:
    answer = geocode("Rue de la Loi", "16", "9999", "Nulle Part")
    assert not answer.found and answer.status == "not_found" and answer.reason == "not_found"


def test_a_unit_falls_back_on_its_dutch_name() -> None:
    query = unit_query({"street_fr": "Rue Loi de la Chose", "street_nl": "Wetstraat",
                        "house_number": "16", "postcode": "1000",
                        "municipality_fr": "Bruxelles"})
    assert query is not None and query.street_alt == "wetstraat"
    answer = GAZ.match(query)
    assert answer.lat == 50.8462 and answer.query_key == query.gazetteer_key


def test_a_raw_one_line_address_is_parsed_when_fields_are_missing() -> None:
    query = listing_query({"address_raw": "Rue de la Fourche 20 bte 2, 1000 Bruxelles"})
    assert query is not None and query.number == 20 and query.postcode == "1000"
    assert (GAZ.match(query).lat, GAZ.match(query).lon) == FOURCHE_EVEN[20]


def test_a_street_with_its_number_attached_is_split() -> None:
    query = listing_query({"street": "Rue de la Fourche 20", "postcode": "1000"})
    assert query is not None and query.number == 20 and query.street == "rue de la fourche"


def test_nothing_to_locate_gives_no_query() -> None:
    assert listing_query({"street": "", "postcode": None, "locality": " "}) is None
    assert listing_query({"address_raw": "???"}) is None


def test_shared_core_picks_the_closest_whole_name() -> None:
    # Only "Place Sainte-Catherine" exists; "Sainte Catherine" (no type word) reaches it
    # through its core.
    answer = geocode("Ste-Catherine", "1", "1000")
    assert answer.lat == 50.8510 and "core" in (answer.matched or "")


@given(st.integers(min_value=11, max_value=29).filter(lambda n: n % 2 == 0))
def test_interpolated_positions_lie_between_their_neighbours(number: int) -> None:
    answer = GAZ.match(AddressQuery(street="rue de la fourche", number=number,
                                    postcode="1000"))
    assert answer.precision == "house_number"
    lo = max(n for n in FOURCHE_EVEN if n <= number)
    hi = min(n for n in FOURCHE_EVEN if n >= number)
    (la1, lo1), (la2, lo2) = FOURCHE_EVEN[lo], FOURCHE_EVEN[hi]
    assert min(la1, la2) - 1e-9 <= answer.lat <= max(la1, la2) + 1e-9
    assert min(lo1, lo2) - 1e-9 <= answer.lon <= max(lo1, lo2) + 1e-9
    # Never further from the lower neighbour than the upper one is.
    assert haversine_m(la1, lo1, answer.lat, answer.lon) <= haversine_m(la1, lo1, la2, lo2) + 1e-6


@given(st.sampled_from(["Rue de la Fourche", "rue de la fourche", "RUE DE LA FOURCHE",
                        "R. de la Fourche", "Rue  de la   Fourche"]),
       st.sampled_from(["20", "20 bte 3", "20/1", "20 bus 4", " 20 "]),
       st.sampled_from(["Bruxelles", "Brussel", "Brussels", None]))
def test_query_key_ignores_case_spacing_boxes_abbreviations_and_locality_spelling(
        street: str, number: str, locality: str | None) -> None:
    query = build_query(street=street, house_number=number, postcode="1000", locality=locality)
    assert query is not None
    assert query.key == "rue de la fourche|20|1000||be"


def test_two_streets_sharing_their_dutch_name_stay_apart() -> None:
    # "Avenue X" and "Boulevard X" are both "X-laan": one name, two streets.
    g = Gazetteer()
    g.add_segment(postcode="1040", street_names=("Avenue Berlan", "Berlanlaan"),
                  municipalities=("Etterbeek",), house_from=1, house_to=21,
                  start=(50.830, 4.380), end=(50.832, 4.382))
    g.add_segment(postcode="1040", street_names=("Boulevard Berlan", "Berlanlaan"),
                  municipalities=("Etterbeek",), house_from=30, house_to=60,
                  start=(50.840, 4.390), end=(50.842, 4.392))
    g.finalize()
    assert len(g) == 2
    avenue = g.match(AddressQuery(street="avenue berlan", number=11, postcode="1040"))
    boulevard = g.match(AddressQuery(street="boulevard berlan", number=45, postcode="1040"))
    assert avenue.lat == pytest.approx(50.831) and boulevard.lat == pytest.approx(50.841)
    # The Dutch name alone: the street that has the number wins.
    assert g.match(AddressQuery(street="berlanlaan", number=45, postcode="1040")).lat == \
        pytest.approx(50.841)
    assert g.match(AddressQuery(street="berlanlaan", number=11, postcode="1040")).lat == \
        pytest.approx(50.831)


def test_segments_and_points_of_one_street_merge_across_sources() -> None:
    g = Gazetteer()
    g.add_segment(postcode="1000", street_names=("Rue Neuve", None), municipalities=(),
                  house_from=1, house_to=99, start=(50.850, 4.355), end=(50.853, 4.357))
    g.add_point(postcode="1000", street_names=("Rue Neuve", "Nieuwstraat", None),
                municipalities=(), house_number="7", lat=50.8511, lon=4.3556)
    g.finalize()
    assert len(g) == 1
    assert g.match(AddressQuery(street="nieuwstraat", number=7, postcode="1000")).method == \
        "exact"
    assert g.match(AddressQuery(street="nieuwstraat", number=50, postcode="1000")).method == \
        "segment"


def test_bilingual_osm_street_names_are_split_into_two_names() -> None:
    # OpenStreetMap writes Brussels streets "FR - NL"; either half finds the street.
    query = build_query(street="Rue de la Fourche - Greepstraat", house_number="20",
                        postcode="1000", locality="Bruxelles - Brussel")
    assert query is not None
    assert (query.street, query.street_alt) == ("rue de la fourche", "greepstraat")
    assert (GAZ.match(query).lat, GAZ.match(query).lon) == FOURCHE_EVEN[20]
    hyphenated = build_query(street="Place Sainte-Catherine", house_number="1",
                             postcode="1000", locality=None)
    assert hyphenated is not None and hyphenated.street_alt == ""


def test_english_name_of_brussels_reaches_the_city_and_a_locality_as_street_is_dropped(
        ) -> None:
    query = build_query(street="Brussels", house_number=None, postcode=None,
                        locality="Brussels")
    assert query is not None and query.street == "" and query.locality == "bruxelles"
    answer = GAZ.match(query)
    assert answer.precision == "locality" and answer.method == "locality_centroid"
