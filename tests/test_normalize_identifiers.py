"""Belgian enterprise numbers: mod-97 check, parsing of written forms, formatting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.normalize.identifiers import (
    format_enterprise_number,
    is_valid_enterprise_number,
    parse_enterprise_number,
    vat_number,
)


def with_check(first8: int) -> str:
    return f"{first8:08d}{97 - first8 % 97:02d}"


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("0123456749", True),  # 97 - 1234567 % 97 = 49
        ("0123456748", False),
        (with_check(10_000_000), True),  # the newer range starting with 1
        (with_check(97 * 12345), True),  # first 8 digits divisible by 97: check is "97"
        ("2123456749", False),  # starts with 2: an establishment-unit range, not an enterprise
        ("123456749", False),  # 9 digits: parse first
        ("0123.456.749", False),
        ("", False),
        ("abcdefghij", False),
    ],
)
def test_is_valid_enterprise_number(digits: str, valid: bool) -> None:
    assert is_valid_enterprise_number(digits) is valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0123.456.749", "0123456749"),
        ("0123456749", "0123456749"),
        ("BE0123456749", "0123456749"),
        ("BE 0123 456 749", "0123456749"),
        ("be0123.456.749", "0123456749"),
        ("BE-0123-456-749", "0123456749"),
        ("123456749", "0123456749"),
        ("123.456.749", "0123456749"),
        ("TVA: BE 0123.456.749 - RPM Bruxelles", "0123456749"),
        ("BTW BE0123456748 / KBO 0123.456.749", "0123456749"),  # first *valid* one
        ("0123.456.748", None),
        ("Tel 02 513 51 51", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_enterprise_number(text: str | None, expected: str | None) -> None:
    assert parse_enterprise_number(text) == expected


def test_format_and_vat_number() -> None:
    assert format_enterprise_number("0123456749") == "0123.456.749"
    assert format_enterprise_number("BE 0123 456 749") == "0123.456.749"
    assert vat_number("0123.456.749") == "BE0123456749"
    with pytest.raises(ValueError):
        format_enterprise_number("0123456748")


# --- properties -----------------------------------------------------------------------

FIRST8 = st.integers(0, 19_999_999)


@given(FIRST8)
@settings(max_examples=300, deadline=None)
def test_generated_valid_numbers_pass_in_every_written_form(first8: int) -> None:
    digits = with_check(first8)
    assert is_valid_enterprise_number(digits)
    dotted = format_enterprise_number(digits)
    for written in (digits, dotted, f"BE{digits}", f"BE {dotted}",
                    f"BE {digits[:4]} {digits[4:7]} {digits[7:]}", f"TVA {dotted}."):
        assert parse_enterprise_number(written) == digits, written
    if digits.startswith("0"):
        assert parse_enterprise_number(digits[1:]) == digits  # the old 9-digit form


@given(FIRST8, st.integers(0, 9), st.integers(1, 9))
@settings(max_examples=300, deadline=None)
def test_any_single_digit_change_fails(first8: int, position: int, delta: int) -> None:
    digits = with_check(first8)
    changed = digits[:position] + str((int(digits[position]) + delta) % 10) + digits[position + 1:]
    assert changed != digits
    assert not is_valid_enterprise_number(changed)


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_parse_never_raises_and_returns_only_valid_numbers(text: str) -> None:
    got = parse_enterprise_number(text)
    assert got is None or is_valid_enterprise_number(got)
