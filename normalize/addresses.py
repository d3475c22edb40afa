"""Addresses: parsing free-text addresses, house numbers, boxes, postcodes, street names.

Belgian conventions first (see docs/normalisation.md): the number usually follows the
street ("Rue de la Fourche 33, 1000 Bruxelles") but platforms also write it first;
ranges ("17-20") and boxes ("bte 3", "bus 2", "/2") are common; postcodes have 4 digits,
sometimes written "B-1050". Streets are bilingual in Brussels and only the register,
which carries both names, can pair "Chaussée de Wavre" with "Waversesteenweg":
`street_core` removes street-type words so each language's name reduces to its identity
part, but it does not translate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from horeca.normalize.text import fold


@dataclass(frozen=True)
class AddressParts:
    street: str | None = None
    house_number: str | None = None
    box: str | None = None
    postcode: str | None = None
    locality: str | None = None
    country: str | None = None


_EMPTY = AddressParts()

# --------------------------------------------------------------------------- postcodes

_POSTCODE_FORMATS: dict[str, re.Pattern[str]] = {
    "BE": re.compile(r"^[1-9]\d{3}$"),
    "LU": re.compile(r"^\d{4}$"),
    "NL": re.compile(r"^[1-9]\d{3}[A-Z]{2}$"),
    "FR": re.compile(r"^\d{5}$"),
    "DE": re.compile(r"^\d{5}$"),
}
# In free text: the postcode as it appears before a locality, per country.
_POSTCODE_IN_TEXT: dict[str, str] = {
    "BE": r"(?:B|BE)?\s*-?\s*[1-9]\d{3}",
    "LU": r"(?:L)?\s*-?\s*\d{4}",
    "NL": r"(?:NL)?\s*-?\s*[1-9]\d{3}\s?[A-Z]{2}",
    "FR": r"(?:F|FR)?\s*-?\s*\d{5}",
    "DE": r"(?:D|DE)?\s*-?\s*\d{5}",
}
_GENERIC_POSTCODE_IN_TEXT = r"[A-Z]{0,2}\s*-?\s*\d{4,5}"
_POSTCODE_PREFIX = re.compile(r"^[A-Z]{1,2}\s*-\s*|^[A-Z]{1,2}(?=\d)|^[A-Z]{1,2}\s+(?=\d)")
_DASHED_PREFIX = re.compile(r"^[A-Z]{1,2}\s*-\s*")


@lru_cache(maxsize=65_536)
def normalize_postcode(text: str | None, country: str = "BE") -> str | None:
    """Postcode without country prefix or spaces ("B-1050" -> "1050"), None if it does not
    have the country's format (4 digits for BE; "1234AB" for NL; 5 digits for FR/DE).
    Countries without a known format: the uppercase letters and digits as written.
    """
    if not text:
        return None
    fmt = _POSTCODE_FORMATS.get((country or "BE").upper())
    upper = text.strip().upper()
    # A country prefix ("B-1050", "F75001") only where the format has no leading letters.
    cleaned = _POSTCODE_PREFIX.sub("", upper) if fmt else _DASHED_PREFIX.sub("", upper)
    compact = re.sub(r"[\s.]", "", cleaned)
    if fmt is None:
        compact = re.sub(r"[^A-Z0-9-]", "", compact)
        return compact if any(ch.isdigit() for ch in compact) and len(compact) <= 10 else None
    return compact if fmt.match(compact) else None


# ----------------------------------------------------------------- numbers and boxes

_LETTER_SUFFIX = r"(?:\s?(?:bis|ter|quater)\b|\s?[a-z](?![a-z0-9]))"
_NUMBER = rf"\d{{1,5}}{_LETTER_SUFFIX}?(?:\s*[-–]\s*\d{{1,5}}{_LETTER_SUFFIX}?)?"
_BOX_WORD = r"(?:boite|boîte|bte|bt|bus|box|postbus|pb|b)"
# A box is digits ("3", "101", "0.1"), a letter with optional digits ("A", "C2") or a
# ground-floor mark (RC/RDC rez-de-chaussée, GV gelijkvloers), never another word: "1
# Boulevard" is number 1 of a boulevard, not box "oulevard".
_BOX_VALUE = r"(?:rdc|rc|gv|\d+(?:\.\d+)?[a-z]?|[a-z]\d*)(?![a-z0-9])"
_BOX = (
    rf"(?:\s*,?\s*{_BOX_WORD}(?:\.\s*|\s+|(?=\d))(?P<box>{_BOX_VALUE})"
    rf"|\s*/\s*(?P<slashbox>{_BOX_VALUE}))"
)
_NUMBER_AND_BOX = re.compile(rf"^\s*(?P<number>{_NUMBER})(?:{_BOX})?\s*$", re.IGNORECASE)
_BOX_WORDS = frozenset({"boite", "bte", "bt", "bus", "box", "postbus", "pb", "b"})


def _clean_number(number: str) -> str:
    return re.sub(r"\s*[-–]\s*", "-", " ".join(number.split()))


@lru_cache(maxsize=131_072)
def split_box(text: str | None) -> tuple[str | None, str | None]:
    """House number and box: "17 bte 3", "17 bus 2", "17/2", "17 b3" -> ("17", "3").

    "12A" keeps its letter ("12A", None); text that is not a house number gives
    (None, None).
    """
    if not text:
        return None, None
    match = _NUMBER_AND_BOX.match(text)
    if not match:
        return None, None
    return _number_and_box(match)


def _number_and_box(match: re.Match[str]) -> tuple[str, str | None]:
    number = _clean_number(match.group("number"))
    if match.group("box"):
        return number, match.group("box").rstrip(".")
    slash = match.group("slashbox")
    if slash is None:
        return number, None
    # "9/11" and "12/14" are ranges of neighbouring numbers on one side of the street;
    # "5/2", "17/2" and "231/3" are boxes. A larger number of the same parity, at most
    # four houses on, is read as a range.
    if number.isdigit() and slash.isdigit():
        first, last = int(number), int(slash)
        if first < last <= first + 8 and (last - first) % 2 == 0:
            return f"{first}-{last}", None
    return number, slash


_RANGE = re.compile(
    r"^(?P<first>\d{1,5})\s?(?P<s1>bis|ter|quater|[a-z])?"
    r"(?:-(?P<last>\d{1,5})\s?(?P<s2>bis|ter|quater|[a-z])?)?$",
    re.IGNORECASE,
)


@lru_cache(maxsize=131_072)
def parse_house_number(text: str | None) -> tuple[int | None, int | None, str]:
    """(first, last, suffix) of a house number; a box is dropped (see `split_box`).

    "33" -> (33, 33, ""); "17-20" -> (17, 20, ""); "12A" -> (12, 12, "a");
    "12 bte 3" -> (12, 12, ""); junk -> (None, None, "").
    """
    number, _box = split_box(text)
    if number is None:
        return None, None, ""
    match = _RANGE.match(number)
    if not match:
        return None, None, ""
    first = int(match.group("first"))
    last = int(match.group("last")) if match.group("last") else first
    suffix = (match.group("s1") or match.group("s2") or "").lower()
    if last < first:  # "20-17": the same range written backwards
        first, last = last, first
    return first, last, suffix


# ------------------------------------------------------------------ street names

# Folded abbreviation -> full word; applied to whole words only.
_WORD_ABBREVIATIONS: dict[str, str] = {
    "av": "avenue", "ave": "avenue", "avn": "avenue", "aven": "avenue",
    "bd": "boulevard", "bld": "boulevard", "blvd": "boulevard", "bvd": "boulevard",
    "boul": "boulevard", "boulv": "boulevard", "bl": "boulevard",
    "chau": "chaussee", "chee": "chaussee", "chss": "chaussee", "chaus": "chaussee",
    "chsee": "chaussee",
    "pl": "place", "imp": "impasse", "sq": "square", "gal": "galerie", "rte": "route",
    "chem": "chemin", "all": "allee", "crs": "cours", "pass": "passage", "prom": "promenade",
    "str": "straat", "stwg": "steenweg", "stw": "steenweg", "steenw": "steenweg",
    "ln": "laan", "pln": "plein", "drf": "dreef",
}
# NL compounds written short: "Kerkstr." "Louizaln" "Waversestwg".
_SUFFIX_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("stwg", "steenweg"), ("steenw", "steenweg"), ("str", "straat"), ("ln", "laan"),
    ("pln", "plein"),
)
_FR_TYPES: tuple[str, ...] = (
    "rue", "avenue", "boulevard", "chaussee", "place", "square", "impasse", "quai",
    "galerie", "galeries", "parvis", "allee", "chemin", "clos", "dreve", "sentier",
    "passage", "venelle", "ruelle", "cite", "cour", "montee", "route", "voie", "esplanade",
    "promenade", "rampe", "carrefour", "rond", "point", "cours", "petite",
)
_NL_TYPES: tuple[str, ...] = (
    "steenweg", "straatje", "straat", "laan", "plein", "kaai", "dreef", "weg", "lei",
    "pad", "singel", "gracht", "dijk", "steeg", "galerij", "square", "plaats", "vest",
)
_NL_SUFFIXES: tuple[str, ...] = tuple(sorted(_NL_TYPES, key=len, reverse=True))
_ARTICLES = frozenset(
    {"de", "du", "des", "la", "le", "les", "l", "d", "van", "der", "den", "het", "t", "of",
     "au", "aux", "a"}
)
_SAINT_FR = {"st": "saint", "ste": "sainte", "sts": "saints"}
_SAINT_NL = {"st": "sint", "ste": "sint", "sts": "sint"}
_FR_TYPE_SET = frozenset(_FR_TYPES) - {"petite", "rond", "point"}
_NL_TYPE_SET = frozenset(_NL_TYPES)


@lru_cache(maxsize=65_536)  # street words repeat ("rue", "de", "laan") across streets
def _expand_token(token: str, is_first: bool) -> str:
    if token in _WORD_ABBREVIATIONS:
        return _WORD_ABBREVIATIONS[token]
    if is_first and token == "r":  # "R. de la Loi"
        return "rue"
    for short, full in _SUFFIX_ABBREVIATIONS:
        if token.endswith(short) and len(token) >= len(short) + 3 and not token.endswith(full):
            return token[: -len(short)] + full
    return token


def _looks_dutch(tokens: list[str]) -> bool:
    return any(
        tok in _NL_TYPE_SET or tok.endswith(_NL_SUFFIXES) for tok in tokens
    ) and not any(tok in _FR_TYPE_SET for tok in tokens)


@lru_cache(maxsize=262_144)
def expand_street_abbreviations(street: str) -> str:
    """Folded street with abbreviations written out.

    >>> expand_street_abbreviations("Av. Louise")
    'avenue louise'
    >>> expand_street_abbreviations("Louizaln")
    'louizalaan'
    >>> expand_street_abbreviations("Chée de Wavre")
    'chaussee de wavre'

    Whole words only ("Blvd" yes, "Blvdx" no); NL compounds by suffix ("Kerkstr." ->
    "kerkstraat"). "St"/"Ste" become "saint"/"sainte" in French streets and "sint" in
    Dutch ones (Dutch = a Dutch street-type word and no French one).
    """
    tokens = fold(street).split()
    expanded = [_expand_token(tok, i == 0) for i, tok in enumerate(tokens)]
    saints = _SAINT_NL if _looks_dutch(expanded) else _SAINT_FR
    return " ".join(saints.get(tok, tok) for tok in expanded)


def normalize_street(street: str | None) -> str:
    """Folded street name with abbreviations expanded ("Bd Anspach" -> "boulevard anspach")."""
    if not street:
        return ""
    return expand_street_abbreviations(street)


def _strip_leading_articles(tokens: list[str]) -> list[str]:
    start = 0
    while start < len(tokens) - 1 and tokens[start] in _ARTICLES:
        start += 1
    return tokens[start:]


@lru_cache(maxsize=262_144)
def street_core(street: str | None) -> str:
    """The identity part of a street name: street-type words and leading articles removed.

    "Chaussée de Wavre" -> "wavre"; "Waversesteenweg" -> "wavers";
    "Rue du Marché aux Herbes" -> "marche aux herbes"; "Louizalaan" -> "louiza".

    Limits: French and Dutch names of one street do not always reduce to the same core
    ("wavre" / "wavers", "louise" / "louiza"); no rule translates them, compare the
    listing against both names the register carries. "Markt" / "Marché" are kept as
    identity (Grote Markt, Marché aux Herbes); a name made only of type words keeps them.
    """
    tokens = normalize_street(street).split()
    if not tokens:
        return ""
    core = list(tokens)
    french = False
    # French: type words lead ("Rue", "Petite rue", "Rond-point").
    while len(core) > 1 and (core[0] in _FR_TYPE_SET or core[0] in {"petite", "rond", "point"}):
        french = french or core[0] in _FR_TYPE_SET
        core = core[1:]
    if not french:
        # Dutch: a separate trailing type word ("Waverse steenweg") or a compound suffix.
        stem = None
        if len(core) > 1 and core[-1] in _NL_TYPE_SET:
            core, stem = core[:-1], core[-2]
        else:
            last = core[-1]
            for suffix in _NL_SUFFIXES:
                if last.endswith(suffix) and len(last) - len(suffix) >= 3:
                    stem = last[: -len(suffix)]
                    break
        if stem is not None:
            # Adjectival forms of place names end in "-se" ("Waverse", "Leuvense"); the
            # compound and the two-word spelling both reduce to "wavers", "leuvens".
            if stem.endswith("se") and len(stem) > 4:
                stem = stem[:-1]
            core = [*core[:-1], stem]
        if len(core) > 1 and core[0] in _NL_TYPE_SET:  # "Square Marie-Louise" style in NL
            core = core[1:]
    core = _strip_leading_articles(core)
    return " ".join(core)


# ------------------------------------------------------------------ whole addresses

_COUNTRY_NAMES: dict[str, str] = {
    "belgique": "BE", "belgie": "BE", "belgium": "BE", "belgien": "BE", "be": "BE",
    "b": "BE", "bel": "BE", "belgica": "BE", "belgio": "BE",
    "france": "FR", "frankrijk": "FR", "frankreich": "FR", "fr": "FR",
    "nederland": "NL", "pays bas": "NL", "netherlands": "NL", "the netherlands": "NL",
    "niederlande": "NL", "nl": "NL", "holland": "NL",
    "luxembourg": "LU", "luxemburg": "LU", "lu": "LU",
    "deutschland": "DE", "allemagne": "DE", "duitsland": "DE", "germany": "DE", "de": "DE",
}
_LINE_SPLIT = re.compile(r"\s*(?:[\n\r;]+|,)\s*")
_NUMBER_MARKER = re.compile(r"\b(?:n°|no\.|nr\.?|num\.?|numero|nummer)\s*(?=\d)", re.IGNORECASE)
_DASH_BEFORE_POSTCODE = re.compile(
    r"\s+[-–]\s+(?=(?:B\s*-?\s*)?[1-9]\d{3}\s+(?!(?:boite|boîte|bte|bt|bus|box|b)\b)[^\W\d])",
    re.IGNORECASE,
)
_NON_LOCALITY_START = r"(?!(?:boite|boîte|bte|bt|bus|box|b|bis|ter)\b)"
_LOCALITY = r"[^\W\d_][^\d,]*?"


@lru_cache(maxsize=16)
def _postcode_patterns(country: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    code = _POSTCODE_IN_TEXT.get(country, _GENERIC_POSTCODE_IN_TEXT)
    flags = re.IGNORECASE
    whole_part = re.compile(
        rf"^(?P<postcode>{code})(?:\s+{_NON_LOCALITY_START}(?P<locality>{_LOCALITY}))?\s*$",
        flags,
    )
    locality_first = re.compile(rf"^(?P<locality>{_LOCALITY})\s+(?P<postcode>{code})\s*$", flags)
    # Postcode and locality glued to the end of the street part: "Bd Anspach 5/2 1000 Brussel".
    trailing = re.compile(
        rf"^(?P<rest>.*?\S)\s+(?P<postcode>{code})\s+{_NON_LOCALITY_START}"
        rf"(?P<locality>{_LOCALITY})\s*$",
        flags,
    )
    return whole_part, locality_first, trailing


_STREET_THEN_NUMBER = re.compile(
    rf"^(?P<street>.*?[^\d\s,/.-].*?)[\s,]+(?P<number>{_NUMBER})(?:{_BOX})?\s*$", re.IGNORECASE
)
_NUMBER_THEN_STREET = re.compile(
    rf"^(?P<number>{_NUMBER})(?:{_BOX})?\s*,?\s+(?P<street>[^\W\d_].*)$", re.IGNORECASE
)
_HAS_LETTERS = re.compile(r"[^\W\d_]{2}")
_DIGIT = re.compile(r"\d")
_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


def _country_of(part: str) -> str | None:
    return _COUNTRY_NAMES.get(fold(part))


def country_code(value: str | None, default: str | None = None) -> str | None:
    """ISO 3166 alpha-2 for the ways platforms and registers write a country ("Belgique",
    "BEL", "België", "be"); any other two letters as given; otherwise `default`.

    >>> country_code("België"), country_code("nl"), country_code("Atlantis", "BE")
    ('BE', 'NL', 'BE')
    """
    if not value:
        return default
    key = fold(value).rstrip(".")
    if key in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[key]
    if len(key) == 2 and key.isalpha():
        return key.upper()
    return default


def _street_number_box(part: str) -> tuple[str | None, str | None, str | None]:
    part = _NUMBER_MARKER.sub("", part).strip(" ,")
    # Floor or entrance notes in brackets are not part of the street: "12 (1er étage)".
    part = " ".join(_BRACKETED.sub(" ", part).split())
    for pattern in (_STREET_THEN_NUMBER, _NUMBER_THEN_STREET):
        match = pattern.match(part)
        if match and _HAS_LETTERS.search(match.group("street")):
            number, box = _number_and_box(match)
            return match.group("street").strip(" ,-"), number, box
    if _HAS_LETTERS.search(part):
        return part.strip(" ,-"), None, None
    return None, None, None


def _is_number_only(part: str) -> bool:
    return _NUMBER_AND_BOX.match(_NUMBER_MARKER.sub("", part)) is not None


def _has_street_type(part: str) -> bool:
    return any(
        tok in _FR_TYPE_SET or tok in _NL_TYPE_SET or tok.endswith(_NL_SUFFIXES)
        for tok in normalize_street(part).split()
    )


def _pick_street_part(parts: list[str]) -> int | None:
    """Index of the part holding the street: one with letters and a number, preferably
    one with a street-type word; else the first part with letters."""
    with_letters = [i for i, p in enumerate(parts) if _HAS_LETTERS.search(p)]
    if not with_letters:
        return None
    with_number = [i for i in with_letters if _DIGIT.search(parts[i])]
    if len(with_number) == 1:
        return with_number[0]
    typed = [i for i in with_number if _has_street_type(parts[i])]
    if typed:
        return typed[0]
    if with_number:
        return with_number[0]
    return with_letters[0]


@lru_cache(maxsize=131_072)
def parse_address(raw: str | None, default_country: str = "BE") -> AddressParts:
    """Split a one-line or multi-line address into its parts; never raises.

    >>> parse_address("Av. Louise 17-20 bte 3, 1050 Ixelles")  # doctest: +NORMALIZE_WHITESPACE
    AddressParts(street='Av. Louise', house_number='17-20', box='3', postcode='1050',
                 locality='Ixelles', country='BE')

    Street and locality are returned as written (trimmed); the postcode is normalised.
    The country is the one named at the end of the address, else `default_country`.
    Text with no street and no postcode gives AddressParts() (all None).
    """
    if not raw or not isinstance(raw, str):
        return _EMPTY
    try:
        return _parse_address(raw[:500], (default_country or "BE").upper())
    except (ValueError, IndexError, TypeError, re.error):  # pragma: no cover - defensive
        return _EMPTY


def _parse_address(raw: str, default_country: str) -> AddressParts:
    text = _DASH_BEFORE_POSTCODE.sub(", ", " ".join(raw.replace("\r", "\n").split(" ")))
    parts = [p.strip() for p in _LINE_SPLIT.split(text) if p and p.strip(" -")]
    parts = [" ".join(p.split()) for p in parts]
    country = None
    while parts and _country_of(parts[-1]) and len(parts) > 1:
        country = country or _country_of(parts[-1])
        parts.pop()
    country = country or default_country
    whole_part, locality_first, trailing = _postcode_patterns(country)

    postcode = locality = None
    for i in range(len(parts) - 1, -1, -1):
        part = parts[i]
        match = whole_part.match(part) or (
            # "Bruxelles 1000"; but "Chaussée de Wavre 1100" is a street and its number.
            None if _has_street_type(part) else locality_first.match(part)
        )
        if match:
            postcode = normalize_postcode(match.group("postcode"), country)
            if postcode:
                locality = match.group("locality")
                del parts[i]
                break
        match = trailing.match(part)
        if match and (i == len(parts) - 1):
            candidate = normalize_postcode(match.group("postcode"), country)
            if candidate and _HAS_LETTERS.search(match.group("rest")):
                postcode, locality = candidate, match.group("locality")
                parts[i] = match.group("rest")
                break
    # Locality without postcode: a last part without digits after a street part.
    if locality is None and len(parts) >= 2 and not re.search(r"\d", parts[-1]) and re.search(
        r"\d", parts[-2]
    ):
        locality = parts.pop()
    # A number (and box) on its own part belongs to the street before it: "Rue X, 33".
    merged: list[str] = []
    for part in parts:
        if merged and _is_number_only(part):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    street = number = box = None
    index = _pick_street_part(merged)
    if index is not None:
        street, number, box = _street_number_box(merged[index])
    if street is None and postcode is None:
        return _EMPTY
    locality = locality.strip(" -,") if locality else None
    if locality and " " in locality:
        # "1000 Brussel BE": a country written after the locality on the same line.
        head, last_word = locality.rsplit(" ", 1)
        # Short codes only in capitals: "Brussel BE" yes, a locality ending in "de" no.
        is_code = len(last_word) > 3 or last_word.isupper()
        if is_code and _country_of(last_word) and country == default_country:
            country = _country_of(last_word) or country
            locality = head.strip(" -,")
    return AddressParts(
        street=street or None,
        house_number=number,
        box=box,
        postcode=postcode,
        locality=locality or None,
        country=country,
    )
