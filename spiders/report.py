"""The crawl report: what one crawl of one source fetched, kept, dropped and covered.

`build_report` turns the crawl's Scrapy stats into a `CrawlReport`; `flags_against`
compares it with the previous complete crawl of the same source and region, so a site
that changed its layout (kept listings or a core field's coverage collapsing) is flagged
rather than silently accepted. `store_report` writes it to `crawl_reports`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from horeca.region import Region
from horeca.spiders.model import CORE_FIELDS, COVERAGE_FIELDS
from horeca.store import transaction, upsert
from horeca.store.runs import now_iso

KEPT_COLLAPSE_RATIO = 0.5      # kept < 50% of the previous crawl's kept listings
COVERAGE_COLLAPSE_POINTS = 0.30  # a core field's coverage falls by more than 30 points

# Scrapy's own stats that mean "something went wrong", by prefix -> error kind.
_ERROR_PREFIXES: tuple[tuple[str, str], ...] = (
    ("downloader/exception_type_count/", ""),
    ("httperror/response_ignored_status_count/", "http_"),
    ("spider_exceptions/", "spider_"),
    ("horeca/errors/", ""),
)
# Requests the legal gate (or Scrapy's own filters) stopped: reported apart from errors.
_FILTER_KEYS: dict[str, str] = {
    "robotstxt/forbidden": "robots_forbidden",
    "offsite/filtered": "offsite",
}
_GATE_PREFIX = "legal_gate/"
_GATE_INFO = ("robots_fetched", "natural_person")  # counters, not requests stopped
# Gate refusals that mean the site could not be read at all: errors as well.
_GATE_ERRORS = ("robots_unavailable", "tdmrep_unreadable")
# Exceptions that are the gate's way of dropping a request, not failures.
_NOT_ERRORS = ("IgnoreRequest",)


@dataclass
class CrawlReport:
    source: str
    status: str                     # ok | interrupted | failed | refused | skipped
    reason: str | None = None       # why refused / failed / interrupted
    region: str | None = None
    region_key: str | None = None   # name + postcodes + bbox: crawls compare like with like
    pages: int = 0
    items: int = 0
    kept: int = 0
    new: int = 0
    updated: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    filtered: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    segments: int = 1               # > 1 when the crawl was resumed
    duration_s: float = 0.0
    flags: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CrawlReport:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def status_of(finish_reason: str | None) -> str:
    if finish_reason == "finished":
        return "ok"
    if finish_reason == "shutdown" or (finish_reason or "").startswith("closespider_"):
        return "interrupted"
    return "failed"


def _by_prefix(stats: dict[str, Any], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: int(v) for k, v in stats.items()
            if k.startswith(prefix) and isinstance(v, (int, float))}


def errors_of(stats: dict[str, Any]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for prefix, label in _ERROR_PREFIXES:
        for key, count in _by_prefix(stats, prefix).items():
            if "/" in key:  # e.g. horeca/errors/x/y is a detail of x
                continue
            name = key.rsplit(".", 1)[-1]
            if name in _NOT_ERRORS:
                continue
            kind = label + name
            errors[kind] = errors.get(kind, 0) + count
    gave_up = int(stats.get("horeca/retry/gave_up", 0))
    if gave_up:
        errors["gave_up_after_retries"] = gave_up
    too_long = int(stats.get("horeca/retry/retry_after_too_long", 0))
    if too_long:
        errors["retry_after_too_long"] = too_long
    for key in _GATE_ERRORS:
        if stats.get(_GATE_PREFIX + key):
            errors[key] = int(stats[_GATE_PREFIX + key])
    return dict(sorted(errors.items()))


def build_report(source: str, stats: dict[str, Any], *, finish_reason: str | None,
                 region: str | None = None, region_key: str | None = None,
                 duration_s: float = 0.0,
                 segments: int = 1) -> CrawlReport:
    """A report from flat crawl stats (Scrapy's plus the horeca/* counters)."""
    items = int(stats.get("horeca/items/yielded", 0))
    kept = int(stats.get("horeca/kept", 0))
    dropped = _by_prefix(stats, "horeca/dropped/")
    other = items - kept - sum(dropped.values())
    if other > 0:  # dropped by the gate's minimiser or another pipeline without a reason
        dropped["other"] = other
    coverage_counts = _by_prefix(stats, "horeca/coverage/")
    coverage = {f: round(coverage_counts.get(f, 0) / kept, 4) if kept else 0.0
                for f in COVERAGE_FIELDS}
    filtered = {label: int(stats[key]) for key, label in _FILTER_KEYS.items() if stats.get(key)}
    filtered.update({k: v for k, v in _by_prefix(stats, _GATE_PREFIX).items()
                     if "/" not in k and k not in _GATE_INFO})
    status = status_of(finish_reason)
    reason = None if status == "ok" else finish_reason
    return CrawlReport(
        source=source, status=status, reason=reason, region=region, region_key=region_key,
        pages=int(stats.get("downloader/response_count", 0)), items=items, kept=kept,
        new=int(stats.get("horeca/written/new", 0)),
        updated=int(stats.get("horeca/written/updated", 0)),
        dropped=dict(sorted(dropped.items())), coverage=coverage, errors=errors_of(stats),
        filtered=filtered, retries=int(stats.get("horeca/retry/count", 0)),
        segments=segments, duration_s=round(duration_s, 2))


def flags_against(report: CrawlReport, previous: CrawlReport | None) -> list[str]:
    """Why this crawl looks broken compared with the previous complete one (or on its own)."""
    if report.status != "ok":
        return []
    flags: list[str] = []
    if report.kept == 0:
        flags.append("no listing kept")
    if previous is None or previous.kept == 0:
        return flags
    if report.kept < KEPT_COLLAPSE_RATIO * previous.kept:
        flags.append(f"kept listings fell from {previous.kept} to {report.kept} "
                     f"(under {KEPT_COLLAPSE_RATIO:.0%} of the previous crawl)")
    for name in CORE_FIELDS:
        before = previous.coverage.get(name, 0.0)
        now = report.coverage.get(name, 0.0)
        if before - now > COVERAGE_COLLAPSE_POINTS:
            flags.append(f"{name} coverage fell from {before:.0%} to {now:.0%}")
    return flags


def region_key(region: Region) -> str:
    """A region's identity for comparing crawls: its name, postcodes and bounding box."""
    postcodes = ",".join(f"{lo}-{hi}" for lo, hi in region.postcode_ranges)
    bbox = ",".join(f"{v:g}" for v in region.bbox) if region.bbox else ""
    return f"{region.name}|{postcodes}|{bbox}"


def previous_report(db: sqlite_utils.Database, source: str, region: str | None, *,
                    before_run_id: int | None = None) -> CrawlReport | None:
    """The latest complete crawl of this source over the same region (`region_key`)
    before the given run."""
    rows = db.conn.execute(
        "SELECT stats FROM crawl_reports WHERE source = ? AND (? IS NULL OR run_id < ?) "
        "ORDER BY run_id DESC", (source, before_run_id, before_run_id))
    for (stats,) in rows:
        try:
            report = CrawlReport.from_json(json.loads(stats))
        except (TypeError, ValueError):
            continue
        if report.status == "ok" and report.region_key == region:
            return report
    return None


def store_report(db: sqlite_utils.Database, run_id: int, report: CrawlReport) -> None:
    """Upsert the report on (run_id, source)."""
    with transaction(db):
        upsert(db, "crawl_reports", [{
            "run_id": run_id, "source": report.source, "created_at": now_iso(),
            "stats": json.dumps(report.to_json(), sort_keys=True),
            "flagged": "; ".join(report.flags) or None,
        }], key=("run_id", "source"))


def merge_stats(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Counters of two segments of one resumed crawl added together (numbers only)."""
    out = {k: v for k, v in a.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key, value in b.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = out.get(key, 0) + value
    return out
