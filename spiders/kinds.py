"""The three spider kinds, configured from a source's entry in sources.toml.

* `StructuredSpider` reads schema.org JSON-LD and microdata businesses;
* `SelectorSpider` reads fields with CSS/XPath selectors from `spider_options.fields`;
* `OverpassSpider` asks an Overpass API for the region's HoReCa elements.

The first two share the crawl logic of `PageSpider`: start URLs (or sitemaps) lead to
listing pages, which lead to pagination and detail pages (see `horeca.spiders.options`).
Spiders only yield raw listing fields plus `source`, `source_id` and `url`; cleaning,
checks and writing are the item pipelines' job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, ClassVar
from urllib.parse import urldefrag, urlencode, urlsplit

import scrapy
from parsel import Selector
from scrapy.http import Response, TextResponse
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap

from horeca.region import Region
from horeca.spiders.options import SpiderOptions
from horeca.spiders.overpass import build_query, listings_from_overpass
from horeca.spiders.structured import businesses, listing_from_entity

logger = logging.getLogger(__name__)

DETAIL_PRIORITY = 10  # finish detail pages first: the queue stays short, memory flat
# Page requests leave `callback` unset: Scrapy then calls `parse`, and the on-disk job
# queue stores no callback name (finding the name of a bound method means listing all of
# the spider's members, for every request queued).


class ListingSpiderBase(scrapy.Spider):
    """What every kind shares: the source, the region, the options, the counters."""

    kind: ClassVar[str] = ""

    def __init__(self, *args: Any, source: Any = None, region: Region | None = None,
                 options: SpiderOptions | None = None, **kwargs: Any) -> None:
        if source is None or options is None:
            raise ValueError("a listing spider needs source= and options=")
        super().__init__(*args, name=source.name, **kwargs)
        self.source = source
        self.region = region
        self.options = options
        self.allowed_domains = list(source.allowed_domains)
        self.start_urls = list(source.start_urls)

    def count(self, key: str, n: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key, n)

    def error(self, kind: str, url: str, detail: str = "") -> None:
        self.count(f"horeca/errors/{kind}")
        logger.warning("%s on %s %s", kind, url, detail)

    def finish(self, item: dict[str, Any], url: str) -> dict[str, Any] | None:
        """Add source and url, drop internal keys; count what leaves the spider."""
        out = {k: v for k, v in item.items() if not k.startswith("_")}
        out["source"] = self.source.name
        out.setdefault("url", url)
        self.count("horeca/items/yielded")
        return out


class PageSpider(ListingSpiderBase):
    """Listing pages -> pagination + detail pages; subclasses say how a page gives listings."""

    def start_requests(self) -> Iterator[scrapy.Request]:
        """The first requests (Scrapy < 2.13 calls this; later versions call `start`)."""
        for url in self.options.sitemap_urls:
            yield scrapy.Request(url, callback=self.parse_sitemap)
        for url in self.start_urls:
            yield scrapy.Request(url)

    async def start(self) -> AsyncIterator[Any]:
        for request in self.start_requests():
            yield request

    # -- following -----------------------------------------------------------------
    def _links(self, response: TextResponse) -> list[str]:
        return [response.urljoin(h) for h in response.xpath("//a/@href").getall()]

    def follow(self, response: TextResponse) -> Iterator[scrapy.Request]:
        opts = self.options
        everything = not (opts.detail_url_pattern or opts.listing_url_pattern
                          or opts.detail_links or opts.next_page)
        links = None if (opts.detail_links and opts.next_page) else self._links(response)
        if opts.detail_links:
            details = [response.urljoin(u) for u in opts.detail_links.values(response)]
        else:
            details = [u for u in links or [] if opts.is_detail(u)]
        if opts.next_page:
            nexts = [response.urljoin(u) for u in opts.next_page.values(response)]
        elif opts.listing_url_pattern is not None:
            nexts = [u for u in links or [] if opts.listing_url_pattern.search(u)]
        else:
            nexts = [u for u in links or [] if everything]
        seen: set[str] = set()
        for url, priority in [(u, DETAIL_PRIORITY) for u in details] + [(u, 0) for u in nexts]:
            url = urldefrag(url)[0]
            if url in seen or not url.startswith(("http://", "https://")):
                continue
            seen.add(url)
            yield scrapy.Request(url, priority=priority)

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        body = response.body
        if response.url.endswith(".gz") or body[:2] == b"\x1f\x8b":
            try:
                body = gunzip(body)
            except Exception as err:  # corrupt archive: counted, crawl goes on
                self.error("sitemap_invalid", response.url, str(err))
                return
        try:
            sitemap = Sitemap(body)
        except Exception as err:
            self.error("sitemap_invalid", response.url, str(err))
            return
        for entry in sitemap:
            loc = entry.get("loc")
            if not loc:
                continue
            if sitemap.type == "sitemapindex":
                yield scrapy.Request(loc, callback=self.parse_sitemap)
            elif self.options.detail_url_pattern is None or self.options.is_detail(loc):
                yield scrapy.Request(loc, priority=DETAIL_PRIORITY)

    # -- pages ---------------------------------------------------------------------
    def parse(self, response: Response) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            self.error("not_html", response.url)
            return
        self.count("horeca/pages/parsed")
        detail = self.options.is_detail(response.url)
        if detail or self.options.items_on_listing_pages:
            yield from self.listings(response, detail=detail)
        if not detail or self.options.follow_from_detail_pages:
            yield from self.follow(response)

    def listings(self, response: TextResponse, *, detail: bool) -> Iterable[dict[str, Any]]:
        raise NotImplementedError

    def source_id(self, url: str, fallback: str | None, page_url: str) -> str:
        """Id from the detail URL pattern, else the page's own id, else the URL's path."""
        found = self.options.id_from_url(url)
        if found:
            return found
        if fallback:
            return fallback
        parts = urlsplit(url if url else page_url)
        path = parts.path.strip("/") or "/"
        return f"{path}?{parts.query}" if parts.query else path

    def _own_url(self, url: str | None, page_url: str) -> str:
        """The listing's page on this platform: its `url` when on our hosts, else the page."""
        if not url:
            return page_url
        host = (urlsplit(url).hostname or "").lower()
        if any(host == d or host.endswith("." + d) for d in self.allowed_domains):
            return url
        return page_url


