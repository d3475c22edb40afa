"""Addresses: free-text parsing, house numbers, boxes, postcodes, street names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.normalize.addresses import (
    AddressParts,
    country_code,
    expand_street_abbreviations,
    normalize_postcode,
    normalize_street,
    parse_address,
    parse_house_number,
    split_box,
    street_core,
)


def parts(street=None, number=None, box=None, postcode=None, locality=None, country="BE"):
    return AddressParts(street, number, box, postcode, locality, country)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Rue de la Fourche 33, 1000 Bruxelles",
         parts("Rue de la Fourche", "33", None, "1000", "Bruxelles")),
        ("33 rue de la Fourche, 1000 Bruxelles",
         parts("rue de la Fourche", "33", None, "1000", "Bruxelles")),
        ("Av. Louise 17-20 bte 3, 1050 Ixelles",
         parts("Av. Louise", "17-20", "3", "1050", "Ixelles")),
        ("Waversesteenweg 1248-1250 bus 2, 1160 Oudergem",
         parts("Waversesteenweg", "1248-1250", "2", "1160", "Oudergem")),
        ("Bd Anspach 5/2 1000 Brussel", parts("Bd Anspach", "5", "2", "1000", "Brussel")),
        ("Place Flagey 18, B-1050 Ixelles, Belgique",
         parts("Place Flagey", "18", None, "1050", "Ixelles")),
        ("Rue Haute 12\n1000 Bruxelles", parts("Rue Haute", "12", None, "1000", "Bruxelles")),
        ("Rue Haute 12\r\n1000 Bruxelles\r\nBelgium",
         parts("Rue Haute", "12", None, "1000", "Bruxelles")),
        ("Rue Haute 12, Bruxelles", parts("Rue Haute", "12", None, None, "Bruxelles")),
        ("Rue Haute 12", parts("Rue Haute", "12")),
        ("Rue du 11 Novembre 5, 1040 Etterbeek",
         parts("Rue du 11 Novembre", "5", None, "1040", "Etterbeek")),
        ("Rue de la Loi, 16, 1000 Bruxelles",
         parts("Rue de la Loi", "16", None, "1000", "Bruxelles")),
        ("Kerkstraat 12 - 1000 Brussel", parts("Kerkstraat", "12", None, "1000", "Brussel")),
        ("Kerkstraat 12 1000 Brussel BE", parts("Kerkstraat", "12", None, "1000", "Brussel")),
        ("Waversesteenweg 1248 - 1250 bus 2", parts("Waversesteenweg", "1248-1250", "2")),
        ("R. Neuve 111/RC", parts("R. Neuve", "111", "RC")),
        ("Grand-Place 1, 1000 Bruxelles", parts("Grand-Place", "1", None, "1000", "Bruxelles")),
        ("Chée de Wavre 500 b3, 1050 Ixelles",
         parts("Chée de Wavre", "500", "3", "1050", "Ixelles")),
        ("Rue Neuve n° 12, 1000 Bruxelles", parts("Rue Neuve", "12", None, "1000", "Bruxelles")),
        ("Rue Neuve 12A 1000 Bruxelles", parts("Rue Neuve", "12A", None, "1000", "Bruxelles")),
        ("Rue Neuve 12 boîte 4, 1000 Bruxelles",
         parts("Rue Neuve", "12", "4", "1000", "Bruxelles")),
        ("1000 Bruxelles", parts(None, None, None, "1000", "Bruxelles")),
        ("Bruxelles 1000, Rue Neuve 3", parts("Rue Neuve", "3", None, "1000", "Bruxelles")),
        ("Rue Neuve 3, 1000", parts("Rue Neuve", "3", None, "1000", None)),
        ("Rue X 12 (1er étage), 1000 Bruxelles", parts("Rue X", "12", None, "1000", "Bruxelles")),
        ("Boulevard Adolphe Max 9/11, 1000 Bruxelles",
         parts("Boulevard Adolphe Max", "9-11", None, "1000", "Bruxelles")),
        ("Avenue Louise 231/B, 1050 Bruxelles",
         parts("Avenue Louise", "231", "B", "1050", "Bruxelles")),
        ("Chaussée de Wavre 1100, 1160 Auderghem",
         parts("Chaussée de Wavre", "1100", None, "1160", "Auderghem")),
        ("1050 Ixelles, Rue du Bailli 3", parts("Rue du Bailli", "3", None, "1050", "Ixelles")),
        ("Résidence Les Lilas, Avenue Y 4, 1180 Uccle",
         parts("Avenue Y", "4", None, "1180", "Uccle")),
        ("Rue de France 4, 75001 Paris, France",
         parts("Rue de France", "4", None, "75001", "Paris", "FR")),
    ],
)
def test_parse_address_splits_belgian_platform_addresses(raw: str, expected: AddressParts) -> None:
    assert parse_address(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "???", "-", "12", "n/a ,;", "\n\n", "•"])
def test_junk_gives_all_none(raw: str | None) -> None:
    assert parse_address(raw) == AddressParts()


def test_default_country_sets_postcode_format() -> None:
    got = parse_address("Damrak 1, 1012 LG Amsterdam", default_country="NL")
    assert got == AddressParts("Damrak", "1", None, "1012LG", "Amsterdam", "NL")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("33", (33, 33, "")),
        ("17-20", (17, 20, "")),
        ("17 - 20", (17, 20, "")),
        ("1248-1250", (1248, 1250, "")),
        ("12A", (12, 12, "a")),
        ("12 a", (12, 12, "a")),
        ("12 bis", (12, 12, "bis")),
        ("12 bte 3", (12, 12, "")),
        ("12/3", (12, 12, "")),
        ("20-17", (17, 20, "")),
        ("junk", (None, None, "")),
        ("", (None, None, "")),
        (None, (None, None, "")),
    ],
)
def test_parse_house_number(text: str | None, expected: tuple) -> None:
    assert parse_house_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17 bte 3", ("17", "3")),
        ("17 bte. 3", ("17", "3")),
        ("17 boîte 3", ("17", "3")),
        ("17 bus 2", ("17", "2")),
        ("17, bus 2", ("17", "2")),
        ("17/2", ("17", "2")),
        ("17 / 2", ("17", "2")),
        ("231/3", ("231", "3")),
        ("9/11", ("9-11", None)),  # a larger neighbouring number: a range, not a box
        ("12/14", ("12-14", None)),
        ("12/13", ("12", "13")),
        ("17 b3", ("17", "3")),
        ("17 b 3", ("17", "3")),
        ("17 box A", ("17", "A")),
        ("111 bus RC", ("111", "RC")),  # ground floor: rez-de-chaussée / gelijkvloers
        ("111/RC", ("111", "RC")),
        ("111 bte rdc", ("111", "rdc")),
        ("111 bus GV", ("111", "GV")),
        ("17B", ("17B", None)),
        ("17-19 bus 101", ("17-19", "101")),
        ("17", ("17", None)),
        ("rue", (None, None)),
        (None, (None, None)),
    ],
)
def test_split_box(text: str | None, expected: tuple) -> None:
    assert split_box(text) == expected


@pytest.mark.parametrize(
    ("text", "country", "expected"),
    [
        ("B-1050", "BE", "1050"),
        ("BE-1050", "BE", "1050"),
        ("B 1050", "BE", "1050"),
        ("1050", "BE", "1050"),
        (" 1000 ", "BE", "1000"),
        ("105", "BE", None),
        ("10500", "BE", None),
        ("0999", "BE", None),
        ("abcd", "BE", None),
        ("1012 lg", "NL", "1012LG"),
        ("F-75001", "FR", "75001"),
        ("L-1234", "LU", "1234"),
        ("SW1A 1AA", "GB", "SW1A1AA"),
        (None, "BE", None),
    ],
)
def test_normalize_postcode(text: str | None, country: str, expected: str | None) -> None:
    assert normalize_postcode(text, country) == expected


@pytest.mark.parametrize(
    ("street", "expected"),
    [
        ("Av. Louise", "avenue louise"),
        ("Ave Louise", "avenue louise"),
        ("Bd Anspach", "boulevard anspach"),
        ("Boul. Anspach", "boulevard anspach"),
        ("Chau. de Wavre", "chaussee de wavre"),
        ("Chée de Wavre", "chaussee de wavre"),
        ("Pl. Flagey", "place flagey"),
        ("Imp. du Val", "impasse du val"),
        ("Sq. Ambiorix", "square ambiorix"),
        ("Kerk Str.", "kerk straat"),
        ("Kerkstr.", "kerkstraat"),
        ("Waversestwg", "waversesteenweg"),
        ("Waverse stwg.", "waverse steenweg"),
        ("Louizaln", "louizalaan"),
        ("Louiza Ln", "louiza laan"),
        ("R. de la Loi", "rue de la loi"),
        ("Rue St-Lazare", "rue saint lazare"),
        ("St-Jansplein", "sint jansplein"),
        # Whole words only: no expansion inside ordinary words.
        ("Avenue Avila", "avenue avila"),
        ("Rue Plantin", "rue plantin"),
        ("Rue des Bdx", "rue des bdx"),
        ("Mostraat", "mostraat"),
    ],
)
def test_expand_street_abbreviations(street: str, expected: str) -> None:
    assert expand_street_abbreviations(street) == expected
    assert normalize_street(street) == expected


@pytest.mark.parametrize(
    ("street", "expected"),
    [
        ("Chaussée de Wavre", "wavre"),
        ("Waversesteenweg", "wavers"),
        ("Waverse steenweg", "wavers"),
        ("Waversestwg", "wavers"),
        ("Rue du Marché aux Herbes", "marche aux herbes"),
        ("Louizalaan", "louiza"),
        ("Avenue Louise", "louise"),
        ("Av. Louise", "louise"),
        ("Place Flagey", "flagey"),
        ("Flageyplein", "flagey"),
        ("Rue de la Loi", "loi"),
        ("Wetstraat", "wet"),
        ("Rue Van Artevelde", "artevelde"),
        ("Van Arteveldestraat", "artevelde"),
        ("Boulevard Anspach", "anspach"),
        ("Anspachlaan", "anspach"),
        ("Quai aux Briques", "briques"),
        ("Baksteenkaai", "baksteen"),
        ("Grasmarkt", "grasmarkt"),
        ("Grand-Place", "grand place"),
        ("Markt", "markt"),
        ("Rue", "rue"),
        (None, ""),
    ],
)
def test_street_core_removes_type_words_and_articles(street: str | None, expected: str) -> None:
    assert street_core(street) == expected


# --- properties -----------------------------------------------------------------------

FR_TYPES = st.sampled_from(["Rue", "Avenue", "Av.", "Boulevard", "Bd", "Chaussée", "Place",
                            "Square", "Impasse", "Quai", "Galerie"])
ARTICLES = st.sampled_from(["", "de ", "de la ", "du ", "des ", "d'", "l'", "aux "])
NAME_WORD = st.text(alphabet="abcdefghijklmnoprstuvwyzéèàç", min_size=3, max_size=10).filter(
    lambda w: w not in {"bus", "bte", "box", "bis", "ter", "boite", "postbus"}
).map(str.capitalize)
NL_SUFFIX = st.sampled_from(["straat", "laan", "steenweg", "plein", "kaai", "dreef"])
NAME = st.one_of(
    NAME_WORD,
    st.builds(lambda a, b: f"{a} {b}", NAME_WORD, NAME_WORD),
    st.builds(lambda a, b: f"Saint-{a} {b}", NAME_WORD, NAME_WORD),
    st.builds(lambda d, w: f"{d} {w}", st.integers(1, 31), NAME_WORD),  # "Rue du 11 Novembre"
)
FR_STREET = st.builds(lambda t, a, w: f"{t} {a}{w}", FR_TYPES, ARTICLES, NAME)
NL_STREET = st.one_of(
    st.builds(lambda w, s: f"{w}{s}", NAME_WORD, NL_SUFFIX),
    st.builds(lambda w, s: f"{w}se {s}", NAME_WORD, NL_SUFFIX),  # "Waverse steenweg"
    st.builds(lambda a, w, s: f"{a} {w}{s}", NAME_WORD, NAME_WORD, NL_SUFFIX),
)
STREET = st.one_of(FR_STREET, NL_STREET)
NUMBER = st.one_of(
    st.integers(1, 2000).map(str),
    st.tuples(st.integers(1, 999), st.integers(1, 9)).map(lambda t: f"{t[0]}-{t[0] + 2 * t[1]}"),
    st.tuples(st.integers(1, 999), st.sampled_from("ABC")).map(lambda t: f"{t[0]}{t[1]}"),
)
BOX = st.one_of(st.none(), st.integers(1, 30).map(str))
BOX_WRITING = st.sampled_from(["{n} bte {b}", "{n} bus {b}", "{n}/{b}", "{n} boîte {b}"])
POSTCODE = st.integers(1000, 1299).map(str)
LOCALITY = st.sampled_from(["Bruxelles", "Brussel", "Ixelles", "Elsene", "Sint-Gillis",
                            "Saint-Gilles", "Etterbeek", "Woluwe-Saint-Lambert", "Jette"])


@given(STREET, NUMBER, BOX, BOX_WRITING, POSTCODE, LOCALITY,
       st.sampled_from(["{s} {n}, {p} {l}", "{n} {s}, {p} {l}", "{s} {n}\n{p} {l}",
                        "{s} {n} {p} {l}", "{s} {n}, B-{p} {l}", "{s} {n}, {p} {l}, Belgique",
                        "{s}, {n}, {p} {l}"]))
@settings(max_examples=300, deadline=None)
def test_parse_address_round_trips_generated_addresses(
    street, number, box, box_writing, postcode, locality, layout
) -> None:
    if box and box_writing == "{n}/{b}" and number.isdigit() and int(box) > int(number):
        box_writing = "{n} bte {b}"  # "9/11" reads as a range: see test_split_box
    written_number = box_writing.format(n=number, b=box) if box else number
    if layout.startswith("{n}") and box:
        layout = layout.replace("{n} {s}", "{s} {n}")  # boxes follow the street's number
    raw = layout.format(s=street, n=written_number, p=postcode, l=locality)
    assert parse_address(raw) == AddressParts(street, number, box, postcode, locality, "BE"), raw


@given(st.text(max_size=80))
@settings(max_examples=400, deadline=None)
def test_parse_address_never_raises_on_arbitrary_text(raw: str) -> None:
    got = parse_address(raw)
    assert isinstance(got, AddressParts)
    if got.postcode is not None:
        assert normalize_postcode(got.postcode) == got.postcode


@given(st.text(alphabet="0123456789 -/abtesuxAB,.", max_size=20))
@settings(max_examples=300, deadline=None)
def test_house_number_parsers_never_raise_and_agree(text: str) -> None:
    number, _box = split_box(text)
    first, last, suffix = parse_house_number(text)
    assert (number is None) == (first is None)
    if first is not None:
        assert last is not None and first <= last
        assert suffix == suffix.lower()


@given(st.one_of(STREET, st.text(max_size=40)))
@settings(max_examples=300, deadline=None)
def test_normalize_street_is_idempotent(street: str) -> None:
    once = normalize_street(street)
    assert normalize_street(once) == once


@given(STREET)
@settings(max_examples=200, deadline=None)
def test_street_core_is_never_empty_for_a_street(street: str) -> None:
    assert street_core(street)


@given(st.text(max_size=12))
@settings(max_examples=200, deadline=None)
def test_normalize_postcode_is_idempotent(text: str) -> None:
    once = normalize_postcode(text)
    assert once is None or normalize_postcode(once) == once


@pytest.mark.parametrize(
    ("written", "code"),
    [("Belgique", "BE"), ("België", "BE"), ("BEL", "BE"), (" be ", "BE"), ("B.", "BE"),
     ("Pays-Bas", "NL"), ("Nederland", "NL"), ("Deutschland", "DE"), ("lu", "LU")],
)
def test_country_code_reads_the_ways_a_country_is_written(written: str, code: str) -> None:
    assert country_code(written) == code


@given(st.text(max_size=20))
def test_country_code_is_two_capitals_or_the_default_and_stable(text: str) -> None:
    code = country_code(text, "ZZ")
    assert code == "ZZ" or (code is not None and len(code) == 2 and code.isupper())
    assert country_code(code) == code
