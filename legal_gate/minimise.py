"""Data minimisation per item: only what the source's review allows reaches the store.

`minimise(item, source)` is pure and shared by the crawl (through `MinimisePipeline`, the
first item pipeline) and `horeca listings import`. Rules, in order:

1. Keep a key only if the source's `allowed_fields` covers it (a group such as "address"
   covers all its columns, see `config.FIELD_GROUPS`), or it identifies the listing
   (`source`, `source_id`, `url`, `id`, `region`).
2. Whatever the config says, review texts, reviewer / author / user names, photos and
   images, and e-mail addresses never pass: such keys are not listing fields, so rule 1
   drops them, and inside kept values nested keys of that kind are removed and e-mail
   addresses are cut out of text.
3. `natural_person` is set to 1 when the name or legal name reads as a person's name (a
   sole trader trading under their own name), so exports can pseudonymise the listing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from horeca.legal_gate.config import FIELD_GROUPS, SourceConfig

IDENTITY_FIELDS: tuple[str, ...] = ("id", "source", "source_id", "url", "region")
# Key words that mark personal content: "review_text", "reviewer", "author", "photos",
# "image_url", "email", "contactEmail", ... Aggregate counts are business data.
_PERSONAL_WORDS = frozenset({
    "review", "reviews", "reviewer", "reviewers", "comment", "comments", "author", "authors",
    "user", "users", "username", "photo", "photos", "image", "images", "picture", "pictures",
    "avatar", "email", "emails", "mail", "thumbnail", "gallery",
})
_AGGREGATES = frozenset({"review_count", "reviewcount", "rating", "rating_count"})
_EMAIL = re.compile(r"(?:mailto:)?[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def kept_fields(source: SourceConfig) -> frozenset[str]:
    """Listing columns this source may keep (identity fields included)."""
    keep: set[str] = set(IDENTITY_FIELDS)
    for name in source.allowed_fields:
        keep.update(FIELD_GROUPS.get(name, (name,)))
    return frozenset(keep)


@lru_cache(maxsize=4096)  # a crawl meets the same few dozen keys on every item
def is_personal_key(key: str) -> bool:
    """A key that names personal content (reviews, authors, photos, e-mail) whatever its case."""
    lowered = key.lower()
    if lowered in _AGGREGATES:
        return False
    words = {w.lower() for w in _WORDS.findall(key)}
    return bool(words & _PERSONAL_WORDS) or "email" in lowered or "e-mail" in lowered


def strip_emails(text: str) -> str:
    """Cut e-mail addresses out of free text, tidying the separators left behind."""
    if "@" not in text:
        return text
    cleaned = _EMAIL.sub("", text)
    cleaned = re.sub(r"\s*([,;|/])\s*(?=[,;|/]|$)", "", cleaned)
    return re.sub(r"\s{2,}", " ", cleaned).strip(" ,;|/")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return strip_emails(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if not is_personal_key(str(k))}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _person_name(name: Any) -> bool:
    if not isinstance(name, str) or not name.strip():
        return False
    from horeca.normalize.names import looks_like_person_name  # kept lazy: heavy tables

    return looks_like_person_name(name)


def minimise_report(item: dict[str, Any], source: SourceConfig) -> tuple[dict[str, Any],
                                                                         list[str]]:
    """`minimise`, plus the keys it dropped (for the crawl report)."""
    keep = kept_fields(source)
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in item.items():
        if key in keep and not is_personal_key(key):
            out[key] = _scrub(value)
        elif key != "natural_person":
            dropped.append(key)
    flagged = bool(item.get("natural_person")) or any(
        _person_name(item.get(k)) for k in ("name", "legal_name"))
    out["natural_person"] = 1 if flagged else 0
    return out, dropped


def minimise(item: dict[str, Any], source: SourceConfig) -> dict[str, Any]:
    """Only the fields `source` may keep, scrubbed of personal content, person-flagged."""
    return minimise_report(item, source)[0]


def dropped_reason(key: str) -> str:
    return "personal" if is_personal_key(key) else "not_allowed"


class MinimisePipeline:
    """First item pipeline of every crawl: applies `minimise` with the crawl's source."""

    def __init__(self, source: SourceConfig, stats: Any = None) -> None:
        self.source = source
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> MinimisePipeline:
        from horeca.legal_gate.middleware import check_gate_components, source_from_settings

        check_gate_components(crawler.settings)
        return cls(source_from_settings(crawler.settings), crawler.stats)

    def process_item(self, item: Any, spider: Any = None) -> dict[str, Any]:
        from itemadapter import ItemAdapter

        data = ItemAdapter(item).asdict() if not isinstance(item, dict) else item
        out, dropped = minimise_report(data, self.source)
        self._count(dropped, bool(out["natural_person"]))
        return out

    def _count(self, dropped: Iterable[str], natural_person: bool) -> None:
        if self.stats is None:
            return
        for key in dropped:
            self.stats.inc_value(f"legal_gate/minimised/{dropped_reason(key)}")
        if natural_person:
            self.stats.inc_value("legal_gate/natural_person")
