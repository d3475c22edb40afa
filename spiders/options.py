"""`[sources.NAME.spider_options]`: what each spider kind accepts, validated before a crawl.

Every kind:
    detail_url_pattern   regex for detail pages; its group "id" (or first group) is the
                         listing's source id ("/place/[^/]+-(?P<id>\\d+)/")
    listing_url_pattern  regex for listing and pagination pages to follow
    detail_links         selector for links to detail pages (default: every link that
                         matches detail_url_pattern)
    next_page            selector for pagination links (default: every link that matches
                         listing_url_pattern)
    sitemap_urls         sitemaps (or sitemap indexes) to take detail URLs from
    items_on_listing_pages  also take listings found on non-detail pages (default: true
                         only when there is no detail_url_pattern)
    follow_from_detail_pages  follow links found on detail pages too (default: false)
selector kind, in addition:
    fields               table: listing field -> selector, or {css|xpath = "...",
                         re = "...", all = true}; `name` is required
    item                 selector of one listing on a listing page (fields are then
                         relative to it); without it, a detail page is one listing
overpass kind:
    method               "POST" (default) or "GET"
    query                Overpass QL replacing the built-in one; "{bbox}" is replaced by
                         "south,west,north,east"
    element_url          default "https://www.openstreetmap.org/{type}/{id}"
    timeout              seconds the API may spend (default 90)

Selectors are CSS (with parsel's ::text and ::attr(name)) unless they start with "xpath:"
or "/" or "(".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsel import Selector

from horeca.errors import UserError
from horeca.spiders.model import LISTING_FIELDS

KINDS = ("structured", "selector", "overpass")
MULTI_FIELDS = frozenset({"alt_names", "opening_hours"})
_COMMON = {"detail_url_pattern", "listing_url_pattern", "detail_links", "next_page",
           "sitemap_urls", "items_on_listing_pages", "follow_from_detail_pages"}
_ALLOWED = {
    "structured": _COMMON,
    "selector": _COMMON | {"fields", "item"},
    "overpass": {"method", "query", "element_url", "timeout"},
}
_PROBE = Selector(text="<html><body><p>x</p></body></html>")


@dataclass(frozen=True)
class Query:
    """One selector: CSS or XPath, an optional regex, one value or all of them."""

    text: str
    xpath: bool = False
    regex: re.Pattern[str] | None = None
    many: bool = False

    def values(self, sel: Selector) -> list[str]:
        nodes = sel.xpath(self.text) if self.xpath else sel.css(self.text)
        out: list[str] = []
        for node in nodes:
            # text nodes and attributes are strings; elements give their whole text
            value = node.root if isinstance(node.root, str) else node.xpath("string()").get()
            if value is None:
                continue
            if self.regex is not None:
                match = self.regex.search(value)
                if not match:
                    continue
                value = match.group(1) if match.groups() else match.group(0)
            out.append(value)
        return out

    def extract(self, sel: Selector) -> str | list[str] | None:
        values = [v for v in (v.strip() for v in self.values(sel)) if v]
        if self.many:
            return values
        return " ".join(values) or None


@dataclass(frozen=True)
class SpiderOptions:
    kind: str
    detail_url_pattern: re.Pattern[str] | None = None
    listing_url_pattern: re.Pattern[str] | None = None
    detail_links: Query | None = None
    next_page: Query | None = None
    sitemap_urls: tuple[str, ...] = ()
    items_on_listing_pages: bool = True
    follow_from_detail_pages: bool = False
    fields: dict[str, Query] = field(default_factory=dict)
    item: Query | None = None
    method: str = "POST"
    query: str | None = None
    element_url: str = "https://www.openstreetmap.org/{type}/{id}"
    timeout: int = 90

    def is_detail(self, url: str) -> bool:
        return self.detail_url_pattern is not None and bool(self.detail_url_pattern.search(url))

    def id_from_url(self, url: str) -> str | None:
        if self.detail_url_pattern is None:
            return None
        match = self.detail_url_pattern.search(url)
        if not match:
            return None
        if "id" in match.groupdict():
            return match.group("id")
        return match.group(1) if match.groups() else None


class _Checker:
    def __init__(self, source: str, path: str | Path | None) -> None:
        self.source = source
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> UserError:
        return UserError(f"[sources.{self.source}.spider_options] {key}: {problem}",
                         path=self.path, fix=fix)

    def regex(self, key: str, value: Any) -> re.Pattern[str]:
        if not isinstance(value, str):
            raise self.fail(key, "must be a string (a regular expression)",
                            fix=f'write {key} = "..."')
        try:
            return re.compile(value)
        except re.error as err:
            raise self.fail(key, f"invalid regular expression: {err}",
                            fix="correct the pattern (TOML strings need \\\\ for \\)") from None

    def query(self, key: str, value: Any, *, many: bool = False) -> Query:
        regex = None
        if isinstance(value, dict):
            unknown = set(value) - {"css", "xpath", "re", "all"}
            if unknown or ("css" in value) == ("xpath" in value):
                raise self.fail(key, "a selector table needs exactly one of css/xpath "
                                "(and optionally re, all)",
                                fix=f'write {key} = {{ css = "h1::text" }}')
            text = value.get("css") or value.get("xpath")
            is_xpath = "xpath" in value
            if "re" in value:
                regex = self.regex(f"{key}.re", value["re"])
            many = bool(value.get("all", many))
        elif isinstance(value, str):
            text = value
            is_xpath = text.startswith(("xpath:", "/", "("))
            text = text.removeprefix("xpath:")
        else:
            raise self.fail(key, "must be a selector string or a table",
                            fix=f'write {key} = "h1::text"')
        if not isinstance(text, str) or not text.strip():
            raise self.fail(key, "empty selector", fix="give a CSS or XPath selector")
        try:
            _PROBE.xpath(text) if is_xpath else _PROBE.css(text)
        except Exception as err:  # cssselect and lxml raise several error types
            kind = "XPath" if is_xpath else "CSS"
            raise self.fail(key, f"invalid {kind} selector {text!r}: {err}",
                            fix="correct the selector") from None
        return Query(text=text, xpath=is_xpath, regex=regex, many=many)


def parse_options(kind: str, raw: dict[str, Any] | None, *, source: str,
                  path: str | Path | None = None) -> SpiderOptions:
    """Validated options for one source; UserError naming the source and key otherwise."""
    check = _Checker(source, path)
    raw = dict(raw or {})
    if kind not in KINDS:
        raise UserError(f"[sources.{source}] spider: unknown kind {kind!r}", path=path,
                        fix=f"use one of: {', '.join(KINDS)}")
    unknown = sorted(set(raw) - _ALLOWED[kind])
    if unknown:
        raise check.fail(unknown[0], f"not an option of the {kind} spider",
                         fix=f"use only: {', '.join(sorted(_ALLOWED[kind]))}")
    opts: dict[str, Any] = {"kind": kind}
    for key in ("detail_url_pattern", "listing_url_pattern"):
        if key in raw:
            opts[key] = check.regex(key, raw[key])
    for key in ("detail_links", "next_page", "item"):
        if key in raw:
            opts[key] = check.query(key, raw[key], many=True)
    if "sitemap_urls" in raw:
        urls = raw["sitemap_urls"]
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise check.fail("sitemap_urls", "must be a list of URLs",
                             fix='write sitemap_urls = ["http://host/sitemap.xml"]')
        opts["sitemap_urls"] = tuple(urls)
    for key in ("items_on_listing_pages", "follow_from_detail_pages"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise check.fail(key, "must be true or false", fix=f"write {key} = true")
            opts[key] = raw[key]
    if "items_on_listing_pages" not in raw:
        opts["items_on_listing_pages"] = "detail_url_pattern" not in raw
    if "timeout" in raw:
        if not isinstance(raw["timeout"], int) or isinstance(raw["timeout"], bool) \
                or raw["timeout"] < 1:
            raise check.fail("timeout", "must be a whole number >= 1", fix="write timeout = 90")
        opts["timeout"] = raw["timeout"]
    if kind == "selector":
        fields = raw.get("fields")
        if not isinstance(fields, dict) or "name" not in fields:
            raise check.fail("fields", "the selector spider needs a fields table with at "
                             "least `name`",
                             fix=f'add [sources.{source}.spider_options.fields] name = "h1::text"')
        allowed = set(LISTING_FIELDS) - {"source", "natural_person"}
        bad = sorted(set(fields) - allowed)
        if bad:
            raise check.fail(f"fields.{bad[0]}", "not a listing field",
                             fix=f"use fields among: {', '.join(sorted(allowed))}")
        opts["fields"] = {name: check.query(f"fields.{name}", spec, many=name in MULTI_FIELDS)
                          for name, spec in fields.items()}
    if kind == "overpass":
        if "method" in raw:
            method = str(raw["method"]).upper()
            if method not in {"GET", "POST"}:
                raise check.fail("method", "must be GET or POST", fix='write method = "POST"')
            opts["method"] = method
        for key in ("query", "element_url"):
            if key in raw:
                if not isinstance(raw[key], str) or not raw[key].strip():
                    raise check.fail(key, "must be a non-empty string", fix=f'write {key} = "..."')
                opts[key] = raw[key]
        if "element_url" in opts and "{id}" not in opts["element_url"]:
            raise check.fail("element_url", "must contain {id} (and usually {type})",
                             fix='write element_url = "https://www.openstreetmap.org/{type}/{id}"')
    return SpiderOptions(**opts)
