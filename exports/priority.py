"""Priority: which places an inspector should look at first, and why.

Pure functions over plain values. Three numbers per place, each 0-100:

* **activity**: how busy the place looks online, from review counts (log-scaled), how
  recently it was seen, on how many platforms, rooms and price level;
* **gap**: activity minus declared activity (workers, turnover of the register unit it is
  matched to, or of its best candidate for a doubt); None when the register declares nothing;
* **priority**: by outcome: a no-match ranks by activity; a doubt by activity blended with
  how weak its register evidence is; a match is low unless its gap says it may be
  under-declared. The gap can lift any row (`max(base, gap_weight * gap)`).

Every weight lives in `PriorityWeights`; `load_weights(path)` reads overrides from a TOML
file (see docs/methodology.md, "Priority"). Defaults are deliberately round numbers: they
order rows sensibly, they are not estimated from data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from horeca.errors import UserError
from horeca.tomlfile import read_toml

OUTCOMES = ("no-match", "doubt", "match")


@dataclass(frozen=True)
class PriorityWeights:
    # Activity components: relative weights (normalised over the components present).
    reviews: float = 0.45
    recency: float = 0.15
    platforms: float = 0.15
    rooms: float = 0.15
    price: float = 0.10
    # Saturation points: the value at which a component reaches its maximum of 1.
    review_saturation: float = 500.0      # total reviews over all platforms (log scale)
    recency_half_life_days: float = 90.0  # days since last seen that halve the component
    platform_saturation: float = 3.0      # platforms listing the place
    rooms_saturation: float = 30.0        # rooms (log scale)
    # Declared activity (register): linear up to these saturation points.
    workers_saturation: float = 10.0
    turnover_saturation: float = 1_000_000.0
    # Priority by outcome.
    no_match_weight: float = 1.0    # priority = weight * activity
    doubt_weight: float = 0.9       # priority = weight * blend(activity, weakness)
    doubt_weakness_share: float = 0.3  # share of weak register evidence in that blend
    match_weight: float = 0.2       # priority = weight * activity
    gap_weight: float = 0.8         # any outcome: priority >= gap_weight * gap
    # Score band of doubt rows [low, high]; empty = taken from the scores of the run.
    doubt_band: tuple[float, ...] = field(default=())
    # Average meal price (EUR) thresholds between price levels 1|2, 2|3, 3|4.
    price_thresholds: tuple[float, ...] = (15.0, 30.0, 60.0)

    def activity_weights(self) -> dict[str, float]:
        return {"reviews": self.reviews, "recency": self.recency,
                "platforms": self.platforms, "rooms": self.rooms, "price": self.price}


DEFAULT_WEIGHTS = PriorityWeights()


def load_weights(path: str | Path | None) -> PriorityWeights:
    """Defaults, overridden by the keys of a TOML file (top level or a [priority] table)."""
    if path is None:
        return DEFAULT_WEIGHTS
    path = Path(path)
    data = read_toml(path, what="weights file", option="--weights")
    data = data.get("priority", data)
    known = {f.name: f for f in fields(PriorityWeights)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise UserError(f"unknown priority weight {key!r}", path=path,
                            fix="use one of: " + ", ".join(known))
        if isinstance(getattr(DEFAULT_WEIGHTS, key), tuple):
            if not isinstance(value, list) or not all(
                    isinstance(v, int | float) for v in value):
                raise UserError(f"{key} must be a list of numbers", path=path,
                                fix=f"write e.g. {key} = [1.0, 2.0]")
            changes[key] = tuple(float(v) for v in value)
        elif isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            changes[key] = float(value)
        else:
            raise UserError(f"{key} must be a number >= 0", path=path,
                            fix=f"write e.g. {key} = {getattr(DEFAULT_WEIGHTS, key)}")
    weights = replace(DEFAULT_WEIGHTS, **changes)
    if weights.doubt_band and len(weights.doubt_band) != 2:
        raise UserError("doubt_band must have two numbers [low, high]", path=path,
                        fix="write doubt_band = [2.0, 8.0], or remove it")
    if len(weights.price_thresholds) != 3 or list(weights.price_thresholds) != sorted(
            weights.price_thresholds):
        raise UserError("price_thresholds must be three increasing numbers", path=path,
                        fix="write price_thresholds = [15, 30, 60]")
    return weights


# --- signals ---------------------------------------------------------------------------

_WORD_LEVELS = (
    ("very expensive", 4), ("luxury", 4), ("très cher", 4), ("inexpensive", 1), ("cheap", 1),
    ("bon marché", 1), ("goedkoop", 1), ("moderate", 2), ("modéré", 2), ("expensive", 3),
    ("cher", 3), ("duur", 3),
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def price_level(price_range: str | None,
                thresholds: tuple[float, ...] = DEFAULT_WEIGHTS.price_thresholds) -> float | None:
    """Price level 1-4 from schema.org `priceRange` text, or None if it says nothing.

    "€€" -> 2; "$$-$$$" -> 2.5 (mean of a range); "€10-20" -> level of the mean price 15;
    "moderate" -> 2.
    """
    if not price_range:
        return None
    text = str(price_range).strip().lower()
    runs = [len(m) for m in re.findall(r"[€$£¥]+", text)]
    numbers = [float(n.replace(",", ".")) for n in _NUMBER.findall(text)]
    if numbers:
        mean = sum(numbers) / len(numbers)
        level = 1 + sum(mean >= t for t in thresholds)
        return float(min(4, level))
    if runs:
        return float(min(4.0, sum(min(r, 4) for r in runs) / len(runs)))
    for word, level in _WORD_LEVELS:
        if word in text:
            return float(level)
    return None


def _log_share(value: float | None, saturation: float) -> float | None:
    if value is None:
        return None
    if value <= 0:
        return 0.0
    return min(1.0, math.log1p(value) / math.log1p(max(saturation, 1e-9)))


def days_between(earlier: str | None, later: str | None) -> float | None:
    """Whole days from one ISO date/datetime to another (>= 0), None if either is missing."""
    a, b = _parse_day(earlier), _parse_day(later)
    if a is None or b is None:
        return None
    return float(max(0, (b - a).days))


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            return None


@dataclass(frozen=True)
class Signals:
    """Online activity of one place (all its listings together)."""

    reviews_by_source: dict[str, int] = field(default_factory=dict)
    rating: float | None = None
    price_range: str | None = None
    rooms: int | None = None
    platforms: int = 1
    days_since_seen: float | None = None

    @property
    def reviews_total(self) -> int | None:
        return sum(self.reviews_by_source.values()) if self.reviews_by_source else None


def activity_components(signals: Signals, weights: PriorityWeights = DEFAULT_WEIGHTS
                        ) -> dict[str, float]:
    """Each component in [0, 1]. Reviews, recency and platforms always count (no review
    count = 0: nothing shows the place is busy); rooms and price only where a listing gives
    them, since most restaurants have no rooms and many listings no price.

    Recency is 1 when seen in the latest crawl and halves every `recency_half_life_days`.
    """
    parts: dict[str, float | None] = {
        "reviews": _log_share(signals.reviews_total or 0, weights.review_saturation),
        "recency": (0.5 ** (signals.days_since_seen / weights.recency_half_life_days)
                    if signals.days_since_seen is not None
                    and weights.recency_half_life_days > 0 else 0.0),
        "platforms": min(1.0, max(signals.platforms, 0) / max(weights.platform_saturation, 1)),
        "rooms": _log_share(signals.rooms, weights.rooms_saturation),
        "price": None,
    }
    level = price_level(signals.price_range, weights.price_thresholds)
    if level is not None:
        parts["price"] = (level - 1) / 3
    return {k: v for k, v in parts.items() if v is not None}


def activity_score(signals: Signals, weights: PriorityWeights = DEFAULT_WEIGHTS) -> float:
    """0-100: weighted mean of the available activity components."""
    parts = activity_components(signals, weights)
    w = weights.activity_weights()
    total = sum(w[k] for k in parts)
    if total <= 0:
        return 0.0
    return round(100 * sum(w[k] * v for k, v in parts.items()) / total, 1)


def _linear_share(value: float | None, saturation: float) -> float | None:
    if value is None:
        return None
    return min(1.0, max(0.0, value) / max(saturation, 1e-9))


def declared_level(workers: float | None, turnover: float | None,
                   weights: PriorityWeights = DEFAULT_WEIGHTS) -> float | None:
    """0-1 from the register's declared workers and turnover (the larger share of each
    saturation point); None if the register declares neither."""
    shares = [s for s in (_linear_share(workers, weights.workers_saturation),
                          _linear_share(turnover, weights.turnover_saturation)) if s is not None]
    return max(shares) if shares else None


def activity_gap(activity: float, workers: float | None, turnover: float | None,
                 weights: PriorityWeights = DEFAULT_WEIGHTS) -> float | None:
    """0-100: how far online activity exceeds declared activity; None if nothing declared."""
    level = declared_level(workers, turnover, weights)
    if level is None:
        return None
    return round(max(0.0, activity - 100 * level), 1)


def doubt_weakness(score: float | None, band: tuple[float, float] | None) -> float:
    """0-1: where a doubt's score sits in the doubt band, 1 at its bottom (nearest no-match).

    A doubt just under the match threshold is most often an artefact of one of the two
    databases; one just above no-match is most often a business the register does not know.
    """
    if score is None or band is None or band[1] <= band[0]:
        return 0.5
    return min(1.0, max(0.0, (band[1] - score) / (band[1] - band[0])))


def priority_score(outcome: str, activity: float, gap: float | None, weakness: float = 0.5,
                   weights: PriorityWeights = DEFAULT_WEIGHTS) -> float:
    """0-100 priority of one place (see the module docstring)."""
    if outcome == "no-match":
        base = weights.no_match_weight * activity
    elif outcome == "doubt":
        share = min(1.0, max(0.0, weights.doubt_weakness_share))
        base = weights.doubt_weight * ((1 - share) * activity + share * 100 * weakness)
    else:
        base = weights.match_weight * activity
    if gap is not None:
        base = max(base, weights.gap_weight * gap)
    return round(min(100.0, base), 1)


def rank_key(priority: float, outcome: str, place_id: str) -> tuple[float, int, str]:
    """Sort key: higher priority first; ties go to no-match, then doubt; then place id."""
    order = OUTCOMES.index(outcome) if outcome in OUTCOMES else len(OUTCOMES)
    return (-priority, order, place_id)


def explain_priority(outcome: str, signals: Signals, activity: float, gap: float | None,
                     declared_workers: float | None, declared_turnover: float | None,
                     weakness: float | None = None) -> str:
    """The priority in plain words, for the inspector reading the row."""
    parts: list[str] = []
    total = signals.reviews_total
    if total is not None:
        parts.append(f"{total} review{'s' if total != 1 else ''}")
    parts.append(f"on {signals.platforms} platform{'s' if signals.platforms != 1 else ''}")
    if signals.days_since_seen is not None:
        days = int(signals.days_since_seen)
        parts.append("seen in the latest crawl" if days == 0 else f"last seen {days} days "
                     "before the latest crawl")
    if signals.rooms:
        parts.append(f"{signals.rooms} rooms")
    if signals.price_range:
        parts.append(f"price {signals.price_range}")
    online = f"online activity {activity:.0f}/100 (" + ", ".join(parts) + ")"
    lead = {"no-match": "not found in the register",
            "doubt": "register evidence is uncertain",
            "match": "matched in the register"}.get(outcome, outcome)
    if outcome == "doubt" and weakness is not None:
        lead += " and " + ("weak" if weakness >= 0.67 else "middling" if weakness >= 0.34
                           else "close to a match")
    text = f"{lead}; {online}"
    if gap is not None:
        declared = []
        if declared_workers is not None:
            declared.append(f"{declared_workers:g} worker{'s' if declared_workers != 1 else ''}")
        if declared_turnover is not None:
            declared.append(f"turnover {declared_turnover:,.0f}")
        text += f"; declares {' and '.join(declared)} (activity gap {gap:.0f})"
    return text
