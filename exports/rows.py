"""Gathering one export row per place from the store.

`load_places` reads keying results, places, their listings, geocodes, register units and
verdicts, and returns `PlaceRecord`s (true values, typed). `to_row` turns one record into
the flat row the writers print, pseudonymising it when asked. Ranking happens in between,
in `horeca.exports.export`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from horeca.exports.priority import (
    DEFAULT_WEIGHTS,
    PriorityWeights,
    Signals,
    activity_gap,
    activity_score,
    days_between,
    doubt_weakness,
    explain_priority,
    priority_score,
)
from horeca.exports.pseudonyms import pseudonym, street_level
from horeca.exports.verdicts import Override, find_unit, latest_verdicts
from horeca.store import param_batches

CANDIDATE_SLOTS = 3
VERDICT_COLUMNS = ("verdict", "register_number", "comment", "reviewed_on")

# (column, kind): kind "number" is written as a number and never formula-neutralised;
# "text" is neutralised in CSV/XLSX. The order is the file's column order and is stable:
# add new columns at the end of a group, never rename one (review import reads by name).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "number"), ("priority", "number"), ("outcome", "text"), ("name", "text"),
    *((c, "text") for c in VERDICT_COLUMNS),
    ("reason", "text"), ("priority_reason", "text"), ("grades", "text"), ("score", "number"),
    ("activity_score", "number"), ("activity_gap", "number"),
    ("sources", "text"), ("names", "text"), ("street", "text"), ("house_number", "text"),
    ("box", "text"), ("postcode", "text"), ("locality", "text"), ("phones", "text"),
    ("websites", "text"), ("lat", "number"), ("lon", "number"), ("coordinates_from", "text"),
    ("reviews_by_source", "text"), ("reviews_total", "number"), ("rating", "number"),
    ("price_range", "text"), ("rooms", "number"), ("platforms", "number"),
    ("last_seen", "text"),
    ("register_unit", "text"), ("declared_by", "text"), ("declared_workers", "number"),
    ("declared_turnover", "number"),
    *((col, kind) for i in range(1, CANDIDATE_SLOTS + 1) for col, kind in (
        (f"candidate_{i}", "text"), (f"candidate_{i}_name", "text"),
        (f"candidate_{i}_grades", "text"), (f"candidate_{i}_score", "number"))),
    ("natural_person", "text"), ("pseudonymised", "text"), ("previous_verdict", "text"),
    ("place_id", "text"), ("listing_ids", "text"), ("exported_at", "text"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c for c, _ in COLUMNS)
NUMBER_COLUMNS: frozenset[str] = frozenset(c for c, k in COLUMNS if k == "number")
SEP = "; "


@dataclass
class Unit:
    """A register unit as shown in an export."""

    unit_id: str
    name: str | None = None
    natural_person: bool = False
    declared_workers: float | None = None
    declared_turnover: float | None = None
    enterprise_number: str | None = None
    establishment_number: str | None = None
    declared_level: str | None = None   # establishment | enterprise: whose figures


@dataclass
class Candidate:
    unit: Unit
    grades: str | None = None
    score: float | None = None


@dataclass
class PlaceRecord:
    place_id: str
    outcome: str
    score: float | None
    grades: str | None
    reason: str | None
    listings: list[dict[str, Any]]
    candidates: list[Candidate]
    matched: Unit | None
    lat: float | None = None
    lon: float | None = None
    coordinates_from: str | None = None
    geocode_provider: str | None = None
    signals: Signals = field(default_factory=Signals)
    last_seen: str | None = None
    override: Override | None = None        # latest settling verdict (not not_visited)
    previous: Override | None = None        # latest verdict of any kind
    # Filled by `score_records`:
    activity: float = 0.0
    gap: float | None = None
    priority: float = 0.0
    priority_reason: str = ""
    rank: int = 0

    @property
    def listing_ids(self) -> list[str]:
        return [str(row["id"]) for row in self.listings]

    @property
    def declared_by(self) -> Unit | None:
        """Whose declared activity is compared: the matched unit, or a doubt's best one."""
        if self.outcome == "match":
            return self.matched
        if self.outcome == "doubt" and self.candidates:
            return self.candidates[0].unit
        return None

    @property
    def natural_person(self) -> bool:
        """A listing is flagged, or the unit it is (probably) linked to is a sole trader."""
        unit = self.declared_by
        return any(bool(row.get("natural_person")) for row in self.listings) or bool(
            unit and unit.natural_person)

    @property
    def settled(self) -> bool:
        """An inspector already gave a verdict other than not_visited: not proposed again."""
        return self.override is not None


