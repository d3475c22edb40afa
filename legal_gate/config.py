"""The sources config (`sources.toml`): load, validate, and look sources up.

One `[sources.<name>]` table per source, after an optional `[defaults]` table whose keys
fill in what a source leaves out (shape in docs/architecture.md). Everything is checked on
load; the first problem is raised as a `UserError` naming the file, the line and the key,
so no crawl can start from a config a reviewer did not mean.

Line numbers: TOML parsers do not report where a value sits, so we find the
`[sources.<name>]` header and the `key =` line in the source text; the decoder's own
"at line N" is used for malformed TOML.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from horeca.errors import UserError
from horeca.tomlfile import parse_toml

DEFAULT_SOURCES_FILE = "sources.toml"
ENV_SOURCES = "HORECA_SOURCES"
DEFAULT_USER_AGENT = "horeca/0.1 (+mailto:data-protection@inspection.example)"
DEFAULT_MAX_RPS = 1.0
DEFAULT_RETENTION_DAYS = 365

STATUSES = ("approved", "pending", "rejected", "suspended")

# Spider kinds a source may name. spiders/ may add kinds with `register_spider_kind`.
SPIDER_KINDS: set[str] = {"structured", "selector", "overpass"}

# What `allowed_fields` may list: a group name stands for all its listing columns.
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "name": ("name", "alt_names"),
    "address": ("address_raw", "street", "house_number", "box", "postcode", "locality",
                "country"),
    "phone": ("phone_raw", "phone"),
    "geo": ("lat", "lon"),
}
SINGLE_FIELDS: tuple[str, ...] = (
    "website", "category", "review_count", "rating", "price_range", "rooms",
    "opening_hours", "legal_name", "vat",
)
# Fields no config can allow: data minimisation (GDPR Art. 5(1)(c)) for this purpose.
FORBIDDEN_FIELDS: tuple[str, ...] = (
    "reviews", "review_text", "reviewer", "author", "photos", "images", "email",
)

_SOURCE_KEYS: dict[str, tuple[type, ...]] = {
    "spider": (str,),
    "status": (str,),
    "allowed_domains": (list,),
    "start_urls": (list,),
    "reviewer": (str,),
    "reviewed_on": (date, str),
    "legal_basis": (str,),
    "purpose": (str,),
    "terms_url": (str,),
    "terms_sha256": (str,),
    "allowed_fields": (list,),
    "retention_days": (int,),
    "max_requests_per_second": (int, float),
    "user_agent": (str,),
    "suspended_reason": (str,),
    "suspended_on": (date, str),
    "notes": (str,),
    "spider_options": (dict,),
}
_DEFAULT_KEYS = ("user_agent", "max_requests_per_second", "retention_days", "allowed_fields",
                 "purpose", "legal_basis")
_REQUIRED_KEYS = ("spider", "status", "allowed_domains", "start_urls")
_REQUIRED_WHEN_APPROVED = ("reviewer", "reviewed_on", "legal_basis", "purpose", "terms_url",
                           "terms_sha256", "allowed_fields")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTACT_RE = re.compile(r"(https?://\S+|mailto:\S+|[\w.+-]+@[\w-]+\.[\w.-]+)")


def register_spider_kind(kind: str) -> None:
    """Let a spider kind be named in sources.toml (called by spiders/ for extra kinds)."""
    SPIDER_KINDS.add(kind)


def allowed_field_names() -> tuple[str, ...]:
    """Every name `allowed_fields` accepts: groups, their members and single fields."""
    members = [m for group in FIELD_GROUPS.values() for m in group]
    return tuple(dict.fromkeys([*FIELD_GROUPS, *members, *SINGLE_FIELDS]))


def resolve_sources_path(path: str | Path | None = None) -> Path:
    """`--sources` wins, then $HORECA_SOURCES, then ./sources.toml."""
    return Path(path or os.environ.get(ENV_SOURCES) or DEFAULT_SOURCES_FILE)


def host_in_domains(host: str | None, domains: Iterable[str]) -> bool:
    """True when `host` is one of `domains` or a subdomain of one (Scrapy's offsite rule)."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


@dataclass(frozen=True)
class SourceConfig:
    """One source as reviewed. Defaults are already merged in."""

    name: str
    spider: str
    status: str
    allowed_domains: tuple[str, ...]
    start_urls: tuple[str, ...]
    reviewer: str | None = None
    reviewed_on: date | None = None
    legal_basis: str | None = None
    purpose: str | None = None
    terms_url: str | None = None
    terms_sha256: str | None = None
    allowed_fields: tuple[str, ...] = ()
    retention_days: int = DEFAULT_RETENTION_DAYS
    max_requests_per_second: float = DEFAULT_MAX_RPS
    user_agent: str | None = None
    suspended_reason: str | None = None
    suspended_on: date | None = None
    notes: str | None = None
    spider_options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    path: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def effective_user_agent(self) -> str:
        return self.user_agent or DEFAULT_USER_AGENT

    @property
    def min_delay_s(self) -> float:
        """Shortest allowed gap between two requests to this source."""
        return 1.0 / self.max_requests_per_second

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, e.g. to hand the source to a Scrapy subprocess in its settings."""
        data = asdict(self)
        for key in ("reviewed_on", "suspended_on"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        for key in ("allowed_domains", "start_urls", "allowed_fields"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceConfig:
        values = dict(data)
        for key in ("reviewed_on", "suspended_on"):
            if isinstance(values.get(key), str):
                values[key] = date.fromisoformat(values[key])
        for key in ("allowed_domains", "start_urls", "allowed_fields"):
            values[key] = tuple(values.get(key) or ())
        return cls(**values)


@dataclass
class SourcesConfig:
    path: Path
    defaults: dict[str, Any]
    sources: dict[str, SourceConfig]

    def get(self, name: str) -> SourceConfig:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(self.sources) or "none"
            raise UserError(f"no source named {name!r}; known sources: {known}",
                            path=self.path, fix="check the name or add a [sources."
                            f"{name}] table") from None

    def names(self) -> list[str]:
        return list(self.sources)

    def approved(self) -> list[SourceConfig]:
        return [s for s in self.sources.values() if s.approved]

    def retention_days_for(self, name: str) -> int:
        """A source's retention; the default for listings of a source no longer configured."""
        if name in self.sources:
            return self.sources[name].retention_days
        return int(self.defaults.get("retention_days", DEFAULT_RETENTION_DAYS))

    def __iter__(self) -> Iterator[SourceConfig]:
        return iter(self.sources.values())

    def __len__(self) -> int:
        return len(self.sources)


class _Locator:
    """Finds the line of a table header or of a key inside a table, in the raw TOML text."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[tuple[int, tuple[str, ...]]] = []
        for number, line in enumerate(self.lines, start=1):
            match = self._HEADER.match(line)
            if match:
                self.headers.append((number, _split_dotted(match.group(1))))

    def table(self, *path: str) -> int | None:
        for number, parts in self.headers:
            if parts == path:
                return number
        return None

    def key(self, table: tuple[str, ...], key: str) -> int | None:
        start = self.table(*table)
        if start is None:
            return None
        end = next((n for n, _ in self.headers if n > start), len(self.lines) + 1)
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start + 1, end):
            if pattern.match(self.lines[number - 1]):
                return number
        return start


def _split_dotted(header: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', header)
    return tuple(a or b or c for a, b, c in parts)


class _Validator:
    def __init__(self, path: Path, text: str, known_spiders: Iterable[str]) -> None:
        self.path = path
        self.loc = _Locator(text)
        self.known_spiders = set(known_spiders)

    def fail(self, message: str, *, table: tuple[str, ...], key: str | None = None,
             fix: str | None = None) -> UserError:
        line = self.loc.key(table, key) if key else self.loc.table(*table)
        return UserError(message, path=self.path, line=line, fix=fix)

    def unknown_key(self, key: str, table: tuple[str, ...], known: Iterable[str]) -> UserError:
        known = list(known)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(known)
        return self.fail(f"unknown key {key!r} in [{'.'.join(table)}]", table=table, key=key,
                         fix=hint)

    def defaults(self, raw: Any) -> dict[str, Any]:
        table = ("defaults",)
        if not isinstance(raw, dict):
            raise self.fail("[defaults] must be a table", table=table)
        for key, value in raw.items():
            if key not in _DEFAULT_KEYS:
                raise self.unknown_key(key, table, _DEFAULT_KEYS)
            self.check_type(key, value, table)
        self.check_values(raw, table)
        return dict(raw)

    def check_type(self, key: str, value: Any, table: tuple[str, ...]) -> None:
        expected = _SOURCE_KEYS[key]
        ok = isinstance(value, expected) and not (isinstance(value, bool) and bool not in expected)
        if not ok:
            names = " or ".join(_type_name(t) for t in expected)
            raise self.fail(f"{key} must be {names}, not {_type_name(type(value))}",
                            table=table, key=key)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise self.fail(f"{key} must be a list of strings", table=table, key=key)

    def check_values(self, raw: dict[str, Any], table: tuple[str, ...]) -> None:
        """Value checks shared by [defaults] and [sources.*]."""
        if "max_requests_per_second" in raw and not raw["max_requests_per_second"] > 0:
            raise self.fail("max_requests_per_second must be above 0", table=table,
                            key="max_requests_per_second", fix="e.g. 1.0 for one request a second")
        if "retention_days" in raw and raw["retention_days"] < 1:
            raise self.fail("retention_days must be at least 1", table=table, key="retention_days")
        if "user_agent" in raw and not _CONTACT_RE.search(raw["user_agent"]):
            raise self.fail("user_agent has no contact", table=table, key="user_agent",
                            fix='add a URL or e-mail, e.g. "horeca/0.1 '
                                '(+mailto:dpo@inspection.example)"')
        for name in raw.get("allowed_fields", ()):
            if name in FORBIDDEN_FIELDS:
                raise self.fail(f"allowed_fields lists {name!r}, which is never kept "
                                "(review texts, reviewers, photos and e-mail addresses are "
                                "personal data outside the purpose)", table=table,
                                key="allowed_fields", fix=f"remove {name!r}")
            if name not in allowed_field_names():
                raise self.fail(f"allowed_fields lists unknown field {name!r}", table=table,
                                key="allowed_fields",
                                fix="use " + ", ".join(allowed_field_names()))

    def source(self, name: str, raw: Any, defaults: dict[str, Any]) -> SourceConfig:
        table = ("sources", name)
        if not isinstance(raw, dict):
            raise self.fail(f"sources.{name} must be a table", table=("sources",), key=name)
        if not _NAME_RE.match(name):
            raise self.fail(f"source name {name!r} may hold only letters, digits, - and _",
                            table=table)
        for key, value in raw.items():
            if key not in _SOURCE_KEYS:
                raise self.unknown_key(key, table, _SOURCE_KEYS)
            if key != "spider_options":
                self.check_type(key, value, table)
        for key in _REQUIRED_KEYS:
            if key not in raw:
                raise self.fail(f"[sources.{name}] has no {key}", table=table,
                                fix=f"add {key} = ...")
        self.check_values(raw, table)
        merged = {**{k: v for k, v in defaults.items()}, **raw}

        if merged["status"] not in STATUSES:
            raise self.fail(f"status {merged['status']!r} is not one of "
                            + ", ".join(STATUSES), table=table, key="status")
        if merged["spider"] not in self.known_spiders:
            raise self.fail(f"unknown spider {merged['spider']!r}", table=table, key="spider",
                            fix="use one of " + ", ".join(sorted(self.known_spiders)))
        domains = self.domains(merged["allowed_domains"], table)
        self.start_urls(merged["start_urls"], domains, table)
        if merged.get("terms_url"):
            self.url(merged["terms_url"], "terms_url", table)
        if "terms_sha256" in merged and not _SHA_RE.match(merged["terms_sha256"]):
            raise self.fail("terms_sha256 must be 64 lowercase hex digits", table=table,
                            key="terms_sha256",
                            fix=f"run `horeca sources approve {name} ...` to write it")
        reviewed_on = self.date(merged.get("reviewed_on"), "reviewed_on", table)
        suspended_on = self.date(merged.get("suspended_on"), "suspended_on", table)
        if merged["status"] == "approved":
            for key in _REQUIRED_WHEN_APPROVED:
                if not merged.get(key):
                    raise self.fail(
                        f"source {name!r} is approved but has no {key}", table=table,
                        key="status",
                        fix=f"add {key} to [sources.{name}] (`horeca sources approve` writes "
                            "reviewer, reviewed_on, legal_basis and terms_sha256), or set "
                            "status = \"pending\"")
        return SourceConfig(
            name=name, spider=merged["spider"], status=merged["status"],
            allowed_domains=domains, start_urls=tuple(merged["start_urls"]),
            reviewer=merged.get("reviewer"), reviewed_on=reviewed_on,
            legal_basis=merged.get("legal_basis"), purpose=merged.get("purpose"),
            terms_url=merged.get("terms_url"), terms_sha256=merged.get("terms_sha256"),
            allowed_fields=tuple(merged.get("allowed_fields") or ()),
            retention_days=int(merged.get("retention_days", DEFAULT_RETENTION_DAYS)),
            max_requests_per_second=float(merged.get("max_requests_per_second",
                                                     DEFAULT_MAX_RPS)),
            user_agent=merged.get("user_agent"),
            suspended_reason=merged.get("suspended_reason"), suspended_on=suspended_on,
            notes=merged.get("notes"), spider_options=dict(merged.get("spider_options") or {}),
            path=str(self.path), line=self.loc.table(*table),
        )

    def domains(self, domains: list[str], table: tuple[str, ...]) -> tuple[str, ...]:
        if not domains:
            raise self.fail("allowed_domains is empty", table=table, key="allowed_domains")
        for domain in domains:
            if not _HOST_RE.match(domain):
                raise self.fail(f"allowed_domains entry {domain!r} is not a lowercase host "
                                "name", table=table, key="allowed_domains",
                                fix='write the bare host, e.g. "gustoreviews.example"')
        return tuple(domains)

    def url(self, url: str, key: str, table: tuple[str, ...]) -> str | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.fail(f"{key} entry {url!r} is not an http(s) URL", table=table, key=key)
        return parts.hostname

    def start_urls(self, urls: list[str], domains: tuple[str, ...],
                   table: tuple[str, ...]) -> None:
        if not urls:
            raise self.fail("start_urls is empty", table=table, key="start_urls")
        for url in urls:
            host = self.url(url, "start_urls", table)
            if not host_in_domains(host, domains):
                raise self.fail(f"start URL {url!r} is outside allowed_domains "
                                f"({', '.join(domains)})", table=table, key="start_urls",
                                fix=f"add {host!r} to allowed_domains or fix the URL")

    def date(self, value: Any, key: str, table: tuple[str, ...]) -> date | None:
        if value is None or isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.fail(f"{key} {value!r} is not a date", table=table, key=key,
                            fix=f"write it as {key} = 2026-10-01") from None


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", list: "a list",
            dict: "a table", date: "a date", bool: "true/false"}.get(t, t.__name__)


def parse_sources(text: str, path: str | Path = DEFAULT_SOURCES_FILE, *,
                  known_spiders: Iterable[str] | None = None) -> SourcesConfig:
    """Validate the TOML text of a sources config (see `load_sources`)."""
    path = Path(path)
    data = parse_toml(text, path)
    validator = _Validator(path, text, SPIDER_KINDS if known_spiders is None else known_spiders)
    for key in data:
        if key not in ("defaults", "sources"):
            line = validator.loc.table(key) or validator.loc.key((), key)
            raise UserError(f"unknown top-level table or key {key!r}", path=path, line=line,
                            fix="only [defaults] and [sources.<name>] tables are read")
    defaults = validator.defaults(data.get("defaults", {}))
    raw_sources = data.get("sources", {})
    sources = {name: validator.source(name, raw, defaults) for name, raw in raw_sources.items()}
    return SourcesConfig(path=path, defaults=defaults, sources=sources)


def load_sources(path: str | Path | None = None, *,
                 known_spiders: Iterable[str] | None = None) -> SourcesConfig:
    """Read and validate a sources config; raises `UserError` naming file, line and key."""
    path = resolve_sources_path(path)
    if not path.is_file():
        raise UserError("no sources config here", path=path,
                        fix=f"create it (see docs/legal-reviewer.md) or pass --sources / "
                            f"set {ENV_SOURCES}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError("the sources config is not UTF-8 text", path=path,
                        fix="save it as UTF-8") from None
    return parse_sources(text, path, known_spiders=known_spiders)
