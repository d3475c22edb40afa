"""Enforcement at crawl time: a Scrapy downloader middleware, not advice.

`LegalGateMiddleware` sits first in the downloader chain (priority 40, before the HTTP
cache, retries and redirects) and, for every request of the crawl:

* drops it unless the source is approved and its host is in `allowed_domains` (counted as
  `legal_gate/offsite`);
* before anything else is fetched from a host, fetches that host's robots.txt and
  /.well-known/tdmrep.json *through Scrapy* (so the proxy, user agent and rate apply) and
  applies RFC 9309: 2xx rules, 4xx no restriction, 5xx / 429 / network error / unreadable
  file = nothing is fetched from that host (fail closed, unlike Scrapy's own middleware);
* drops paths robots.txt disallows for the source's user agent;
* spaces requests: the whole source shares one download slot whose delay is
  max(1 / max_requests_per_second, every Crawl-delay seen), concurrency 1, no jitter. The
  slot is re-clamped on every request and after every response (AutoThrottle lowers
  delays there), and the middleware keeps its own clock as well, so neither spider
  settings, AutoThrottle nor retries can make the crawl faster. `SerialSlotDownloader`
  makes the slot's concurrency of 1 hold even when the delay is tiny (see there);
* drops any response whose TDM reservation (meta > header > tdmrep.json rule) is set, so
  the spider never sees it (`legal_gate/tdm_reserved`).

`gate_settings(source, proxy)` returns the Scrapy settings the crawl runner must apply.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.core import downloader as scrapy_downloader
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.http.request import NO_CALLBACK
from scrapy.settings import default_settings
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from horeca.legal_gate.checks import (
    ROBOTS_PATH,
    TDMREP_PATH,
    ProtocolFileError,
    RobotsPolicy,
    TdmRule,
    decide_tdm,
    header_tdm,
    looks_like_html,
    meta_tdm,
    origin_url,
    parse_tdmrep,
    path_of,
    robots_policy,
    tdmrep_rule_for,
)
from horeca.legal_gate.config import SourceConfig, host_in_domains

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

MIDDLEWARE_PATH = "horeca.legal_gate.middleware.LegalGateMiddleware"
DOWNLOADER_PATH = "horeca.legal_gate.middleware.SerialSlotDownloader"
MIDDLEWARE_PRIORITY = 40  # before every other downloader middleware (Offsite is 50)
PIPELINE_PATH = "horeca.legal_gate.minimise.MinimisePipeline"
PIPELINE_PRIORITY = 100  # first: nothing downstream ever sees a field we may not keep
SOURCE_SETTING = "HORECA_SOURCE"
PROXY_SETTING = "HORECA_PROXY"
_PROTOCOL = "horeca_gate_protocol"  # meta flag on our own robots.txt / tdmrep.json requests
_STAT = "legal_gate/"


def slot_key(source: SourceConfig) -> str:
    return f"horeca-gate:{source.name}"


def _jitter_settings() -> dict[str, Any]:
    # Scrapy >= 2.18 replaced RANDOMIZE_DOWNLOAD_DELAY by DOWNLOAD_DELAY_JITTER.
    if hasattr(default_settings, "DOWNLOAD_DELAY_JITTER"):
        return {"DOWNLOAD_DELAY_JITTER": 0.0}
    return {"RANDOMIZE_DOWNLOAD_DELAY": False}


def gate_settings(source: SourceConfig, proxy: str | None = None) -> dict[str, Any]:
    """Scrapy settings a crawl of `source` must run with (merge with `merge_settings`)."""
    delay = source.min_delay_s
    jitter = _jitter_settings()
    slot = {"concurrency": 1, "delay": delay}
    slot.update({"jitter": 0.0} if "DOWNLOAD_DELAY_JITTER" in jitter
                else {"randomize_delay": False})
    return {
        SOURCE_SETTING: json.dumps(source.to_dict(), sort_keys=True),
        PROXY_SETTING: proxy,
        "USER_AGENT": source.effective_user_agent,
        "ROBOTSTXT_OBEY": False,  # replaced by LegalGateMiddleware (fails closed, Crawl-delay)
        "DOWNLOAD_DELAY": delay,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_SLOTS": {slot_key(source): slot},
        "DOWNLOADER": DOWNLOADER_PATH,
        **jitter,
        "DOWNLOADER_MIDDLEWARES": {
            MIDDLEWARE_PATH: MIDDLEWARE_PRIORITY,
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
        },
        "ITEM_PIPELINES": {PIPELINE_PATH: PIPELINE_PRIORITY},
    }


_MERGED_DICTS = ("DOWNLOADER_MIDDLEWARES", "ITEM_PIPELINES", "DOWNLOAD_SLOTS",
                 "SPIDER_MIDDLEWARES", "EXTENSIONS")


def merge_settings(base: dict[str, Any], gate: dict[str, Any]) -> dict[str, Any]:
    """`base` (the runner's settings) overlaid with `gate`; component dicts are merged."""
    merged = dict(base)
    for key, value in gate.items():
        if key in _MERGED_DICTS and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def source_from_settings(settings: Any) -> SourceConfig:
    raw = settings.get(SOURCE_SETTING)
    if not raw:
        raise RuntimeError(f"the legal gate needs the {SOURCE_SETTING} setting: build the "
                           "crawl's settings with horeca.legal_gate.middleware.gate_settings")
    return SourceConfig.from_dict(json.loads(raw) if isinstance(raw, str) else dict(raw))


def _enabled_components(settings: Any, name: str) -> list[Any]:
    """The enabled components of a priority dict setting (with its _BASE), in order."""
    from scrapy.utils.conf import build_component_list
    from scrapy.utils.misc import load_object

    getter = getattr(settings, "get_component_priority_dict_with_base", None)
    compdict = getter(name) if getter else settings.getwithbase(name)
    return [load_object(c) if isinstance(c, str) else c for c in build_component_list(compdict)]


def check_gate_components(settings: Any) -> None:
    """Refuse to crawl unless the gate middleware runs first and MinimisePipeline first.

    Spider `custom_settings` outrank project settings, so a spider could otherwise drop
    or reorder the gate; both components call this when they are built.
    """
    from scrapy.utils.misc import load_object

    downloader = load_object(settings.get("DOWNLOADER"))
    if not (isinstance(downloader, type) and issubclass(downloader, SerialSlotDownloader)):
        raise RuntimeError(f"the legal gate refuses this crawl: the DOWNLOADER setting must "
                           f"be {DOWNLOADER_PATH} (it keeps one request at a time per source)")
    middlewares = _enabled_components(settings, "DOWNLOADER_MIDDLEWARES")
    pipelines = _enabled_components(settings, "ITEM_PIPELINES")
    if not middlewares or middlewares[0] is not load_object(MIDDLEWARE_PATH):
        raise RuntimeError(f"the legal gate refuses this crawl: {MIDDLEWARE_PATH} must be the "
                           "first enabled downloader middleware")
    if not pipelines or pipelines[0] is not load_object(PIPELINE_PATH):
        raise RuntimeError(f"the legal gate refuses this crawl: {PIPELINE_PATH} must be the "
                           "first enabled item pipeline")


class SerialSlotDownloader(scrapy_downloader.Downloader):
    """Scrapy's downloader, with a slot's concurrency holding whatever its delay.

    Scrapy (2.13 and later) starts each download as a task, and the task counts its
    request as transferring only when it runs. With a slot delay shorter than the time
    the queue loop itself takes (rate cap lifted, throttling off), the loop's
    "one more after the delay" step finds the slot still free and starts the next queued
    request too, and the next: a slot of concurrency 1 had up to ten requests in flight.
    Here a request counts as transferring from the moment it leaves the queue.
    Older Scrapy versions start the download synchronously and need no change.
    """

    _ASYNC_QUEUE = all(hasattr(scrapy_downloader, name)
                       for name in ("_schedule_coro", "call_later")) and hasattr(
        scrapy_downloader.Downloader, "_wait_for_download")

    def _process_queue(self, *args: Any) -> None:
        if not self._ASYNC_QUEUE or len(args) != 1:
            super()._process_queue(*args)
            return
        slot = args[0]
        if slot.latercall:
            return
        now = monotonic()
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = scrapy_downloader.call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            slot.transferring.add(request)  # the change: counted before the task runs
            scrapy_downloader._schedule_coro(
                self._wait_for_download(slot, request, queue_dfd))
            if delay:
                self._process_queue(slot)
                break


async def _sleep(seconds: float) -> None:
    try:
        from scrapy.utils.asyncio import sleep
    except ImportError:  # Scrapy < 2.18
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))
        return
    await sleep(seconds)


