"""Scoring both sides of the comparison the same way: per listing, against the truth file.

Both tools answer, for each listing, "this register unit" or nothing. horeca decides per
place (listings of one business on several platforms, consolidated); each listing of a
place takes the place's answer: the unit when the place is a match, nothing when it is a
doubt or a no-match (a doubt is left to a person, so it is not a match). Splink decides
per listing directly.

  precision  listings matched to their true unit / listings matched
  recall     listings matched to their true unit / listings whose business is registered
  F1         harmonic mean of the two

Units are compared by their digits ("2.345.678.901" = "2345678901"), as `horeca evaluate`
does. Listings without a truth row are not judged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from horeca.keying.evaluate import TruthRow, digits


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def f1(precision: float | None, recall: float | None) -> float | None:
    if not precision or not recall:
        return 0.0 if precision is not None and recall is not None else None
    return round(2 * precision * recall / (precision + recall), 4)


def split_listing_id(listing_id: str) -> tuple[str, str]:
    source, _, source_id = listing_id.partition(":")
    return source, source_id


def listing_scores(answers: Mapping[str, str | None],
                   truth: Mapping[tuple[str, str], TruthRow]) -> dict[str, Any]:
    """Precision, recall and F1 of matches over the listings in `answers`
    (listing id -> unit id, or None for no answer)."""
    judged = registered = matched = correct = 0
    wrong_unit = absent_matched = 0
    for listing_id, unit in answers.items():
        row = truth.get(split_listing_id(listing_id))
        if row is None:
            continue
        judged += 1
        registered += bool(row.unit)
        if unit is None:
            continue
        matched += 1
        if row.unit and digits(unit) == row.unit:
            correct += 1
        elif row.unit:
            wrong_unit += 1
        else:
            absent_matched += 1
    precision, recall = _ratio(correct, matched), _ratio(correct, registered)
    return {"listings": judged, "registered": registered, "matched": matched,
            "correct": correct, "wrong_unit": wrong_unit,
            "matched_but_absent": absent_matched, "precision": precision,
            "recall": recall, "f1": f1(precision, recall)}


def horeca_answers(db_path: str | Path) -> tuple[dict[str, str | None], dict[str, Any]]:
    """Every listing's answer from horeca's keying results, and the outcome shares."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    answers: dict[str, str | None] = {lid: None for (lid,) in
                                      conn.execute("SELECT id FROM listings")}
    places = {"match": 0, "doubt": 0, "no-match": 0}
    doubt_listings = 0
    for listing_ids, outcome, unit in conn.execute(
            "SELECT p.listing_ids, k.outcome, k.unit_id FROM places p "
            "JOIN keying_results k ON k.place_id = p.id"):
        members = json.loads(listing_ids)
        places[outcome] = places.get(outcome, 0) + 1
        if outcome == "doubt":
            doubt_listings += len(members)
        for lid in members:
            answers[lid] = unit if outcome == "match" else None
    conn.close()
    total = sum(places.values())
    return answers, {"places": places, "doubt_share_places": _ratio(places["doubt"], total),
                     "doubt_share_listings": _ratio(doubt_listings, len(answers))}


def splink_answers(listing_ids: list[str], predictions: Mapping[str, list]
                   ) -> dict[str, str | None]:
    return {lid: (predictions[lid][0] if lid in predictions else None) for lid in listing_ids}
