"""Phone numbers to E.164 with libphonenumber (the `phonenumbers` package).

Platforms and the register write Belgian numbers many ways ("02/513.51.51",
"0032 2 513 51 51", "+32(0)2 513 51 51"); libphonenumber knows every country's trunk
prefix, international prefix and numbering plan, so any `default_country` works.
Only numbers valid under libphonenumber's metadata are returned: a number in an
unallocated range (e.g. Brussels "02 1xx xx xx") is treated like a typo and gives None.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

# Separators people use to list several numbers in one field. '/' alone is not one:
# "02/513.51.51" is a single number.
_MULTI_SPLIT = re.compile(r"\s+/\s+|[;|,\n]|\s+(?:or|ou|of|oder|et|en)\s+", re.IGNORECASE)
# "+32 (0)2 ..." and "0032(0)2 ...": the trunk zero in brackets must go before parsing,
# otherwise some inputs keep it as part of the national number.
_BRACKETED_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
_E164 = re.compile(r"^\+\d{8,15}$")
_MAX_INPUT = 250  # longer text is not a phone field; cap the work done on it


def _parse_valid(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return e164 if _E164.match(e164) else None


@lru_cache(maxsize=262_144)
def to_e164(raw: str | None, default_country: str = "BE") -> str | None:
    """The first valid phone number in `raw` as E.164 ("+3225135151"), else None.

    `default_country` (ISO 3166 alpha-2) says how to read numbers written without an
    international prefix. Several numbers in one field ("02 513 51 51 / 0475 12 34 56")
    give the first valid one.
    """
    if not raw:
        return None
    text = _BRACKETED_TRUNK_ZERO.sub(" ", raw[:_MAX_INPUT]).strip()
    if not text:
        return None
    region = (default_country or "BE").upper()
    whole = _parse_valid(text, region)
    if whole:
        return whole
    for part in _MULTI_SPLIT.split(text):
        part = part.strip()
        if part:
            found = _parse_valid(part, region)
            if found:
                return found
    # Last resort: numbers embedded in prose ("Tel. 02 513 51 51 (reservations)").
    matches = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
    for match in matches:
        e164 = phonenumbers.format_number(match.number, PhoneNumberFormat.E164)
        if _E164.match(e164):
            return e164
    return None


@lru_cache(maxsize=65_536)
def is_mobile(e164: str) -> bool:
    """True when `e164` is a valid mobile number.

    Numbers libphonenumber cannot tell apart (FIXED_LINE_OR_MOBILE, e.g. the US) count
    as not mobile. In Belgium length decides: 04xx xx xx xx (10 national digits) is a
    mobile, 04 xxx xx xx (9 digits) a Liège landline.
    """
    if not e164 or not e164.startswith("+"):
        return False
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return False
    if not phonenumbers.is_valid_number(number):
        return False
    return phonenumbers.number_type(number) == PhoneNumberType.MOBILE
