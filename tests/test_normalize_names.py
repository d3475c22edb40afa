"""Business names: legal forms, generic words, '&' variants, sole-trader detection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.normalize.names import (
    GENERIC_WORDS,
    LEGAL_FORMS,
    informative_tokens,
    looks_like_person_name,
    name_tokens,
    normalize_name,
    strip_legal_form,
)
from horeca.normalize.text import fold


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Brasserie L'Écluse  ", "brasserie l ecluse"),
        ("Straße Œuvre Æther", "strasse oeuvre aether"),
        ("Café—Théâtre", "cafe theatre"),
        ("B&B", "b & b"),
        ("ÇA VA?", "ca va"),
        ("", ""),
        (None, ""),
    ],
)
def test_fold_lowercases_strips_accents_and_punctuation(raw: str | None, expected: str) -> None:
    assert fold(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Brasserie De Smet BVBA", "Brasserie De Smet"),
        ("Brasserie De Smet B.V.B.A.", "Brasserie De Smet"),
        ("Brasserie De Smet b v b a", "Brasserie De Smet"),
        ("Brasserie De Smet, SPRL", "Brasserie De Smet"),
        ("S.P.R.L. Chez Marie", "Chez Marie"),
        ("SPRL Chez Marie", "Chez Marie"),
        ("Le Wagon (SA)", "Le Wagon"),
        ("Le Wagon (S.A.)", "Le Wagon"),
        ("Hotel Amigo SA/NV", "Hotel Amigo"),
        ("Hotel Amigo NV - SA", "Hotel Amigo"),
        ("Frituur Vlaams VOF", "Frituur Vlaams"),
        ("Den Hoek CommV", "Den Hoek"),
        ("Den Hoek Comm.V.", "Den Hoek"),
        ("Le Coin SComm", "Le Coin"),
        ("Les Amis ASBL", "Les Amis"),
        ("De Vrienden vzw", "De Vrienden"),
        ("Pizza Roma SPRL-U", "Pizza Roma"),
        ("Pizza Roma SPRLU", "Pizza Roma"),
        ("Pizza Roma EBVBA", "Pizza Roma"),
        ("La Coopé SCRL", "La Coopé"),
        ("De Coöp CVBA", "De Coöp"),
        ("Le Zinc SRL", "Le Zinc"),
        ("Het Hoekje BV", "Het Hoekje"),
        ("Burger Ltd", "Burger"),
        ("Rock Café GmbH & Co. KG", "Rock Café"),
        ("Bistro Sàrl", "Bistro"),  # Luxembourg writes SARL with an accent
        # Not legal forms: words that merely contain the letters.
        ("Salsa Bar", "Salsa Bar"),
        ("Casa Nova", "Casa Nova"),
        ("Snack Vivas", "Snack Vivas"),
        # A name that is only a legal form stays as it is.
        ("NV", "NV"),
        ("", ""),
    ],
)
def test_strip_legal_form_removes_leading_trailing_dotted_and_bracketed_forms(
    raw: str, expected: str
) -> None:
    assert strip_legal_form(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Pain et Vin S.R.L.", "pain & vin"),
        ("Pain & Vin", "pain & vin"),
        ("Brood en Wijn BV", "brood & wijn"),
        ("Bread and Wine Ltd", "bread & wine"),
        ("B&B Les Tilleuls", "b&b les tilleuls"),
        ("B & B Les Tilleuls", "b&b les tilleuls"),
        ("Dupont & Cie", "dupont & cie"),
        ("L'Écluse SPRL", "l ecluse"),
        (None, ""),
    ],
)
def test_normalize_name_folds_strips_forms_and_unifies_and(raw: str | None, expected: str) -> None:
    assert normalize_name(raw) == expected


def test_name_tokens_and_informative_tokens() -> None:
    assert name_tokens("Brasserie de l'Union SA") == ["brasserie", "de", "l", "union"]
    assert informative_tokens("Brasserie de l'Union SA") == ["union"]
    assert informative_tokens("Chez Marie") == ["marie"]
    assert informative_tokens("Café 't Hoekske") == ["hoekske"]
    assert informative_tokens("Pizzeria Restaurant Napoli") == ["napoli"]
    assert informative_tokens("Hotel & Bar") == []
    assert informative_tokens(None) == []


def test_constants_hold_the_forms_and_words_of_the_domain_notes() -> None:
    for form in ("bv", "srl", "nv", "sa", "cv", "sc", "vof", "snc", "commv", "scomm", "vzw",
                 "asbl", "bvba", "sprl", "cvba", "scrl", "commva", "sca", "ebvba", "sprlu",
                 "ltd", "gmbh", "sarl", "sas"):
        assert form in LEGAL_FORMS
    for word in ("restaurant", "brasserie", "cafe", "taverne", "hotel", "snack", "bar",
                 "pizzeria", "friterie", "frituur", "bistro", "b&b", "le", "la", "het", "t"):
        assert word in GENERIC_WORDS
    # Members are folded tokens: what fold() produces is what the sets contain.
    assert all(word == fold(word) or "&" in word for word in GENERIC_WORDS)


@pytest.mark.parametrize(
    "name",
    [
        "Jan Peeters",
        "Dupont Marie",
        "PEETERS, Jan",
        "Peeters, Jan-Willem",
        "Van den Bossche Pieter",
        "Jean-Pierre Van Damme",
        "De Smet Jan BVBA",
        "Mohamed El Amrani",
        "Fatma Yilmaz",
        "Marie-Claire Lejeune",
    ],
)
def test_person_names_are_recognised(name: str) -> None:
    assert looks_like_person_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "Chez Marie",
        "Le Petit Sablon",
        "Pizza Mario",
        "Da Mario",
        "Marie",
        "Sint Jan",
        "Jan Peeters & Zonen",
        "Brasserie Jan Peeters",
        "Hotel Louise",
        "Les Amis de Jean",
        "Jan 2000",
        "",
        None,
    ],
)
def test_business_names_are_not_taken_for_persons(name: str | None) -> None:
    assert not looks_like_person_name(name)


# --- properties -----------------------------------------------------------------------

WORDS = st.sampled_from(
    ["Brasserie", "Café", "Le", "la", "Chez", "Marie", "Union", "Hoekske", "'t", "L'Écluse",
     "Pain", "Vin", "&", "et", "en", "Napoli", "SA", "NV", "B.V.B.A.", "(SPRL)", "b&b",
     "B", "v", "-", ",", "Jan", "Peeters", "Œuvre", "ß", "ASBL", "/", "Co.", "KG", "GmbH"]
)
NAMES = st.one_of(st.text(max_size=40), st.lists(WORDS, max_size=7).map(" ".join))
BASE_WORDS = st.sampled_from(
    ["Brasserie", "Marie", "Union", "Hoekske", "Napoli", "Zinc", "Wagon", "Amigo", "Coin"]
)
FORMS = st.sampled_from(
    ["SA", "NV", "S.A.", "N.V.", "BVBA", "B.V.B.A.", "SPRL", "S.P.R.L.", "SRL", "BV", "VZW",
     "ASBL", "SPRL-U", "CommV", "SA/NV", "Ltd", "GmbH", "SCRL", "CVBA", "VOF"]
)


@given(NAMES)
@settings(max_examples=300, deadline=None)
def test_normalize_name_is_idempotent(name: str) -> None:
    once = normalize_name(name)
    assert normalize_name(once) == once


@given(NAMES)
@settings(max_examples=300, deadline=None)
def test_fold_is_idempotent_and_ascii(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    assert once.isascii()
    assert once == once.strip() and "  " not in once


@given(NAMES)
@settings(max_examples=200, deadline=None)
def test_informative_tokens_are_name_tokens_without_generic_words(name: str) -> None:
    tokens = name_tokens(name)
    informative = informative_tokens(name)
    assert informative == [t for t in tokens if t not in GENERIC_WORDS]
    assert isinstance(looks_like_person_name(name), bool)


@given(st.lists(BASE_WORDS, min_size=1, max_size=3).map(" ".join), FORMS,
       st.sampled_from(["{n} {f}", "{f} {n}", "{n} ({f})", "{n}, {f}", "{n} - {f}"]))
@settings(max_examples=200, deadline=None)
def test_any_spelling_of_a_legal_form_is_stripped(name: str, form: str, layout: str) -> None:
    written = layout.format(n=name, f=form)
    assert strip_legal_form(written) == name
    assert normalize_name(written) == fold(name)
