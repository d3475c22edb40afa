"""Measuring keying against ground truth (a truth file) or reviewed verdicts.

A place is judged through its member listings: the truth rows of its listings, joined on
(source, source_id), say which register unit the business belongs to (empty = absent from
the register). When a place's listings disagree (a consolidation error) the most common
answer counts and the place is reported as impure.

Metrics (all shares of places, never of listings):
  match precision   correct matches / matches
  match recall      correct matches / places whose business is in the register
  doubt share       doubts / places
  no-match precision  places truly absent / no-matches
  blocking recall   registered places whose true unit was among their candidates / registered
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from horeca.errors import UserError

REQUIRED_COLUMNS = ("source", "source_id")
UNIT_COLUMNS = ("unit_id", "establishment_number", "enterprise_number")
COLUMNS = ("match_ok", "match_wrong", "doubt", "no_match", "absent_match", "absent_doubt",
           "absent_no_match")


def digits(number: str | None) -> str:
    return "".join(ch for ch in (number or "") if ch.isdigit())


@dataclass(frozen=True)
class TruthRow:
    unit: str             # digits of the true unit, "" when absent from the register
    business: str
    difficulties: tuple[str, ...]
    in_region: bool


def load_truth(path: str | Path) -> dict[tuple[str, str], TruthRow]:
    """(source, source_id) -> truth; a clear error for a file that is not a truth file."""
    p = Path(path)
    if not p.is_file():
        raise UserError("truth file not found", path=p, fix="check the --truth path")
    try:
        with open(p, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing or not any(c in header for c in UNIT_COLUMNS):
                need = ", ".join([*REQUIRED_COLUMNS, "unit_id (or establishment_number / "
                                  "enterprise_number)"])
                raise UserError(f"not a truth file: missing column(s) "
                                f"{', '.join(missing) or 'unit_id'}", path=p, line=1,
                                fix=f"give a CSV with columns {need}")
            out: dict[tuple[str, str], TruthRow] = {}
            for row in reader:
                unit = digits(row.get("unit_id")) or digits(row.get("establishment_number")) \
                    or digits(row.get("enterprise_number"))
                diffs = tuple(d for d in (row.get("difficulties") or "").split(";") if d)
                out[(row["source"], row["source_id"])] = TruthRow(
                    unit, row.get("business_id") or "", diffs,
                    (row.get("in_region") or "1").strip() not in ("0", "false", "no"))
            return out
    except UnicodeDecodeError:
        raise UserError("not a UTF-8 text file", path=p, fix="save it as UTF-8") from None
    except csv.Error as err:
        raise UserError(f"unreadable CSV: {err}", path=p, fix="check quoting") from None


@dataclass
class PlaceOutcome:
    place_id: str
    listing_ids: list[str]
    outcome: str
    unit_id: str | None
    candidates: list[str]


def _split_listing_id(listing_id: str) -> tuple[str, str]:
    source, _, source_id = listing_id.partition(":")
    return source, source_id


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def evaluate(outcomes: Iterable[PlaceOutcome], truth: Mapping[tuple[str, str], TruthRow]
             ) -> dict[str, Any]:
    """Every metric of the module docstring, plus a confusion table by difficulty."""
    counts: Counter[str] = Counter()
    by_difficulty: dict[str, Counter[str]] = defaultdict(Counter)
    impure = unjudged = 0
    business_places: dict[str, set[str]] = defaultdict(set)
    registered = blocked_ok = 0
    examples: dict[str, list[str]] = defaultdict(list)
    total = 0
    for o in outcomes:
        rows = [truth.get(_split_listing_id(lid)) for lid in o.listing_ids]
        known = [r for r in rows if r is not None]
        if not known:
            unjudged += 1
            continue
        total += 1
        units = Counter(r.unit for r in known)
        true_unit = units.most_common(1)[0][0]
        if len({r.business for r in known}) > 1:
            impure += 1
        for r in known:
            business_places[r.business].add(o.place_id)
        diffs = sorted({d for r in known for d in r.difficulties})
        got = digits(o.unit_id)
        if true_unit:
            registered += 1
            if true_unit in {digits(c) for c in o.candidates}:
                blocked_ok += 1
            elif len(examples["blocking_miss"]) < 20:
                examples["blocking_miss"].append(o.place_id)
            if o.outcome == "match":
                col = "match_ok" if got == true_unit else "match_wrong"
            else:
                col = "doubt" if o.outcome == "doubt" else "no_match"
        else:
            col = {"match": "absent_match", "doubt": "absent_doubt"}.get(o.outcome,
                                                                         "absent_no_match")
        counts[col] += 1
        if col in ("match_wrong", "absent_match", "no_match") and len(examples[col]) < 20:
            examples[col].append(o.place_id)
        for d in diffs or ["clean"]:
            by_difficulty[d][col] += 1
    matches = counts["match_ok"] + counts["match_wrong"] + counts["absent_match"]
    doubts = counts["doubt"] + counts["absent_doubt"]
    no_matches = counts["no_match"] + counts["absent_no_match"]
    split = sum(1 for places in business_places.values() if len(places) > 1)
    return {
        "places": total,
        "places_without_truth": unjudged,
        "registered_places": registered,
        "absent_places": total - registered,
        "outcomes": {"match": matches, "doubt": doubts, "no-match": no_matches},
        "match_precision": _ratio(counts["match_ok"], matches),
        "match_recall": _ratio(counts["match_ok"], registered),
        "doubt_share": _ratio(doubts, total),
        "no_match_precision": _ratio(counts["absent_no_match"], no_matches),
        "blocking_recall": _ratio(blocked_ok, registered),
        "consolidation": {"impure_places": impure, "businesses_split": split,
                          "businesses": len(business_places)},
        "confusion": {k: dict(counts) for k in ("all",)}["all"],
        "by_difficulty": {d: {c: by_difficulty[d].get(c, 0) for c in COLUMNS}
                          for d in sorted(by_difficulty)},
        "examples": dict(examples),
    }


TARGETS = {"match_precision": 0.99, "match_recall": 0.90, "doubt_share": 0.08,
           "no_match_precision": 0.90, "blocking_recall": 0.995}


def target_status(report: Mapping[str, Any]) -> dict[str, bool | None]:
    """Whether each target of the project brief is met (None when not measurable)."""
    out: dict[str, bool | None] = {}
    for key, target in TARGETS.items():
        value = report.get(key)
        if value is None:
            out[key] = None
        elif key == "doubt_share":
            out[key] = value <= target
        else:
            out[key] = value >= target
    return out


def outcomes_from_run(run: Any, places: Sequence[Any]) -> list[PlaceOutcome]:
    by_id = {p.id: p for p in places}
    return [PlaceOutcome(d.place_id, list(by_id[d.place_id].listing_ids), d.outcome,
                         d.unit_id, run.candidates_of.get(d.place_id, []))
            for d in run.decisions]


# ----------------------------------------------------------------------------- the store


def outcomes_from_store(db: Any) -> list[PlaceOutcome]:
    """Every place's outcome as the last `horeca key` stored it."""
    import json

    rows = db.query("SELECT p.id, p.listing_ids, k.outcome, k.unit_id, k.candidate_units "
                    "FROM places p JOIN keying_results k ON k.place_id = p.id ORDER BY p.id")
    return [PlaceOutcome(r["id"], json.loads(r["listing_ids"]), r["outcome"], r["unit_id"],
                         json.loads(r["candidate_units"] or "[]")) for r in rows]