# --- reading the store -----------------------------------------------------------------


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _by_ids(db: sqlite_utils.Database, sql: str, ids: Iterable[Any], *params: Any
            ) -> list[dict[str, Any]]:
    """Run `sql` (with `{marks}` for an IN list) over ids in chunks (SQLite's variable cap)."""
    out: list[dict[str, Any]] = []
    ids = list(dict.fromkeys(ids))
    for chunk in param_batches(ids):
        marks = ",".join("?" for _ in chunk)
        out.extend(db.query(sql.format(marks=marks), [*params, *chunk]))
    return out


def unit_display_name(names_json: str | None) -> str | None:
    """The name an inspector knows a unit by: commercial, then branch, then legal name."""
    names = _json(names_json, [])
    if not isinstance(names, list):
        return None
    order = {"commercial": 0, "branch": 1, "legal": 2, "abbreviation": 3}
    ranked = sorted((n for n in names if isinstance(n, dict) and n.get("name")),
                    key=lambda n: (order.get(n.get("type", ""), 9),
                                   n.get("level") != "establishment"))
    return ranked[0]["name"] if ranked else None


def _unit(row: dict[str, Any]) -> Unit:
    return Unit(unit_id=str(row["unit_id"]), name=unit_display_name(row.get("names")),
                natural_person=bool(row.get("natural_person")),
                declared_workers=row.get("declared_workers"),
                declared_turnover=row.get("declared_turnover"),
                enterprise_number=row.get("enterprise_number"),
                establishment_number=row.get("establishment_number"),
                declared_level=row.get("declared_level"))


def _candidate_dicts(raw: str | None) -> list[dict[str, Any]]:
    data = _json(raw, [])
    if isinstance(data, dict):
        data = data.get("candidates", [])
    return [c for c in data if isinstance(c, dict)] if isinstance(data, list) else []


def _candidate_unit_id(c: dict[str, Any]) -> str | None:
    for key in ("unit_id", "unit", "id"):
        if c.get(key):
            return str(c[key])
    return None


def _candidate_grades(c: dict[str, Any]) -> str | None:
    grades = c.get("grades", c.get("grade_string"))
    if isinstance(grades, dict):
        return ", ".join(f"{k} {v}" for k, v in grades.items())
    return str(grades) if grades else None


def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _signals(listings: list[dict[str, Any]], reference_day: str | None
             ) -> tuple[Signals, str | None]:
    reviews: dict[str, int] = {}
    ratings: list[float] = []
    rooms: list[int] = []
    prices: list[str] = []
    seen: list[str] = []
    for row in listings:
        source = str(row.get("source") or "?")
        if row.get("review_count") is not None:
            reviews[source] = max(reviews.get(source, 0), int(row["review_count"]))
        if row.get("rating") is not None:
            ratings.append(float(row["rating"]))
        if row.get("rooms") is not None:
            rooms.append(int(row["rooms"]))
        if row.get("price_range"):
            prices.append(str(row["price_range"]))
        if row.get("last_seen"):
            seen.append(str(row["last_seen"]))
    last_seen = max(seen) if seen else None
    signals = Signals(
        reviews_by_source=dict(sorted(reviews.items())),
        rating=round(sum(ratings) / len(ratings), 2) if ratings else None,
        price_range=prices[0] if prices else None,
        rooms=max(rooms) if rooms else None,
        platforms=len({row.get("source") for row in listings}) or 1,
        days_since_seen=days_between(last_seen, reference_day),
    )
    return signals, last_seen


def _coordinates(listings: list[dict[str, Any]], geocodes: dict[str, dict[str, Any]]
                 ) -> tuple[float | None, float | None, str | None, str | None]:
    """The platform's own point if a listing has one, else the best geocode of an address."""
    for row in listings:
        if row.get("lat") is not None and row.get("lon") is not None:
            return float(row["lat"]), float(row["lon"]), f"listing {row['id']}", None
    precision_order = {"house_number": 0, "street": 1, "postcode": 2, "locality": 3}
    found = [geocodes[row["id"]] for row in listings if row["id"] in geocodes]
    found = [g for g in found if g.get("lat") is not None and g.get("lon") is not None]
    if not found:
        return None, None, None, None
    best = min(found, key=lambda g: precision_order.get(g.get("precision") or "", 9))
    provider = best.get("provider") or "geocoder"
    label = f"geocoded by {provider}" + (f" ({best['precision']})" if best.get("precision")
                                         else "")
    return float(best["lat"]), float(best["lon"]), label, provider


