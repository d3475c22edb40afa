"""Business names: legal forms, generic HoReCa words, sole-trader detection.

Everything here compares *folded* text (`normalize.text.fold`): the constants hold folded
tokens ("cafe", not "Café"; "l" for "l'", "t" for "'t").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from horeca.normalize.text import fold

# Legal forms as letters only (dots, spaces and hyphens are optional when matching:
# "B.V.B.A.", "b v b a", "BVBA" and "SPRL-U" all match). Belgian forms in NL / FR / DE,
# old and new (company code of 2019), then common foreign ones.
_LEGAL_FORM_LETTERS: tuple[str, ...] = (
    # since 2019 (NL/FR/DE): BV/SRL, NV/SA/AG, CV/SC/Gen, VOF/SNC/OHG, CommV/SComm/KG,
    # VZW/ASBL/VoG
    "bv", "srl", "nv", "sa", "ag", "cv", "sc", "vof", "snc", "ohg", "commv", "scomm", "kg",
    "vzw", "asbl", "vog", "ivzw", "aisbl", "ivog", "esv", "gie", "eesv", "geie", "gen",
    # before 2019
    "bvba", "sprl", "pgmbh", "cvba", "scrl", "cvoa", "scri", "scris", "commva", "sca",
    "kgaa", "ebvba", "sprlu", "cvso", "scrlfs", "sprls", "lv", "gcv", "scs", "gmbh",
    # foreign forms seen on Belgian listings
    "ltd", "limited", "llc", "inc", "plc", "sarl", "sas", "sasu", "eurl", "ug", "ev",
    "srls",
)

LEGAL_FORMS: frozenset[str] = frozenset(_LEGAL_FORM_LETTERS) | frozenset(
    {"sprl-u", "s.a.", "n.v.", "b.v.", "b.v.b.a.", "s.p.r.l.", "s.r.l.", "a.s.b.l.", "v.z.w.",
     "c.v.b.a.", "s.c.r.l.", "comm.v.", "s.comm.", "e.b.v.b.a.", "s.p.r.l.u.", "v.o.f.",
     "s.n.c.", "s.c.a.", "comm.v.a.", "gmbh & co kg", "s.a.r.l.", "s.a.s."}
)

# Words that say what kind of place it is, articles and prepositions: they make two
# names look alike without saying they are the same business.
GENERIC_WORDS: frozenset[str] = frozenset(
    {
        # kinds of places (FR, NL, EN, DE, IT)
        "restaurant", "restaurants", "resto", "brasserie", "cafe", "cafes", "koffiehuis",
        "taverne", "tavern", "hotel", "hotels", "snack", "snacks", "bar", "bars", "pizzeria",
        "pizza", "friterie", "frituur", "fritkot", "frit", "bistro", "bistrot", "eetcafe",
        "herberg", "auberge", "traiteur", "b&b", "bnb", "bed", "breakfast", "hostel",
        "jeunesse", "jeugdherberg", "guesthouse", "guest", "house", "lounge",
        "pub", "grill", "grillroom", "steakhouse", "kebab", "doner", "sandwicherie",
        "sandwiches", "sandwich", "broodjes", "broodjeszaak", "lunchroom", "tearoom",
        "salon", "the", "patisserie", "boulangerie", "bakkerij", "glacier", "ijssalon",
        "cantine", "kantine", "buvette", "estaminet", "kroeg", "eethuis", "eethuisje",
        "trattoria", "osteria", "ristorante", "taqueria", "sushi", "wok",
        "noodles", "burger", "burgers", "food", "kitchen", "cuisine", "keuken", "cafetaria",
        "cafeteria", "club", "discotheque", "dancing", "night", "nightclub", "wine",
        "wijnbar", "lodge", "inn", "motel", "residence", "appart", "apparthotel",
        "aparthotel", "suites", "rooms", "chambres", "chambre", "hotes", "gastenkamers",
        "camping", "gite", "vakantiewoning", "catering", "events", "event", "take", "away",
        "takeaway", "delivery", "express", "shop", "coffee", "espresso", "tea",
        "bbq", "rotisserie", "creperie", "gaufrerie", "saladerie", "soupes", "bagels",
        # articles, prepositions, conjunctions
        "le", "la", "les", "l", "un", "une", "de", "du", "des", "d", "au", "aux", "a", "chez",
        "et", "en", "and", "und", "&", "het", "den", "der", "t", "een", "van", "bij", "op",
        "in", "of", "da", "di", "del", "della", "il", "lo", "el", "los", "las", "o",
        "dos", "do", "zum", "zur", "im", "am", "die", "das", "s",
    }
)

# Legal forms are recognised on raw tokens (split at spaces, commas, slashes and dashes),
# compared by their folded letters: "B.V.B.A.", "b v b a", "(BVBA)" and "Bvba" all give
# "bvba"; "SPRL-U" gives "sprl" + "u". Cutting at token boundaries keeps the rest of the
# name exactly as written.
_RAW_TOKEN = re.compile(r"[^\s,;/\-–]+")
_FORM_KEYS = frozenset(_LEGAL_FORM_LETTERS) | {"gmbhcokg"}
_MAX_FORM_TOKENS = 5
_MAX_PIECE = 5  # a form spelled over several tokens has short pieces ("comm. v.", "s a")
_TRAILING_JUNK = " \t\n,;:/-–("
_LEADING_JUNK = " \t\n,;:/-–)"
_BRACKETED = re.compile(r"\(([^()]{1,24})\)")


_FORM_SUFFIXES = frozenset(k[i:] for k in _FORM_KEYS for i in range(len(k)))
_FORM_PREFIXES = frozenset(k[: i + 1] for k in _FORM_KEYS for i in range(len(k)))


def _letters(piece: str) -> str:
    return fold(piece).replace(" ", "").replace("&", "")


def _form_start_from_end(pieces: Sequence[str], key_of: Callable[[str], str]) -> int | None:
    """Index of the first piece of a legal form that ends `pieces` (never index 0)."""
    key, found = "", None
    for index in range(len(pieces) - 1, max(len(pieces) - 1 - _MAX_FORM_TOKENS, 0), -1):
        piece = key_of(pieces[index])
        if key and len(piece) > _MAX_PIECE:
            break
        key = piece + key
        if key and key not in _FORM_SUFFIXES:
            break
        if key in _FORM_KEYS:
            found = index  # keep going: "e b v b a" is longer than "b v b a"
    return found


def _form_end_from_start(pieces: Sequence[str], key_of: Callable[[str], str]) -> int | None:
    """Index of the last piece of a legal form that opens `pieces` (never the last one)."""
    key, found = "", None
    for index in range(min(_MAX_FORM_TOKENS, len(pieces) - 1)):
        piece = key_of(pieces[index])
        if key and len(piece) > _MAX_PIECE:
            break
        key += piece
        if key and key not in _FORM_PREFIXES:
            break
        if key in _FORM_KEYS:
            found = index
    return found


def _strip_once(name: str) -> str:
    if "(" in name:  # "Le Wagon (SA) Ixelles"
        name = _BRACKETED.sub(lambda m: " " if _letters(m.group(1)) in _FORM_KEYS else m.group(0),
                              name)
        name = " ".join(name.split())
    tokens = list(_RAW_TOKEN.finditer(name))
    pieces = [m.group(0) for m in tokens]
    start = _form_start_from_end(pieces, _letters)
    if start is not None:
        rest = name[: tokens[start].start()].rstrip(_TRAILING_JUNK)
        if any(ch.isalnum() for ch in rest):
            return rest
    end = _form_end_from_start(pieces, _letters)
    if end is not None:
        rest = name[tokens[end].end() :].lstrip(_LEADING_JUNK)
        if any(ch.isalnum() for ch in rest):
            return rest
    return name


@lru_cache(maxsize=262_144)
def strip_legal_form(name: str) -> str:
    """`name` without a leading, trailing or bracketed legal form, otherwise as written.

    >>> strip_legal_form("Brasserie De Smet BVBA")
    'Brasserie De Smet'
    >>> strip_legal_form("S.P.R.L. Chez Marie")
    'Chez Marie'
    >>> strip_legal_form("Le Wagon (SA)")
    'Le Wagon'

    A name that is nothing but a legal form is returned unchanged, so that stripping never
    turns a name into an empty string.
    """
    if not name:
        return ""
    current = " ".join(name.split())
    while True:
        stripped = _strip_once(current).strip(" ,;:-–")
        if stripped == current or not any(ch.isalnum() for ch in stripped):
            return current
        current = stripped


_CONJUNCTIONS = frozenset({"&", "et", "en", "and", "und"})
_B_AND_B = re.compile(r"\bb & b\b")
_CONJUNCTION_TOKEN = "&"


def _strip_folded_edges(tokens: list[str]) -> list[str]:
    """Drop legal forms and dangling conjunctions at either end of folded tokens.

    The pass on the raw name (`strip_legal_form`) handles most forms; this catches what
    folding revealed ("&SA:0" -> "0", "Foo.SA" -> "foo").
    Never empties the list.
    """
    changed = True
    while changed and len(tokens) > 1:
        changed = False
        if tokens[0] == _CONJUNCTION_TOKEN:
            tokens, changed = tokens[1:], True
            continue
        if tokens[-1] == _CONJUNCTION_TOKEN:
            tokens, changed = tokens[:-1], True
            continue
        start = _form_start_from_end(tokens, _folded_key)
        if start is not None:
            tokens, changed = tokens[:start], True
            continue
        end = _form_end_from_start(tokens, _folded_key)
        if end is not None:
            tokens, changed = tokens[end + 1 :], True
    return tokens


def _folded_key(token: str) -> str:
    return "" if token == _CONJUNCTION_TOKEN else token


@lru_cache(maxsize=262_144)
def normalize_name(name: str | None) -> str:
    """Folded name without legal forms; '&', 'et', 'en', 'and', 'und' all become '&'.

    >>> normalize_name("Pain et Vin S.R.L.")
    'pain & vin'
    >>> normalize_name("B&B Les Tilleuls")
    'b&b les tilleuls'
    """
    if not name:
        return ""
    tokens = [
        _CONJUNCTION_TOKEN if tok in _CONJUNCTIONS else tok
        for tok in fold(strip_legal_form(name)).split()
    ]
    tokens = _B_AND_B.sub("b&b", " ".join(tokens)).split()
    return " ".join(_strip_folded_edges(tokens))


def name_tokens(name: str | None) -> list[str]:
    """Words of `normalize_name(name)`."""
    return normalize_name(name).split()


@lru_cache(maxsize=262_144)
def _informative(name: str | None) -> tuple[str, ...]:
    return tuple(tok for tok in name_tokens(name) if tok not in GENERIC_WORDS)


def informative_tokens(name: str | None) -> list[str]:
    """Name words that carry identity: `name_tokens` without GENERIC_WORDS.

    >>> informative_tokens("Brasserie de l'Union")
    ['union']
    """
    return list(_informative(name))


# Common given names in Belgium (FR, NL, DE communities) and among its larger immigrant
# communities, folded. Used only to recognise a sole trader's trading name, which is a
# person's name and so personal data; the list need not be complete, a miss only means
# a name is treated as a business name.
_GIVEN_NAMES_TEXT = """
    aaron abdel abdelkader abdellah abdelaziz abdul adam adel adrien agnes ahmed aicha ali
    alain alex alexandre alexander alexandra alexis alfred alice aline amandine ambre amelie
    amina amir an ana andre andrea andreas andree angela angelique anis anja ann anna anne
    annelies annemie annick anouk antoine anton antonio arnaud arne arthur astrid audrey
    axel ayoub aziz barbara bart bastien beatrice ben benjamin benoit bernadette bernard
    bert bilal bjorn blanche bram brigitte bruno camille carine carla carlos carmen caroline
    catherine cedric celine chantal charles charlotte chloe christian christiane christine
    christophe claire claude claudine clement colette conny corinne cyril daan damien daniel
    daniela daniele danny dario david davy delphine denis diane didier diego dimitri dirk
    dominique dorien driss dries edith eduardo edward elena elias elien elif elisa elisabeth
    elise ellen els emile emilie emin emma emmanuel emre eric erik erika ester esther
    etienne eva evelyne fabian fabienne fabio fabrice farid fatima fatma federico femke
    fernand filip florence florian france francesca francesco francine francis francisco
    franck francois francoise frank frans frederic frederik gabriel gael geert georges
    gerard gert ghislain gilbert gilles gina giovanni giulia giuseppe gregory greet guido
    guillaume gunther gustave guy hakan hamid hamza hanna hannah hans hassan helene hendrik
    henri herman hilde hugo ibrahim ilse ines ingrid ioana irene isabel isabelle ismail ivan
    jacqueline jacques jamal jan jana jasper jean jeanne jef jelle jennifer jens jeroen
    jessica jo joachim joao joelle johan johanna john jonas jonathan jordi jorge jose joseph
    josiane josse jozef julie julien juliette justine karel karim karin kaat katrien kenneth
    kevin khalid kim koen kristof laura laurence laurent lea leen lena leo leon leonie lieve
    linda lisa lotte louis louise luc luca lucas lucia lucie ludo ludovic luis lukas lut
    lydia magali maarten manon manuel marc marcel marco margot maria marianne marie mariette
    marijke marina mario marion mark marleen martin martine mathias mathieu mathilde matteo
    maxime mehdi mehmet melanie michael michaela michel michele michiel mieke miguel mohamed
    mohammed monique mustafa myriam nadia nancy natalia nathalie nicolas nicole niels nina
    noah noel noor nora olivier omar oscar pascal pascale patrick patricia paul paula paulo
    peter petra philippe pierre piet pieter pietro pol rachid rafael rania raphael rashid
    raymond rebecca regine remi rene renee ricardo richard rik rita robert robin roel roger
    roland romain ronald rosa ruben rudi rudy ruth sabine sabrina said salvatore samir
    samira sami samuel sandra sandrine sara sarah sebastien serge sergio simon simone sofia
    sofie sophie stefaan stefan stephane stephanie steven stijn suzanne sven sylvie tania
    tanja theo thierry thomas tim tine tom tomas toon valentin valerie vanessa veerle vera
    veronique victor vincent virginie walter wendy werner willem william wim wouter xavier
    yannick yasmina yasmine yassine youssef yves yvette yvonne zakaria zeynep
