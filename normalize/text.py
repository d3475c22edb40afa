"""Text folding shared by every normaliser.

`fold` is the one place that decides what "the same text" means before comparing:
case, accents, ligatures and punctuation never carry identity in business names or street
names, so they are removed; '&' does (it is how "Pain & Vin" is written as often as "Pain
et Vin"), so it survives as its own token and `normalize.names` decides what it equals.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Letters that NFKD does not decompose into "base letter + combining mark".
_SPECIAL_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "ss",
        "œ": "oe",
        "Œ": "oe",
        "æ": "ae",
        "Æ": "ae",
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "ı": "i",
        "ĸ": "k",
        "ŉ": "n",
    }
)

# After accent stripping only ASCII letters, digits and '&' are kept; everything else
# (punctuation, symbols, other scripts' punctuation, apostrophes, hyphens) separates words.
_NON_WORD = re.compile(r"[^a-z0-9&]+")


@lru_cache(maxsize=262_144)
def fold(text: str | None) -> str:
    """Lowercase, strip accents, punctuation to spaces, collapse whitespace.

    >>> fold("  Brasserie L'Écluse & Fils — S.P.R.L. ")
    'brasserie l ecluse & fils s p r l'
    >>> fold("Straße Œuvre")
    'strasse oeuvre'

    Letters outside Latin script that have no ASCII decomposition act as separators: the
    register and the platforms of the target regions write names in Latin script.
    """
    if not text:
        return ""
    if text.isascii():  # most register and listing text: skip Unicode decomposition
        lowered = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL_LETTERS))
        stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        # translate again: NFKD can produce ligature letters from compatibility forms.
        lowered = stripped.translate(_SPECIAL_LETTERS).lower()
    # Anything left that is not an ASCII letter or digit (dashes, quotes, symbols, letters
    # of other scripts) separates words.
    spaced = _NON_WORD.sub(" ", lowered)
    if "&" in spaced:
        spaced = spaced.replace("&", " & ")
    return " ".join(spaced.split())


def tokens(text: str | None) -> list[str]:
    """`fold(text)` split into words."""
    return fold(text).split()
