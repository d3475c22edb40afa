"""Phone normalisation: the written forms of domain.md map to one E.164 number."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.normalize.phones import is_mobile, to_e164

E164 = re.compile(r"^\+\d{8,15}$")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("02/513.51.51", "+3225135151"),
        ("0032 2 513 51 51", "+3225135151"),
        ("+32(0)2 513 51 51", "+3225135151"),
        ("0032(0)2 513 51 51", "+3225135151"),
        ("+32 (0)475 12 34 56", "+32475123456"),
        ("0475/12.34.56", "+32475123456"),
        ("089/32.39.50", "+3289323950"),
        ("02 315 13 51", "+3223151351"),
        ("tel: 02-513-51-51", "+3225135151"),
        ("Tel. 02 513 51 51 (réservations)", "+3225135151"),
        ("+33 1 42 68 53 00", "+33142685300"),
        ("0033 1 42 68 53 00", "+33142685300"),
    ],
)
def test_belgian_written_forms_give_e164(raw: str, expected: str) -> None:
    assert to_e164(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("02 513 51 51 / 0475 12 34 56", "+3225135151"),
        ("0475 12 34 56 / 02 513 51 51", "+32475123456"),
        ("02 513 51 51, 02 513 51 52", "+3225135151"),
        ("02 513 51 51 ou 0475 12 34 56", "+3225135151"),
        ("02 513 51 51; 0475 12 34 56", "+3225135151"),
        # The first number is in an unallocated Brussels range: the next valid one wins.
        ("02 123 45 67 / 0475 12 34 56", "+32475123456"),
    ],
)
def test_several_numbers_give_the_first_valid_one(raw: str, expected: str) -> None:
    assert to_e164(raw) == expected


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "abc", "12345", "02 513", "02 000 00 00", "n/a", "+", "0032"]
)
def test_invalid_or_too_short_gives_none(raw: str | None) -> None:
    assert to_e164(raw) is None


def test_default_country_reads_national_numbers_of_that_country() -> None:
    assert to_e164("020 555 1234", "NL") == "+31205551234"
    assert to_e164("06 12 34 56 78", "FR") == "+33612345678"
    assert to_e164("06 12 34 56 78", "fr") == "+33612345678"
    # An explicit international prefix wins over the default country.
    assert to_e164("+32 2 513 51 51", "FR") == "+3225135151"


@pytest.mark.parametrize(
    ("e164", "mobile"),
    [
        ("+32475123456", True),
        ("+32465123456", True),
        ("+3225135151", False),
        ("+3242223344", False),  # 04 + 7 digits: Liège landline, not a mobile
        ("+3289323950", False),
        ("+33612345678", True),
        ("not a number", False),
        ("", False),
        ("+3212345", False),
    ],
)
def test_is_mobile_tells_mobiles_from_landlines_by_length(e164: str, mobile: bool) -> None:
    assert is_mobile(e164) is mobile


# --- properties -----------------------------------------------------------------------

BRUSSELS_SUBSCRIBER = st.tuples(st.integers(2, 8), st.integers(0, 999_999)).map(
    lambda t: f"{t[0]}{t[1]:06d}"
)
MOBILE_SUBSCRIBER = st.tuples(st.integers(5, 9), st.integers(0, 9_999_999)).map(
    lambda t: f"4{t[0]}{t[1]:07d}"
)


def brussels_formats(sub: str) -> list[str]:
    """Ways people write the Brussels number 02 + 7 digits (sub = 7 digits)."""
    a, b, c = sub[:3], sub[3:5], sub[5:]
    return [
        f"02 {a} {b} {c}",
        f"02/{a}.{b}.{c}",
        f"02-{a}-{b}-{c}",
        f"02{sub}",
        f"0032 2 {a} {b} {c}",
        f"0032(0)2 {a} {b} {c}",
        f"+32 2 {a} {b} {c}",
        f"+32(0)2 {a} {b} {c}",
        f"+32 (0)2/{a}.{b}.{c}",
        f"+322{sub}",
        f"(02) {a} {b} {c}",
    ]


def mobile_formats(national: str) -> list[str]:
    """Ways people write a mobile 04xx xx xx xx (national = 9 digits starting with 4)."""
    p, a, b, c = national[:3], national[3:5], national[5:7], national[7:]
    return [
        f"0{p} {a} {b} {c}",
        f"0{p}/{a}.{b}.{c}",
        f"0{p}.{a}.{b}.{c}",
        f"0{national}",
        f"0032 {p} {a} {b} {c}",
        f"+32 {p} {a} {b} {c}",
        f"+32 (0){p} {a} {b} {c}",
        f"+32(0){p}/{a}{b}{c}",
    ]


@given(BRUSSELS_SUBSCRIBER)
@settings(max_examples=60, deadline=None)
def test_brussels_landlines_round_trip_in_every_written_form(sub: str) -> None:
    expected = f"+322{sub}"
    for written in brussels_formats(sub):
        assert to_e164(written) == expected, written
    assert not is_mobile(expected)


@given(MOBILE_SUBSCRIBER)
@settings(max_examples=60, deadline=None)
def test_mobiles_round_trip_in_every_written_form(national: str) -> None:
    expected = f"+32{national}"
    for written in mobile_formats(national):
        assert to_e164(written) == expected, written
    assert is_mobile(expected)


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_output_is_e164_or_none_on_arbitrary_text(raw: str) -> None:
    result = to_e164(raw)
    assert result is None or E164.match(result)


@given(st.text(alphabet="0123456789 +()/.-", max_size=25))
@settings(max_examples=300, deadline=None)
def test_output_is_e164_or_none_and_stable_on_digit_soup(raw: str) -> None:
    result = to_e164(raw)
    assert result is None or E164.match(result)
    if result is not None:
        assert to_e164(result) == result