def load_places(db: sqlite_utils.Database, outcomes: Iterable[str] | None = None
                ) -> list[PlaceRecord]:
    """Every keyed place (optionally only some outcomes), with all it takes to rank it."""
    sql = ("SELECT k.place_id, k.outcome, k.unit_id, k.snapshot_id, k.score, k.grades, "
           "k.candidates, k.reason, p.listing_ids, p.name AS place_name "
           "FROM keying_results k JOIN places p ON p.id = k.place_id")
    results = list(db.query(sql))
    wanted = set(outcomes) if outcomes is not None else None

    listing_ids: list[str] = []
    for r in results:
        r["_listing_ids"] = [str(x) for x in _json(r["listing_ids"], [])]
        listing_ids.extend(r["_listing_ids"])
    listings = {row["id"]: row for row in _by_ids(
        db, "SELECT * FROM listings WHERE id IN ({marks})", listing_ids)}
    geocodes = {row["entity_id"]: row for row in _by_ids(
        db, "SELECT * FROM entity_geocodes WHERE entity_kind = 'listing' AND entity_id IN "
            "({marks})", listing_ids)}
    reference_day = db.execute("SELECT max(last_seen) FROM listings").fetchone()[0]

    unit_keys: dict[int | None, set[str]] = {}
    for r in results:
        ids = unit_keys.setdefault(r["snapshot_id"], set())
        if r["unit_id"]:
            ids.add(str(r["unit_id"]))
        r["_candidates"] = _candidate_dicts(r["candidates"])[:CANDIDATE_SLOTS]
        for c in r["_candidates"]:
            if (uid := _candidate_unit_id(c)) is not None:
                ids.add(uid)
    units: dict[tuple[int | None, str], Unit] = {}
    for snapshot_id, ids in unit_keys.items():
        for row in _by_ids(db, "SELECT * FROM register_units WHERE snapshot_id IS ? AND "
                               "unit_id IN ({marks})", sorted(ids), snapshot_id):
            units[(snapshot_id, str(row["unit_id"]))] = _unit(row)

    verdicts = latest_verdicts(db)
    records: list[PlaceRecord] = []
    for r in results:
        members = [listings[i] for i in r["_listing_ids"] if i in listings]
        candidates = []
        for c in r["_candidates"]:
            uid = _candidate_unit_id(c)
            if uid is None:
                continue
            unit = units.get((r["snapshot_id"], uid)) or Unit(unit_id=uid, name=c.get("name"))
            candidates.append(Candidate(unit=unit, grades=_candidate_grades(c),
                                        score=_num(c.get("score", c.get("probability")))))
        matched = None
        if r["unit_id"]:
            matched = units.get((r["snapshot_id"], str(r["unit_id"]))) or Unit(
                unit_id=str(r["unit_id"]))
        signals, last_seen = _signals(members, reference_day)
        lat, lon, coord_from, provider = _coordinates(members, geocodes)
        place_verdicts = [verdicts[i] for i in r["_listing_ids"] if i in verdicts]
        latest = max(place_verdicts, key=lambda o: o.sort_key, default=None)
        settling = [o for o in place_verdicts if o.settles]
        record = PlaceRecord(
            place_id=str(r["place_id"]), outcome=str(r["outcome"]), score=_num(r["score"]),
            grades=r["grades"], reason=r["reason"], listings=members,
            candidates=candidates, matched=matched, lat=lat, lon=lon,
            coordinates_from=coord_from, geocode_provider=provider, signals=signals,
            last_seen=last_seen, previous=latest,
            override=max(settling, key=lambda o: o.sort_key, default=None))
        if record.override and record.override.verdict == "registered_under":
            _apply_registered_under(db, record, r["snapshot_id"])
        if wanted is None or record.outcome in wanted:
            records.append(record)
    return records


def _apply_registered_under(db: sqlite_utils.Database, record: PlaceRecord,
                            snapshot_id: int | None) -> None:
    """Show an inspector's "registered under N" as the match it is (in memory only)."""
    override = record.override
    assert override is not None
    number = override.register_number or ""
    row = find_unit(db, number, snapshot_id)
    record.outcome = "match"
    record.matched = _unit(row) if row else Unit(unit_id=number)
    record.reason = (f"registered under {number} according to {override.reviewer} "
                     f"({override.reviewed_at})" + ("" if row else
                                                     "; that number is not in this register "
                                                     "snapshot"))