class StructuredSpider(PageSpider):
    kind = "structured"

    def listings(self, response: TextResponse, *, detail: bool) -> Iterable[dict[str, Any]]:
        nodes, errors = businesses(response.text)
        for kind, message in errors:
            self.error(kind, response.url, message)
        if detail and not nodes:
            self.error("no_structured_data", response.url)
        hosts = tuple(self.allowed_domains)
        for index, node in enumerate(nodes):
            raw = listing_from_entity(node, own_hosts=hosts)
            url = self._own_url(raw.get("_url") and response.urljoin(raw["_url"]),
                                response.url)
            page_id = self.options.id_from_url(response.url) if url == response.url else None
            fallback = raw.get("_node_id") or page_id
            if fallback is None and len(nodes) > 1:
                fallback = f"{self.source_id(url, None, response.url)}#{index + 1}"
            raw["source_id"] = self.source_id(url, fallback, response.url)
            raw["url"] = url
            item = self.finish(raw, response.url)
            if item is not None:
                yield item


class SelectorSpider(PageSpider):
    kind = "selector"

    def _extract(self, sel: Selector) -> dict[str, Any]:
        return {name: query.extract(sel) for name, query in self.options.fields.items()}

    def listings(self, response: TextResponse, *, detail: bool) -> Iterable[dict[str, Any]]:
        if self.options.item is not None:
            scopes = self.options.item.text
            nodes = response.xpath(scopes) if self.options.item.xpath else response.css(scopes)
        else:
            nodes = [response] if detail or self.options.detail_url_pattern is None else []
        found = 0
        for node in nodes:
            raw = self._extract(node)
            if not raw.get("name"):
                continue  # a page without the listing's name is not a listing page
            found += 1
            url = response.urljoin(raw["url"]) if raw.get("url") else response.url
            raw["url"] = url
            raw["source_id"] = self.source_id(url, raw.get("source_id"), response.url)
            item = self.finish(raw, response.url)
            if item is not None:
                yield item
        if detail and not found:
            self.error("selector_no_name", response.url)


class OverpassSpider(ListingSpiderBase):
    kind = "overpass"

    def query(self) -> str:
        bbox = self.region.bbox if self.region is not None else None
        if bbox is None:
            raise ValueError("the overpass spider needs a region with a bounding box")
        if self.options.query:
            return self.options.query.replace("{bbox}", ",".join(str(v) for v in bbox))
        return build_query(bbox, timeout_s=self.options.timeout)

    def start_requests(self) -> Iterator[scrapy.Request]:
        query = self.query()
        for url in self.start_urls:
            if self.options.method == "GET":
                sep = "&" if "?" in url else "?"
                yield scrapy.Request(f"{url}{sep}{urlencode({'data': query})}",
                                     callback=self.parse, dont_filter=True)
            else:
                yield scrapy.FormRequest(url, formdata={"data": query}, callback=self.parse,
                                         dont_filter=True)

    async def start(self) -> AsyncIterator[Any]:
        for request in self.start_requests():
            yield request

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        self.count("horeca/pages/parsed")
        try:
            payload = json.loads(response.body)
        except ValueError as err:
            self.error("overpass_invalid_json", response.url, str(err)[:120])
            return
        if not isinstance(payload, dict):
            self.error("overpass_invalid_json", response.url, "not a JSON object")
            return
        if payload.get("remark"):
            # Overpass reports timeouts and memory limits here, with a partial answer
            self.error("overpass_remark", response.url, str(payload["remark"])[:200])
        for raw in listings_from_overpass(payload, element_url=self.options.element_url):
            item = self.finish(raw, response.url)
            if item is not None:
                yield item


SPIDER_KINDS: dict[str, type[ListingSpiderBase]] = {
    "structured": StructuredSpider,
    "selector": SelectorSpider,
    "overpass": OverpassSpider,
}
