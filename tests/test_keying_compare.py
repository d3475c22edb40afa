"""Field comparisons and grades: what counts as the same, similar, different or missing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.keying.compare import (
    A,
    B,
    F,
    address_match,
    compare,
    compare_batches,
    compare_many,
    grade_string,
    has_identity,
    location_level,
    name_score,
    name_scores_batch,
)
from horeca.keying.config import MODEL_FIELDS, GradeConfig
from horeca.keying.consolidate import build_place
from horeca.keying.model import MISSING
from horeca.keying.records import (
    make_address,
    make_names,
    prepare_listing,
    prepare_unit,
    street_spellings,
)

G = GradeConfig()


def unit(**kw) -> dict:
    base = {"unit_id": "2.100.000.001", "enterprise_number": "0123.456.749",
            "names": json.dumps([{"name": "Brasserie du Parc SRL", "type": "legal",
                                  "lang": "fr", "level": "enterprise"}]),
            "street_fr": "Rue de la Loi", "street_nl": "Wetstraat", "house_number": "17",
            "postcode": "1000", "phones": json.dumps(["+3225135151"]),
            "websites": json.dumps(["www.brasserieduparc.be"]),
            "nace": json.dumps([{"code": "56101"}]), "horeca": 1,
            "lat": 50.8460, "lon": 4.3640}
    base.update(kw)
    return base


def listing(**kw) -> dict:
    base = {"id": "gusto:1", "source": "gusto", "source_id": "1", "name": "Brasserie du Parc",
            "street": "Rue de la Loi", "house_number": "17", "postcode": "1000",
            "phone": "+3225135151", "website": "https://brasserieduparc.be/menu",
            "lat": 50.8461, "lon": 4.3641}
    base.update(kw)
    return base


def grades_of(lst: dict, un: dict) -> dict[str, str]:
    place = build_place([prepare_listing(lst)])
    text = compare(place, prepare_unit(un), G).grades
    return dict(part.split(" ") for part in text.split(", "))


def test_everything_agrees_reads_all_a() -> None:
    g = grades_of(listing(), unit())
    assert g == {"name": "A", "street": "A", "number": "A", "postcode": "A", "phone": "A",
                 "web": "A", "vat": "Z", "distance": "A", "activity": "A"}


def test_grade_string_lists_every_field_in_order() -> None:
    levels = (A, B, A, 0, MISSING, MISSING, MISSING, A, 0)
    assert grade_string(levels) == ("name A, street B, number A, postcode A, phone Z, web Z, "
                                    "vat Z, distance A, activity A")


@pytest.mark.parametrize("listing_name", ["BRASSERIE DU PARC", "Brasserie du Parc S.R.L.",
                                          "Brasserie Du Parc", "Brasserie  du parc"])
def test_case_legal_form_and_spacing_do_not_change_the_name(listing_name: str) -> None:
    assert grades_of(listing(name=listing_name), unit())["name"] == "A"


def test_a_typo_is_similar_and_another_name_is_different() -> None:
    assert grades_of(listing(name="Brasserie du Prac"), unit())["name"] == "B"
    assert grades_of(listing(name="Brasserie du Parcq"), unit())["name"] == "B"
    assert grades_of(listing(name="Chez Luigi"), unit())["name"] == "F"


def test_every_name_of_the_unit_is_tried_the_best_counts() -> None:
    names = json.dumps([{"name": "Dupont Invest SRL", "type": "legal", "lang": "fr",
                         "level": "enterprise"},
                        {"name": "Chez Luigi", "type": "commercial", "lang": "",
                         "level": "establishment"}])
    assert grades_of(listing(name="Chez Luigi"), unit(names=names))["name"] == "A"


def test_contradicting_kinds_of_place_are_only_similar() -> None:
    # same identity word, but a bar is not a caterer
    a, b = make_names(["Bar Renard"]), make_names(["Renard Catering"])
    score = name_score(a, b)
    assert score.same < G.name_same <= 100
    assert score.similar >= G.name_similar
    # a kind word on one side only is how platforms write names: still the same
    assert name_score(make_names(["Restaurant Vesuvio"]), make_names(["Vesuvio"])).same == 100


def test_dutch_street_matches_the_registers_dutch_name() -> None:
    g = grades_of(listing(street="Wetstraat"), unit())
    assert (g["street"], g["number"]) == ("A", "A")


def test_abbreviated_street_and_bilingual_osm_spelling_match() -> None:
    assert grades_of(listing(street="R. de la Loi"), unit())["street"] == "A"
    assert street_spellings("Rue de la Loi - Wetstraat") == ["Rue de la Loi", "Wetstraat"]
    assert grades_of(listing(street="Rue de la Loi - Wetstraat"), unit())["street"] == "A"


@pytest.mark.parametrize(("listing_number", "unit_number", "grade"), [
    ("17-19", "17", "A"), ("17", "15-19", "A"), ("17 bte 3", "17", "A"),
    ("17A", "17B", "B"), ("19", "17", "F")])
def test_house_numbers_agree_when_ranges_overlap(listing_number: str, unit_number: str,
                                                 grade: str) -> None:
    g = grades_of(listing(house_number=listing_number), unit(house_number=unit_number))
    assert g["number"] == grade


def test_seat_address_is_weaker_evidence_than_the_units_own() -> None:
    un = unit(street_fr="Avenue Louise", street_nl="Louizalaan", house_number="200",
              postcode="1050", seat_street_fr="Rue de la Loi", seat_street_nl="Wetstraat",
              seat_house_number="17", seat_postcode="1000")
    place = build_place([prepare_listing(listing())])
    match = address_match(place.addresses, prepare_unit(un).addresses,
                          prepare_unit(un).seat_addresses, G)
    assert match.street == B and match.unit_address is not None and match.unit_address.seat


def test_missing_fields_grade_z_and_differing_contacts_grade_f() -> None:
    g = grades_of(listing(phone=None, website="http://other-site.be"), unit(phones=None))
    assert g["phone"] == "Z" and g["web"] == "F"


def test_vat_shown_on_a_listing_is_compared_with_the_enterprise_number() -> None:
    assert grades_of(listing(vat="BE0123456749"), unit())["vat"] == "A"
    assert grades_of(listing(vat="0403170701"), unit())["vat"] == "F"


def test_distance_grades_by_metres() -> None:
    assert grades_of(listing(lat=50.8462), unit())["distance"] == "A"   # ~22 m
    assert grades_of(listing(lat=50.8475), unit())["distance"] == "B"   # ~170 m
    assert grades_of(listing(lat=50.8490), unit())["distance"] == "F"   # ~330 m


def test_non_horeca_unit_grades_activity_f_and_no_activity_z() -> None:
    assert grades_of(listing(), unit(horeca=0, nace=json.dumps([{"code": "62010"}])))[
        "activity"] == "F"
    assert grades_of(listing(), unit(horeca=0, nace=None))["activity"] == "Z"


def test_identity_needs_name_phone_web_or_vat_not_only_location() -> None:
    assert has_identity((F, A, A, 0, MISSING, MISSING, MISSING, A, 0)) is False
    assert has_identity((F, A, A, 0, 0, MISSING, MISSING, A, 0)) is True
    assert has_identity((B, F, MISSING, 1, MISSING, MISSING, MISSING, F, 0)) is True


def test_location_level_counts_address_and_distance_once() -> None:
    level = MODEL_FIELDS["location"].index
    assert location_level(A, A, 0, F) == level("A")            # same door, whatever the pins
    assert location_level(A, F, 0, A) == level("S")            # same street, another door
    assert location_level(MISSING, MISSING, MISSING, A) == level("N")   # no address, near
    assert location_level(MISSING, MISSING, MISSING, A, close=True) == level("C")
    assert location_level(F, MISSING, 1, F) == level("F")      # elsewhere


def test_make_address_parses_number_and_postcode() -> None:
    a = make_address("Av. Louise", "17-20", "B-1050", "BE")
    assert a is not None and (a.core, a.lo, a.hi, a.postcode) == ("louise", 17, 20, "1050")


names = st.lists(st.sampled_from(["Brasserie", "du", "Parc", "Chez", "Luigi", "Café", "Lion",
                                  "Hotel", "Royal", "SRL", "Renard", "Bar", "De", "Gouden"]),
                 min_size=1, max_size=4).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(place_names=st.lists(names, min_size=1, max_size=3),
       unit_names=st.lists(st.lists(names, min_size=1, max_size=3), min_size=1, max_size=4))
def test_batch_name_scores_equal_pair_by_pair(place_names: list[str],
                                              unit_names: list[list[str]]) -> None:
    place = build_place([prepare_listing(listing(name=place_names[0],
                                                 alt_names=json.dumps(place_names[1:])))])
    units = [prepare_unit(unit(unit_id=str(k), names=json.dumps(
        [{"name": n, "type": "legal"} for n in ns]))) for k, ns in enumerate(unit_names)]
    same, similar = name_scores_batch(place.names, units)
    for u, s, t in zip(units, same, similar, strict=True):
        single = name_score(place.names, u.names)
        assert (round(single.same, 6), round(single.similar, 6)) == (round(s, 6), round(t, 6))
    assert [c.levels for c in compare_many(place, units, G)] == \
        [compare(place, u, G).levels for u in units]
    # several places in one batch: each scored as if alone (here: the units reversed, and
    # a place without any name)
    nameless = build_place([prepare_listing(listing(name=None))])
    assert not nameless.names.full
    together = compare_batches([(place, units), (nameless, units), (place, units[::-1])], G)
    assert together == [compare_many(place, units, G), compare_many(nameless, units, G),
                        compare_many(place, units[::-1], G)]
    assert compare_batches([], G) == []


hosts = st.lists(st.sampled_from(["www", "shop", "resto-x", "gustoreviews", "a", "Foo", "b-b",
                                  "co", "be", "uk", "example", "com", "-x", "192", "0", ""]),
                 min_size=1, max_size=4).map(".".join)


@settings(max_examples=300, deadline=None)
@given(scheme=st.sampled_from(["http://", "https://", "HTTP://", "", "ftp://", "http:/"]),
       host=hosts, port=st.sampled_from(["", ":80", ":8080", ":x"]),
       rest=st.sampled_from(["", "/", "/place/le-x-12/", "?utm_source=a&b=1", "#top",
                             "/a b,c", "/x@y", "/ok;http://other.be/"]))
def test_site_domain_is_the_registered_domain(scheme: str, host: str, port: str,
                                              rest: str) -> None:
    from horeca.keying.records import site_domain
    from horeca.normalize import registered_domain

    url = scheme + host + port + rest
    assert site_domain(url) == registered_domain(url)


def test_comparisons_survive_the_trip_between_processes() -> None:
    from horeca.keying.compare import comparison_from_row, comparison_row

    place = build_place([prepare_listing(listing(name="Brasserie du Parc",
                                                 street="Rue Haute", house_number="12"))])
    units = [prepare_unit(unit()),
             prepare_unit(unit(unit_id="2.100.000.002", street_fr="Rue Basse",
                               seat_street_fr="Rue Haute", seat_house_number="12",
                               seat_postcode="1000")),
             prepare_unit(unit(unit_id="2.100.000.003", street_fr=None, street_nl=None,
                               lat=None, lon=None))]
    for u, c in zip(units, compare_many(place, units, G), strict=True):
        back = comparison_from_row(place, u, comparison_row(place, u, c))
        assert back == c
        assert back.address.unit_address is c.address.unit_address


@settings(max_examples=200, deadline=None)
@given(raw=st.one_of(names, st.text(max_size=30)))
def test_name_forms_in_one_pass_equal_the_normalisers(raw: str) -> None:
    from horeca.keying.records import _name_forms, kind_words
    from horeca.normalize import informative_tokens, normalize_name

    forms = _name_forms(raw)
    norm = normalize_name(raw)
    if not raw.strip() or not norm:
        assert forms is None
        return
    info = informative_tokens(raw)
    assert forms == (norm, " ".join(info), kind_words(norm), tuple(info))


def test_prepared_units_survive_pickling() -> None:
    import pickle

    record = prepare_unit(unit(seat_street_fr="Rue Haute", seat_house_number="12",
                               seat_postcode="1000"))
    assert record.seat_addresses and record.names.kinds
    assert pickle.loads(pickle.dumps(record)) == record
