"""Downloader middlewares: polite retries that honour Retry-After.

Scrapy's own RetryMiddleware retries at once and ignores Retry-After. Here a 429 or 5xx
answer (or a network error) pauses the whole host: every request to it waits until the
time the server asked for (Retry-After in seconds or as an HTTP date), or an exponential
backoff when it gave none, then the request is tried again, up to `HORECA_RETRY_TIMES`.
A Retry-After longer than `HORECA_RETRY_AFTER_MAX` gives up on that request instead of
hanging the crawl.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares import redirect, stats
from scrapy.http import HtmlResponse, Response

logger = logging.getLogger(__name__)

RETRY_HTTP_CODES = frozenset({408, 425, 429, 500, 502, 503, 504, 522, 524})
_RETRY_EXCEPTIONS = (
    "TimeoutError", "TCPTimedOutError", "ConnectionRefusedError", "ConnectionLost",
    "ConnectionDone", "ConnectError", "DNSLookupError", "ResponseNeverReceived",
    "ResponseFailed", "ConnectionResetError", "DownloadTimeoutError", "PartialDownloadError",
)


_REFRESH = re.compile("refresh", re.I)
META_REFRESH_WINDOW = 4096  # characters Scrapy's get_meta_refresh looks at


def parse_retry_after(value: str | bytes | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent
    or unreadable. A date in the past means 0."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff: base, 2*base, 4*base ... at most `cap` seconds."""
    return min(cap, base * (2 ** attempt))


class RetryAfterMiddleware:
    """Retries 429/5xx and network errors with a per-host pause; see the module docstring."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.max_retries = settings.getint("HORECA_RETRY_TIMES", 3)
        self.base = settings.getfloat("HORECA_RETRY_BACKOFF_BASE", 1.0)
        self.cap = settings.getfloat("HORECA_RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_max = settings.getfloat("HORECA_RETRY_AFTER_MAX", 300.0)
        self.paused_until: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    def _stat(self, key: str, count: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key, count)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        host = urlsplit(request.url).netloc
        wait = self.paused_until.get(host, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        return None

    def _retry(self, request: Request, reason: str, wait: float | None) -> Request | None:
        attempt = int(request.meta.get("horeca_retries", 0))
        if attempt >= self.max_retries:
            self._stat("horeca/retry/gave_up")
            self._stat(f"horeca/retry/gave_up/{reason}")
            logger.warning("giving up on %s after %d retries (%s)", request.url, attempt, reason)
            return None
        if wait is not None and wait > self.retry_after_max:
            self._stat("horeca/retry/retry_after_too_long")
            logger.warning("giving up on %s: Retry-After %.0fs exceeds %.0fs", request.url,
                           wait, self.retry_after_max)
            return None
        delay = wait if wait is not None else backoff_delay(attempt, self.base, self.cap)
        host = urlsplit(request.url).netloc
        self.paused_until[host] = max(self.paused_until.get(host, 0.0),
                                      time.monotonic() + delay)
        self._stat("horeca/retry/count")
        self._stat(f"horeca/retry/reason/{reason}")
        if wait is not None:
            self._stat("horeca/retry/retry_after_honoured")
        logger.info("retrying %s in %.2fs (%s, attempt %d)", request.url, delay, reason,
                    attempt + 1)
        retry = request.replace(dont_filter=True)
        retry.meta["horeca_retries"] = attempt + 1
        retry.priority = request.priority + 1
        return retry

    def process_response(self, request: Request, response: Response,
                         spider: Any = None) -> Request | Response:
        if response.status not in RETRY_HTTP_CODES or request.meta.get("dont_retry"):
            return response
        wait = parse_retry_after(response.headers.get(b"Retry-After"))
        retry = self._retry(request, f"http_{response.status}", wait)
        return retry or response

    def process_exception(self, request: Request, exception: Exception,
                          spider: Any = None) -> Any:
        name = type(exception).__name__
        if request.meta.get("dont_retry") or name not in _RETRY_EXCEPTIONS:
            return None
        return self._retry(request, name, None)



class MetaRefreshMiddleware(redirect.MetaRefreshMiddleware):
    """Scrapy's meta-refresh redirects, without parsing pages that cannot have one.

    Scrapy strips scripts and comments from the head of every HTML page, then searches
    it for `<meta http-equiv="refresh">`; a page whose first 4,096 characters do not
    contain the word "refresh" at all is passed on at once (an entity-encoded
    "refresh" keyword would be missed; no browser-facing page writes one).
    """

    def process_response(self, request: Request, response: Response,
                         spider: Any = None) -> Request | Response:
        if isinstance(response, HtmlResponse) and not _REFRESH.search(
                response.text, 0, META_REFRESH_WINDOW):
            return response
        return super().process_response(request, response)


class DownloaderStats(stats.DownloaderStats):
    """Scrapy's request and response counters, without the byte counts: measuring a
    request meant serialising it to raw HTTP once more, for a figure no report uses."""

    def process_request(self, request: Request, spider: Any = None) -> None:
        self.stats.inc_value("downloader/request_count")
        self.stats.inc_value(f"downloader/request_method_count/{request.method}")
        return None

    def process_response(self, request: Request, response: Response,
                         spider: Any = None) -> Response:
        self.stats.inc_value("downloader/response_count")
        self.stats.inc_value(f"downloader/response_status_count/{response.status}")
        return response