def _require_results(db: Any) -> None:
    if db.execute("SELECT count(*) FROM keying_results").fetchone()[0] == 0:
        raise UserError("no keying results in this database yet", path="--db",
                        fix="run `horeca key --region R` first, or pass the right --db")


def evaluate_store(db: Any, truth_path: str | Path) -> dict[str, Any]:
    """`evaluate` of the stored results against a truth file, with target status."""
    truth = load_truth(truth_path)
    _require_results(db)
    report = evaluate(outcomes_from_store(db), truth)
    report["labels"] = f"truth file {truth_path}"
    report["targets"] = target_status(report)
    return report


def truth_from_verdicts(db: Any) -> dict[tuple[str, str], TruthRow]:
    """Reviewed verdicts as truth rows (per listing), where a verdict settles the answer:
    registered under N -> N; confirmed on a match -> that unit; confirmed on a doubt or
    no-match -> absent from the register. Other verdicts teach nothing about the unit."""
    from horeca.exports.verdicts import verdict_overrides

    out: dict[tuple[str, str], TruthRow] = {}
    for listing_id, o in verdict_overrides(db).items():
        if o.verdict == "registered_under" and o.register_number:
            unit = digits(o.register_number)
        elif o.verdict == "confirmed" and o.outcome == "match" and o.unit_id:
            unit = digits(o.unit_id)
        elif o.verdict == "confirmed" and o.outcome in ("doubt", "no-match"):
            unit = ""
        else:
            continue
        out[_split_listing_id(listing_id)] = TruthRow(unit, o.place_id, ("reviewed",), True)
    return out