@dataclass
class _HostState:
    robots: RobotsPolicy
    tdm_rules: list[TdmRule] | None = None
    tdm_error: str | None = None


class LegalGateMiddleware:
    def __init__(self, crawler: Crawler, source: SourceConfig, proxy: str | None) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.source = source
        self.proxy = proxy
        self.user_agent = source.effective_user_agent
        self.slot = slot_key(source)
        self.delay = source.min_delay_s
        self._next_free = 0.0
        self._hosts: dict[str, _HostState] = {}
        self._pending: dict[str, Deferred[None]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LegalGateMiddleware:
        source = source_from_settings(crawler.settings)
        check_gate_components(crawler.settings)
        mw = cls(crawler, source, crawler.settings.get(PROXY_SETTING))
        # Connected after AutoThrottle (extensions are built before the downloader), so
        # this runs after it has adjusted the slot delay and can undo a too-short one.
        crawler.signals.connect(mw._clamp_slot, signal=signals.response_downloaded)
        return mw

    def _count(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(_STAT + key)

    def _drop(self, key: str, reason: str) -> IgnoreRequest:
        self._count(key)
        return IgnoreRequest(f"legal gate: {reason}")

    # -- requests ---------------------------------------------------------------------------

    async def process_request(self, request: Request, spider: Any = None) -> None:
        meta = request.meta
        if self.proxy and "proxy" not in meta:
            meta["proxy"] = self.proxy
        meta["download_slot"] = self.slot  # one slot per source: the rate limit is per source
        request.headers[b"User-Agent"] = self.user_agent
        if not self.source.approved:
            raise self._drop("not_approved", f"source {self.source.name} is "
                             f"{self.source.status}")
        parts = urlparse_cached(request)
        if parts.scheme not in ("http", "https"):
            raise self._drop("offsite", f"{parts.scheme}: URLs are not crawled")
        host = (parts.hostname or "").lower()
        if not host_in_domains(host, self.source.allowed_domains):
            raise self._drop("offsite", f"{host} is outside allowed_domains")
        if not meta.get(_PROTOCOL):
            state = await self._host_state(request, host)
            if state.robots.problem:
                raise self._drop("robots_unavailable", f"robots.txt of {host}: "
                                 f"{state.robots.reason}")
            if state.tdm_error:
                raise self._drop("tdmrep_unreadable", f"tdmrep.json of {host}: "
                                 f"{state.tdm_error}")
            if not state.robots.allowed(request.url, self.user_agent):
                raise self._drop("robots_forbidden", f"robots.txt disallows {request.url}")
        await self._wait_turn()
        self._clamp_slot()
        return None

    async def _wait_turn(self) -> None:
        """Reserve the next send time for this source, at least `delay` after the last one."""
        now = monotonic()
        start = max(now, self._next_free)
        self._next_free = start + self.delay
        if start > now:
            await _sleep(start - now)

    def _clamp_slot(self, *args: Any, **kwargs: Any) -> None:
        engine = getattr(self.crawler, "engine", None)
        downloader = getattr(engine, "downloader", None)
        slot = downloader.slots.get(self.slot) if downloader is not None else None
        if slot is None:
            return
        slot.concurrency = 1
        if slot.delay < self.delay:
            slot.delay = self.delay
        if hasattr(type(slot), "jitter") or "jitter" in getattr(slot, "__slots__", ()):
            slot.jitter = 0.0
        else:  # Scrapy < 2.18
            slot.randomize_delay = False

    # -- robots.txt and tdmrep.json, once per host -----------------------------------------

    async def _host_state(self, request: Request, host: str) -> _HostState:
        if host in self._hosts:
            return self._hosts[host]
        if host in self._pending:
            await maybe_deferred_to_future(self._pending[host])
            return self._hosts[host]
        done: Deferred[None] = Deferred()
        self._pending[host] = done
        try:
            state = await self._fetch_host_state(request)
            self._hosts[host] = state
        except BaseException:
            self._hosts[host] = _HostState(robots_policy("", None, None, "gate error"))
            raise
        finally:
            del self._pending[host]
            done.callback(None)
        return state

    async def _fetch_protocol_file(self, request: Request, path: str) -> Response | str:
        url = origin_url(request.url, path)
        meta = {_PROTOCOL: path, "dont_cache": True}
        if "proxy" in request.meta:
            meta["proxy"] = request.meta["proxy"]
        probe = Request(url, meta=meta, priority=1000, dont_filter=True, callback=NO_CALLBACK)
        engine = self.crawler.engine
        assert engine is not None
        try:
            if hasattr(engine, "download_async"):
                return await engine.download_async(probe)
            return await maybe_deferred_to_future(engine.download(probe))
        except Exception as err:  # any failure to get an answer is "unreachable"
            return f"{type(err).__name__}: {err}"

    async def _fetch_host_state(self, request: Request) -> _HostState:
        got = await self._fetch_protocol_file(request, ROBOTS_PATH)
        url = origin_url(request.url, ROBOTS_PATH)
        if isinstance(got, str):
            robots = robots_policy(url, None, None, got)
        else:
            robots = robots_policy(url, got.status, got.body)
        self._count("robots_fetched")
        state = _HostState(robots)
        if robots.problem:
            logger.warning("legal gate: %s (%s): nothing will be fetched from this host",
                           url, robots.reason)
            return state
        crawl_delay = robots.crawl_delay(self.user_agent)
        if crawl_delay and crawl_delay > self.delay:
            self.delay = crawl_delay
            self._clamp_slot()
        got = await self._fetch_protocol_file(request, TDMREP_PATH)
        if isinstance(got, str):
            state.tdm_error = f"cannot be fetched ({got})"
        elif 200 <= got.status < 300:
            try:
                state.tdm_rules = parse_tdmrep(got.body)
            except ProtocolFileError as err:
                state.tdm_error = str(err)
        elif got.status == 429 or got.status >= 500:
            state.tdm_error = f"cannot be fetched (HTTP {got.status})"
        if state.tdm_error:
            logger.warning("legal gate: %s%s: %s: nothing will be fetched from this host",
                           state.robots.url.rsplit(ROBOTS_PATH, 1)[0], TDMREP_PATH,
                           state.tdm_error)
        return state

    # -- responses --------------------------------------------------------------------------

    def process_response(self, request: Request, response: Response,
                         spider: Any = None) -> Response:
        if request.meta.get(_PROTOCOL):
            return response
        host = (urlparse_cached(request).hostname or "").lower()
        state = self._hosts.get(host)
        rule = tdmrep_rule_for(state.tdm_rules or (), path_of(response.url)) if state else None
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        meta = meta_tdm(response.body) if looks_like_html(content_type, response.body) else None
        header = header_tdm({
            name: value.decode("latin-1")
            for name in ("tdm-reservation", "tdm-policy")
            if (value := response.headers.get(name.encode())) is not None
        })
        decision = decide_tdm(meta, header, rule)
        if decision.reserved:
            raise self._drop("tdm_reserved", f"{response.url} reserves TDM rights "
                             f"({decision.detail})")
        return response
