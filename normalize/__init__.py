"""Pure normalisers shared by every stage: text, phones, names, addresses, web, identifiers.

No I/O; each function is safe to call millions of times (precompiled patterns, caches).
See docs/normalisation.md for what each one does and its known limits.
"""

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
from horeca.normalize.identifiers import (
    format_enterprise_number,
    is_valid_enterprise_number,
    parse_enterprise_number,
    vat_number,
)
from horeca.normalize.names import (
    GENERIC_WORDS,
    GIVEN_NAMES,
    LEGAL_FORMS,
    informative_tokens,
    looks_like_person_name,
    name_tokens,
    normalize_name,
    strip_legal_form,
)
from horeca.normalize.phones import is_mobile, to_e164
from horeca.normalize.text import fold, tokens
from horeca.normalize.web import (
    FREE_MAIL_DOMAINS,
    email_domain,
    normalize_url,
    registered_domain,
)

__all__ = [
    "FREE_MAIL_DOMAINS",
    "GENERIC_WORDS",
    "GIVEN_NAMES",
    "LEGAL_FORMS",
    "AddressParts",
    "country_code",
    "email_domain",
    "expand_street_abbreviations",
    "fold",
    "format_enterprise_number",
    "informative_tokens",
    "is_mobile",
    "is_valid_enterprise_number",
    "looks_like_person_name",
    "name_tokens",
    "normalize_name",
    "normalize_postcode",
    "normalize_street",
    "normalize_url",
    "parse_address",
    "parse_enterprise_number",
    "parse_house_number",
    "registered_domain",
    "split_box",
    "street_core",
    "strip_legal_form",
    "to_e164",
    "tokens",
    "vat_number",
]