def evaluate_verdicts(db: Any) -> dict[str, Any]:
    """`evaluate` of the stored results against reviewed verdicts (only reviewed places
    count; a verdict given on the very row it judges flatters that row: read it as a
    check, not as an unbiased estimate)."""
    _require_results(db)
    truth = truth_from_verdicts(db)
    if not truth:
        raise UserError("no verdict that settles a place's register unit yet",
                        path="--verdicts",
                        fix="import reviewed exports with `horeca review import FILE` first")
    report = evaluate(outcomes_from_store(db), truth)
    report["labels"] = "reviewed verdicts"
    report["targets"] = target_status(report)
    return report


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def render_report(report: Mapping[str, Any]) -> str:
    """The evaluation as plain text for the terminal."""
    targets = report.get("targets") or target_status(report)
    goal = {"match_precision": ">= 99%", "match_recall": ">= 90%", "doubt_share": "<= 8%",
            "no_match_precision": ">= 90%", "blocking_recall": ">= 99.5%"}
    label = {"match_precision": "match precision", "match_recall": "match recall (registered)",
             "doubt_share": "doubt share", "no_match_precision": "no-match precision",
             "blocking_recall": "blocking recall"}
    o = report["outcomes"]
    lines = [f"Labels: {report.get('labels', 'truth')}. Places judged: {report['places']} "
             f"({report['registered_places']} registered, {report['absent_places']} absent); "
             f"outcomes: {o['match']} match, {o['doubt']} doubt, {o['no-match']} no-match."]
    for key in TARGETS:
        ok = targets.get(key)
        mark = "n/a" if ok is None else ("met" if ok else "MISSED")
        lines.append(f"  {label[key]:<28} {_pct(report.get(key)):>7}   target {goal[key]:<9} "
                     f"{mark}")
    c = report["consolidation"]
    lines.append(f"  consolidation: {c['impure_places']} places mixing businesses, "
                 f"{c['businesses_split']} businesses split over several places")
    lines.append("")
    lines.append("By difficulty (places). Registered: ok = matched to its unit, wrong = "
                 "to another;")
    lines.append("abs:m / abs:d / abs:n = places absent from the register that were matched, "
                 "doubted, no-matched.")
    header = ("difficulty", "ok", "wrong", "doubt", "no-m", "abs:m", "abs:d", "abs:n")
    widths = (15, 5, 6, 6, 5, 6, 6, 6)
    lines.append(" ".join(h.rjust(w) if i else h.ljust(w)
                          for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    for diff, row in report["by_difficulty"].items():
        values = [str(row[c]) for c in COLUMNS]
        cells = [diff.ljust(widths[0])] + [v.rjust(w) for v, w in zip(values, widths[1:],
                                                                      strict=True)]
        lines.append(" ".join(cells))
    return "\n".join(lines)