# --- scoring ---------------------------------------------------------------------------

def doubt_band_of(db: sqlite_utils.Database, weights: PriorityWeights
                  ) -> tuple[float, float] | None:
    """The configured doubt band, else the lowest and highest doubt score of the run."""
    if len(weights.doubt_band) == 2:
        return (weights.doubt_band[0], weights.doubt_band[1])
    lo, hi = db.execute("SELECT min(score), max(score) FROM keying_results "
                        "WHERE outcome = 'doubt'").fetchone()
    return (float(lo), float(hi)) if lo is not None and hi is not None else None


def score_records(records: list[PlaceRecord], band: tuple[float, float] | None,
                  weights: PriorityWeights = DEFAULT_WEIGHTS) -> None:
    """Fill activity, gap, priority and the priority's explanation of each record."""
    for rec in records:
        rec.activity = activity_score(rec.signals, weights)
        unit = rec.declared_by
        workers = unit.declared_workers if unit else None
        turnover = unit.declared_turnover if unit else None
        rec.gap = (activity_gap(rec.activity, workers, turnover, weights)
                   if rec.outcome != "no-match" else None)
        weakness = doubt_weakness(rec.score, band) if rec.outcome == "doubt" else None
        rec.priority = priority_score(rec.outcome, rec.activity, rec.gap,
                                      weakness if weakness is not None else 0.5, weights)
        rec.priority_reason = explain_priority(rec.outcome, rec.signals, rec.activity,
                                               rec.gap, workers, turnover, weakness)


# --- flat rows -------------------------------------------------------------------------