"""
GIVEN_NAMES: frozenset[str] = frozenset(_GIVEN_NAMES_TEXT.split())

# Surname particles: "De Smet", "Van den Bossche", "Le Roy", "Della Rocca".
_PARTICLES = frozenset(
    {"de", "van", "der", "den", "von", "le", "la", "du", "des", "d", "del", "della", "da",
     "di", "ter", "ten", "vanden", "vander", "vande", "mc", "mac", "el", "al", "ben", "bin",
     "dos", "das", "t"}
)
# Words that make a name a place, not a person, beyond GENERIC_WORDS.
_NOT_PERSON = (GENERIC_WORDS - _PARTICLES) | frozenset(
    {"sint", "saint", "sainte", "st", "ste", "san", "santa", "santo", "sao", "chez", "bij",
     "chateau", "kasteel", "villa", "maison", "huis", "casa", "ferme", "hof", "taste",
     "the", "bon", "bonne", "petit", "petite", "grand", "grande", "vieux", "vieille", "oud",
     "oude", "nieuw", "nieuwe", "royal", "royale", "imperial", "palace", "group", "groupe",
     "invest", "holding", "management", "services", "international", "company", "compagnie",
     "cie", "co", "zonen", "fils", "freres", "gebroeders", "soeurs"}
)
_COMMA_NAME = re.compile(r"^\s*([^,]+),\s*([^,]+?)\s*$")


def _surname_ok(tokens: list[str]) -> bool:
    # A surname is one or more words, possibly with particles, ending in a real word.
    return bool(tokens) and tokens[-1] not in _PARTICLES and len(tokens) <= 4


def _given_prefix(tokens: list[str]) -> int:
    n = 0
    while n < len(tokens) and n < 3 and tokens[n] in GIVEN_NAMES:
        n += 1
    return n


@lru_cache(maxsize=131_072)
def looks_like_person_name(name: str | None) -> bool:
    """Heuristic: is `name` a natural person's name ("Jan Peeters", "Dupont Marie",
    "PEETERS, Jan", "Van den Bossche Pieter") rather than a business name?

    A given name from GIVEN_NAMES must open or close the name, the rest must read as a
    surname (particles allowed, no digits), and no word may name a kind of place ("Chez
    Marie", "Pizza Mario" and "Le Petit Sablon" are not persons). Legal forms are ignored.
    Errs towards False: a person's name taken for a business name is caught by the
    register's TypeOfEnterprise, the reverse would hide a business.
    """
    if not name:
        return False
    stripped = strip_legal_form(name)
    comma = _COMMA_NAME.match(stripped)
    if comma:  # "PEETERS, Jan": surname first, given names after the comma
        surname, given = fold(comma.group(1)).split(), fold(comma.group(2)).split()
        return (
            _surname_ok(surname)
            and 0 < _given_prefix(given) == len(given)
            and not any(t in _NOT_PERSON or not t.isalpha() for t in surname)
        )
    tokens = fold(stripped).split()
    if not 2 <= len(tokens) <= 6:
        return False
    if any(t in _NOT_PERSON or not t.isalpha() for t in tokens):
        return False
    # Given name(s) first: "Jan Peeters", "Jean Pierre Van Damme".
    lead = _given_prefix(tokens)
    if 0 < lead < len(tokens) and _surname_ok(tokens[lead:]):
        return True
    # Surname first: "Dupont Marie", "De Smet Jan Pieter".
    trail = _given_prefix(tokens[::-1])
    return 0 < trail < len(tokens) and _surname_ok(tokens[: len(tokens) - trail])
