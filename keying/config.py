"""Keying settings: grade cut-offs, blocking limits, scoring thresholds, country defaults.

Every number the keying engine decides with lives here, with a default that works on the
demo region. A `keying.toml` file (passed with `horeca key --config FILE`) overrides any of
them; see `docs/methodology.md` for what each one means. Shape of the file:

    [keying]
    country = "BE"                  # default country for phones and postcodes

    [keying.grades]
    name_same = 94                  # rapidfuzz similarity (0-100) graded A
    name_similar = 80               # graded B
    ...

    [keying.blocking]
    max_units_per_street = 400
    ...

    [keying.scoring]
    match_probability = 0.95
    doubt_probability = 0.01
    ...

    [keying.consolidation]
    ...

    [keying.weights.name]           # optional fixed m/u probabilities for one field,
    A = [0.85, 0.0004]              # level = [m, u]; skips estimating that field
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from horeca.errors import UserError
from horeca.tomlfile import read_toml


@dataclass(frozen=True)
class GradeConfig:
    """Where a field's similarity turns from A (same) to B (similar) to F (different)."""

    name_same: float = 94.0          # best rapidfuzz similarity over every pair of names
    name_similar: float = 80.0
    street_same: float = 92.0        # similarity of street cores (type words removed)
    street_similar: float = 80.0
    number_near: int = 0             # numbers this close (no overlap) grade B; 0: only a
                                     # differing letter suffix (12A / 12B) grades B
    distance_close_m: float = 25.0   # pins this close are "together" (a stronger A)
    distance_same_m: float = 60.0    # geocodes this close grade A
    distance_near_m: float = 250.0   # this close grade B


@dataclass(frozen=True)
class BlockingConfig:
    """Which register units are compared with a place at all.

    Each kind of key (phone, website, street, name token...) stops producing candidates
    when too many register units share it: such a key identifies nothing, and keeping it
    would explode the number of comparisons on a national register.
    """

    grid_m: float = 200.0                 # side of the grid cells used for distance blocking
    max_distance_m: float = 120.0         # a unit this close to a place is a candidate
    max_nearest: int = 15                 # nearest units kept for a place without full address
    max_nearest_with_address: int = 4     # ... and for a place with street, number, postcode
    max_units_per_phone: int = 25
    max_units_per_domain: int = 50
    max_units_per_enterprise: int = 2000
    max_units_per_address: int = 30       # (postcode, street core, house number)
    max_units_per_name: int = 20          # a whole name (its words, sorted)
    max_units_per_street: int = 400       # (postcode, street core), places without number
    max_units_per_token: int = 15         # a name token anywhere in the register
    max_units_per_local_token: int = 20   # a name token within one postcode
    min_token_length: int = 3
    max_candidates_per_place: int = 400
    workers: int = 2                      # processes scanning and comparing (0: all CPUs)


@dataclass(frozen=True)
class ScoringConfig:
    """Turning grades into a probability and a probability into an outcome."""

    match_probability: float = 0.95       # at least this -> match (if the rules below hold)
    doubt_probability: float = 0.01       # at least this -> doubt, below -> no-match
    require_identity: bool = True         # a match needs name, phone, website or VAT to agree
    # A "premises match": the same door as a HoReCa unit whose register entry holds only a
    # legal name (nothing to check the listing's name against) and no contradicting phone,
    # website or VAT number, is a match from this probability on, when it is at least
    # `premises_lead` times as probable as the runner-up; premises_probability = 1 turns
    # premises matches off.
    premises_probability: float = 0.2
    premises_lead: float = 3.0
    # Share of places registered in the register, as a prior; 0 (the default): estimate it
    # by EM. Set it for very small inputs, where a handful of places cannot estimate it.
    registered_share: float = 0.0
    em_max_iterations: int = 60
    em_tolerance: float = 1e-5
    random_pairs: int = 20_000            # random (place, unit) pairs to estimate u ...
    sample_units: int = 2_000             # ... drawn from this many units sampled uniformly
    seed: int = 20260101                  # for the random pairs: same data -> same weights
    # Probabilities are clipped to keep one field from deciding alone on a sliver of data.
    min_probability: float = 1e-5


@dataclass(frozen=True)
class ConsolidationConfig:
    """When listings on several platforms are the same business (one place)."""

    max_distance_m: float = 80.0          # close coordinates ...
    name_similarity: float = 90.0         # ... plus names at least this similar
    max_listings_per_phone: int = 6       # a phone shared by more listings is a chain's line
    max_listings_per_domain: int = 6
    shared_contact_max_distance_m: float = 400.0  # same phone/web but far apart: branches