def _unique(values: Iterable[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        if v is not None and str(v).strip():
            seen.setdefault(str(v).strip(), None)
    return list(seen)


def _all_names(rec: PlaceRecord) -> list[str]:
    names: list[Any] = []
    for row in rec.listings:
        names.append(row.get("name"))
        alt = _json(row.get("alt_names"), [])
        if isinstance(alt, list):
            names.extend(alt)
        names.append(row.get("legal_name"))
    return _unique(names)


def _address(rec: PlaceRecord) -> dict[str, Any]:
    """The most complete address among the place's listings."""
    keys = ("street", "house_number", "box", "postcode", "locality")
    best = max(rec.listings, key=lambda row: sum(bool(row.get(k)) for k in keys), default={})
    return {k: best.get(k) for k in keys}


def _verdict_text(o: Override | None) -> str | None:
    if o is None:
        return None
    number = f" {o.register_number}" if o.register_number else ""
    return f"{o.verdict}{number} by {o.reviewer} on {o.reviewed_at}"


class Redactor:
    """Pseudonyms for one natural-person row, and the same substitutions in free text."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.replacements: dict[str, str] = {}

    def __call__(self, kind: str, value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        alias = pseudonym(self.key, kind, str(value))
        if alias is not None and len(str(value).strip()) >= 3:
            self.replacements[str(value).strip()] = alias
        return alias

    def text(self, value: str | None) -> str | None:
        """Replace every real value seen so far inside free text (longest first)."""
        if not value:
            return value
        out = value
        for real in sorted(self.replacements, key=len, reverse=True):
            lowered = out.casefold()
            needle = real.casefold()
            start = lowered.find(needle)
            while start != -1:
                out = out[:start] + self.replacements[real] + out[start + len(real):]
                lowered = out.casefold()
                start = lowered.find(needle, start + len(self.replacements[real]))
        return out


def to_row(rec: PlaceRecord, *, exported_at: str, pseudonymise_key: bytes | None = None
           ) -> dict[str, Any]:
    """The flat export row of a ranked record; pseudonymised when a key is given and the
    record concerns a natural person."""
    hide = pseudonymise_key is not None and rec.natural_person
    red = Redactor(pseudonymise_key) if hide and pseudonymise_key else None

    def unit_id(unit: Unit | None) -> str | None:
        if unit is None:
            return None
        if red and unit.natural_person:
            for number in (unit.enterprise_number, unit.establishment_number):
                red("unit", number)
            return red("unit", unit.unit_id)
        return unit.unit_id

    def unit_name(unit: Unit) -> str | None:
        return red("person", unit.name) if red and unit.natural_person else unit.name

    names = _all_names(rec)
    phones = _unique(row.get("phone") or row.get("phone_raw") for row in rec.listings)
    websites = _unique(row.get("website") for row in rec.listings)
    address = _address(rec)
    lat, lon = rec.lat, rec.lon
    coordinates_from = rec.coordinates_from
    listing_ids = rec.listing_ids
    if red:
        for row in rec.listings:  # raw phones too, so free text loses them as well
            red("phone", row.get("phone_raw"))
        names = [red("person", n) or "" for n in names]
        phones = [red("phone", p) or "" for p in phones]
        websites = [red("web", w) or "" for w in websites]
        address = {**address, "house_number": None, "box": None}
        lat, lon = street_level(lat, lon)
        listing_ids = [red("listing", i) or "" for i in listing_ids]
        if coordinates_from and coordinates_from.startswith("listing "):
            coordinates_from = "listing (rounded to street level)"
        elif coordinates_from:
            coordinates_from += ", rounded to street level"
    primary = names[0] if names else None
    if rec.listings and rec.listings[0].get("name"):
        primary = red("person", rec.listings[0]["name"]) if red else rec.listings[0]["name"]
    declared = rec.declared_by
    row: dict[str, Any] = {
        "rank": rec.rank, "priority": rec.priority, "outcome": rec.outcome, "name": primary,
        "verdict": None, "register_number": None, "comment": None, "reviewed_on": None,
        "reason": rec.reason, "priority_reason": rec.priority_reason, "grades": rec.grades,
        "score": None if rec.score is None else round(rec.score, 4),
        "activity_score": rec.activity, "activity_gap": rec.gap,
        "sources": SEP.join(_unique(row.get("source") for row in rec.listings)),
        "names": SEP.join(names), **address,
        "phones": SEP.join(phones), "websites": SEP.join(websites),
        "lat": None if lat is None else round(lat, 6),
        "lon": None if lon is None else round(lon, 6),
        "coordinates_from": coordinates_from,
        "reviews_by_source": SEP.join(f"{s}: {n}" for s, n in
                                      rec.signals.reviews_by_source.items()),
        "reviews_total": rec.signals.reviews_total, "rating": rec.signals.rating,
        "price_range": rec.signals.price_range, "rooms": rec.signals.rooms,
        "platforms": rec.signals.platforms, "last_seen": rec.last_seen,
        "register_unit": unit_id(rec.matched) if rec.outcome == "match" else None,
        "declared_by": _declared_by(unit_id(declared), declared),
        "declared_workers": declared.declared_workers if declared else None,
        "declared_turnover": declared.declared_turnover if declared else None,
    }
    for i in range(1, CANDIDATE_SLOTS + 1):
        cand = rec.candidates[i - 1] if i <= len(rec.candidates) else None
        row[f"candidate_{i}"] = unit_id(cand.unit) if cand else None
        row[f"candidate_{i}_name"] = unit_name(cand.unit) if cand else None
        row[f"candidate_{i}_grades"] = cand.grades if cand else None
        row[f"candidate_{i}_score"] = (None if cand is None or cand.score is None
                                       else round(cand.score, 4))
    row.update({
        "natural_person": "yes" if rec.natural_person else "no",
        "pseudonymised": "yes" if hide else "no",
        "previous_verdict": _verdict_text(rec.previous),
        "place_id": red("place", rec.place_id) if red and _id_reveals(rec) else rec.place_id,
        "listing_ids": SEP.join(listing_ids), "exported_at": exported_at,
    })
    if red:
        # Free text may quote a name, phone or number (keying reasons often do).
        for col in ("reason", "priority_reason", "previous_verdict", "grades",
                    *(f"candidate_{i}_grades" for i in range(1, CANDIDATE_SLOTS + 1))):
            row[col] = red.text(row[col])
    assert tuple(row) == COLUMN_NAMES, "row columns out of step with COLUMNS"
    return row


def _declared_by(shown_id: str | None, unit: Unit | None) -> str | None:
    if shown_id is None or unit is None:
        return shown_id
    if unit.declared_level == "enterprise" and (
            unit.declared_workers is not None or unit.declared_turnover is not None):
        return f"{shown_id} (figures of the whole enterprise)"
    return shown_id


def _id_reveals(rec: PlaceRecord) -> bool:
    """A place id built from a listing id carries the platform's slug, often the name."""
    return any(str(row.get("source_id") or "") and str(row.get("source_id")) in rec.place_id
               for row in rec.listings)
