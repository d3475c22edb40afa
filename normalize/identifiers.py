"""Belgian enterprise numbers (KBO/BCE): validation, parsing, formatting.

An enterprise number has 10 digits written `0xxx.xxx.xxx`; the last two are a check:
97 - (first eight digits mod 97). The VAT number is "BE" + the same 10 digits. Numbers
first had 9 digits; the leading 0 was added in 2005, so "123456749" is still seen. New
numbers starting with 1 are issued once the 0 range is used up, so both are accepted.
"""

from __future__ import annotations

import re
from functools import lru_cache

_TEN_DIGITS = re.compile(r"^\d{10}$")
# A candidate inside free text: optional "BE", then 9 or 10 digits in groups separated by
# spaces, dots, hyphens or slashes ("BE 0123.456.749", "0123 456 749", "123456749").
_CANDIDATE = re.compile(
    r"(?<![0-9])(?:BE[\s.:-]*)?([01]?\d{3})[\s./-]?(\d{3})[\s./-]?(\d{3})(?![0-9])",
    re.IGNORECASE,
)


def _check_digits_ok(digits: str) -> bool:
    return 97 - int(digits[:8]) % 97 == int(digits[8:])


def is_valid_enterprise_number(digits: str) -> bool:
    """True for 10 digits, first digit 0 or 1, whose mod-97 check holds.

    >>> is_valid_enterprise_number("0123456749")
    True
    """
    if not isinstance(digits, str) or not _TEN_DIGITS.match(digits):
        return False
    return digits[0] in "01" and _check_digits_ok(digits)


@lru_cache(maxsize=131_072)
def parse_enterprise_number(text: str | None) -> str | None:
    """The first valid enterprise number in `text` as 10 digits, else None.

    Accepts "0123.456.749", "BE0123456749", "BE 0123 456 749", "TVA: BE 0123.456.749"
    and the old 9-digit form "123456749".
    """
    if not text:
        return None
    for match in _CANDIDATE.finditer(text[:500]):
        digits = "".join(match.groups())
        if len(digits) == 9:
            digits = "0" + digits
        if is_valid_enterprise_number(digits):
            return digits
    return None


def format_enterprise_number(digits: str) -> str:
    """ "0123456749" -> "0123.456.749"; anything parseable is accepted, else ValueError."""
    parsed = digits if is_valid_enterprise_number(digits) else parse_enterprise_number(digits)
    if parsed is None:
        raise ValueError(f"not a valid enterprise number: {digits!r}")
    return f"{parsed[:4]}.{parsed[4:7]}.{parsed[7:]}"


def vat_number(digits: str) -> str:
    """The Belgian VAT number of an enterprise: "BE" + 10 digits."""
    parsed = parse_enterprise_number(digits)
    if parsed is None:
        raise ValueError(f"not a valid enterprise number: {digits!r}")
    return "BE" + parsed