@dataclass(frozen=True)
class KeyingConfig:
    country: str = "BE"
    grades: GradeConfig = field(default_factory=GradeConfig)
    blocking: BlockingConfig = field(default_factory=BlockingConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    consolidation: ConsolidationConfig = field(default_factory=ConsolidationConfig)
    # Optional fixed probabilities: {field: {level: (m, u)}}; fields listed here skip EM.
    fixed_weights: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, recorded with each run so a result can be traced to its settings."""
        out: dict[str, Any] = {"country": self.country}
        for section in ("grades", "blocking", "scoring", "consolidation"):
            obj = getattr(self, section)
            out[section] = {f.name: getattr(obj, f.name) for f in fields(obj)}
        if self.fixed_weights:
            out["weights"] = {k: {lv: list(mu) for lv, mu in v.items()}
                              for k, v in self.fixed_weights.items()}
        return out


DEFAULT_CONFIG = KeyingConfig()
_SECTIONS = {"grades": GradeConfig, "blocking": BlockingConfig, "scoring": ScoringConfig,
             "consolidation": ConsolidationConfig}
# The grades shown for every pair (Z = missing is implicit everywhere).
GRADED_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("A", "B", "F"), "street": ("A", "B", "F"), "number": ("A", "B", "F"),
    "postcode": ("A", "F"), "phone": ("A", "F"), "web": ("A", "F"), "vat": ("A", "F"),
    "distance": ("A", "B", "F"), "activity": ("A", "F"),
}
# The fields the scoring model weighs, levels best first. Street, number, postcode and
# distance enter as one "location" (A same door, N within reach of the pin, S same street
# but another number, P same postcode or neighbourhood, F elsewhere): they say the same
# thing several times, and weighing them apart would count it several times; C is N with
# the pins within a few metres (distance_close_m). The name
# has two kinds of F: L differs but the register holds no trade name for the unit (only
# a company's or a person's legal name), F differs from a trade name the register holds.
MODEL_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("A", "B", "L", "F"), "location": ("A", "C", "N", "S", "P", "F"),
    "phone": ("A", "F"), "web": ("A", "F"), "vat": ("A", "F"), "activity": ("A", "F"),
}


def _coerce(section: str, key: str, value: Any, default: Any, path: str) -> Any:
    expected = type(default)
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, expected):
        return value
    raise UserError(f"[keying.{section}] {key} = {value!r} is not a {expected.__name__}",
                    path=path, fix=f"write a {expected.__name__}, e.g. {key} = {default!r}")


def _section(cls: type, section: str, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(f"[keying.{section}] must be a table", path=path,
                        fix=f"write it as a [keying.{section}] section")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    changes = {}
    for key, value in data.items():
        if key not in known:
            raise UserError(f"unknown setting [keying.{section}] {key}", path=path,
                            fix=f"use one of: {', '.join(sorted(known))}")
        changes[key] = _coerce(section, key, value, getattr(defaults, key), path)
    return replace(defaults, **changes)


def _weights(data: Any, path: str) -> dict[str, dict[str, tuple[float, float]]]:
    if not isinstance(data, dict):
        raise UserError("[keying.weights] must be a table", path=path,
                        fix="write [keying.weights.name] with A = [m, u] lines")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for fname, levels in data.items():
        if fname not in MODEL_FIELDS:
            raise UserError(f"unknown field [keying.weights.{fname}]", path=path,
                            fix=f"use one of: {', '.join(MODEL_FIELDS)}")
        if not isinstance(levels, dict) or set(levels) != set(MODEL_FIELDS[fname]):
            need = ", ".join(MODEL_FIELDS[fname])
            raise UserError(f"[keying.weights.{fname}] must give every level ({need})",
                            path=path, fix=f"write one line per level: {need} = [m, u]")
        pairs: dict[str, tuple[float, float]] = {}
        for level, mu in levels.items():
            ok = (isinstance(mu, list) and len(mu) == 2
                  and all(isinstance(x, int | float) and 0 < x < 1 for x in mu))
            if not ok:
                raise UserError(f"[keying.weights.{fname}] {level} = {mu!r} is not [m, u]",
                                path=path, fix="give two probabilities between 0 and 1, "
                                "e.g. A = [0.9, 0.001]")
            pairs[level] = (float(mu[0]), float(mu[1]))
        out[fname] = pairs
    return out


def _check(config: KeyingConfig, path: str) -> None:
    s = config.scoring
    if not 0 < s.doubt_probability < s.match_probability < 1:
        raise UserError("thresholds must satisfy 0 < doubt_probability < match_probability < 1",
                        path=path, fix="e.g. match_probability = 0.99, doubt_probability = 0.1")
    if not 0 <= s.registered_share < 1:
        raise UserError("registered_share must be 0 (estimate it) or between 0 and 1",
                        path=path, fix="e.g. registered_share = 0.8")
    g = config.grades
    if not (g.name_similar <= g.name_same and g.street_similar <= g.street_same
            and g.distance_close_m <= g.distance_same_m <= g.distance_near_m):
        raise UserError("each 'similar' cut-off must be looser than its 'same' cut-off",
                        path=path, fix="e.g. name_same = 94, name_similar = 80")


def config_from_dict(data: dict[str, Any], path: str = "keying config") -> KeyingConfig:
    """Build a config from parsed TOML (the content of the [keying] table)."""
    config = DEFAULT_CONFIG
    for key, value in data.items():
        if key == "country":
            if not (isinstance(value, str) and len(value) == 2 and value.isalpha()):
                raise UserError(f"country = {value!r} is not a two-letter ISO code",
                                path=path, fix='write e.g. country = "BE"')
            config = replace(config, country=value.upper())
        elif key in _SECTIONS:
            config = replace(config, **{key: _section(_SECTIONS[key], key, value, path)})
        elif key == "weights":
            config = replace(config, fixed_weights=_weights(value, path))
        else:
            known = ", ".join(["country", *_SECTIONS, "weights"])
            raise UserError(f"unknown section [keying.{key}]", path=path,
                            fix=f"use one of: {known}")
    _check(config, path)
    return config


def load_config(path: str | Path | None) -> KeyingConfig:
    """The defaults, overridden by the [keying] table of a TOML file when one is given."""
    if path is None:
        return DEFAULT_CONFIG
    p = Path(path)
    data = read_toml(p, what="keying config", option="--config")
    keying = data.get("keying", {})
    extra = set(data) - {"keying"}
    if extra:
        raise UserError(f"unexpected top-level table(s): {', '.join(sorted(extra))}", path=p,
                        fix="put every setting under [keying] or [keying.<section>]")
    if not isinstance(keying, dict):
        raise UserError("[keying] must be a table", path=p, fix="write a [keying] section")
    return config_from_dict(keying, str(p))
