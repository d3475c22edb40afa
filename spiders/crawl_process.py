"""Crawls in a worker process (started as `python -m horeca.spiders.run_one SPEC.json`).

Twisted's reactor cannot be restarted inside a process, and `horeca run`, the demo and the
tests crawl several times, so the parent (`horeca.spiders.runner`) starts worker
subprocesses. A worker crawls sources one after another on one reactor (`Worker`), each
with its own Scrapy crawler and settings, taking the next source no other worker has
claimed. A crawl's spec (JSON) names the database, sources file, source, region, proxy,
run id and folders; its result (JSON: finish reason, counters, segments, or an error)
is written to `spec["result_path"]` when that crawl ends.

Resumable: Scrapy keeps the request queue and seen-requests in JOBDIR. An interrupted
crawl (Ctrl-C, SIGTERM, a close-spider limit) leaves JOBDIR and this crawl's counters
there; the next crawl of the same source, region and options continues where it stopped
and adds its counters to the saved ones. A finished crawl removes JOBDIR, so the next
crawl starts afresh (and refreshes `last_seen` of every listing it sees again).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Imported here, near the bottom of the stack: on import it builds deprecated TLS classes
# with inspect.stack(), which costs per frame (a quarter of a second when the downloader
# imported it deep inside the reactor's call stack).
import scrapy.core.downloader.handlers.http11  # noqa: F401
from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.statscollectors import MemoryStatsCollector

from horeca.region import Region
from horeca.spiders.kinds import SPIDER_KINDS
from horeca.spiders.options import SpiderOptions, parse_options
from horeca.spiders.pipelines import ITEM_PIPELINES, STORE_FAILED
from horeca.spiders.report import merge_stats

logger = logging.getLogger(__name__)

JOB_FILE = "horeca-job.json"
SCHEDULER_PRIORITY_QUEUE = "scrapy.pqueues.ScrapyPriorityQueue"
# Scrapy components a listing crawl never uses; each costs CPU per request or start-up.
UNUSED_DOWNLOADER_MIDDLEWARES: dict[str, None] = {
    # the legal gate, first in the chain, already drops requests outside allowed_domains
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    # the gate's own robots.txt handling (fails closed) replaces it
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,  # RetryAfterMiddleware
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,  # COOKIES_ENABLED off
}
UNUSED_SPIDER_MIDDLEWARES: dict[str, None] = {
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,  # no depth limit: stats only
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,  # Scrapy >= 2.19
    # No Referer header: telling a site which of its pages linked is of no use to it, and
    # computing the referrer policy per request is not free.
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
}
UNUSED_EXTENSIONS: dict[str, None] = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.memdebug.MemoryDebugger": None,
    "scrapy.extensions.feedexport.FeedExporter": None,
    "scrapy.extensions.remote_control.RemoteControl": None,  # Scrapy >= 2.19; imports aiohttp
}
# Replaced by lighter versions of the same thing (spiders/middlewares.py)
REPLACED_DOWNLOADER_MIDDLEWARES: dict[str, str] = {
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware":
        "horeca.spiders.middlewares.MetaRefreshMiddleware",
    "scrapy.downloadermiddlewares.stats.DownloaderStats":
        "horeca.spiders.middlewares.DownloaderStats",
}
PARTIAL_FILE = "horeca-partial.json"
STATS_CLASS = "horeca.spiders.crawl_process.CrawlStats"


def _components_base(name: str, unused: dict[str, None],
                     replaced: dict[str, str] | None = None) -> dict[str, int]:
    """Scrapy's default `<name>_BASE` without the components a listing crawl never uses.

    Disabling a component with `None` in `<name>` still imports it (Scrapy loads every
    key to compare classes); left out of the base it is never imported (RemoteControl
    alone imports aiohttp, 0.2 s per worker). Components a newer Scrapy adds stay in.
    """
    from scrapy.settings import default_settings

    base: dict[str, int] = dict(getattr(default_settings, f"{name}_BASE"))
    for path, lighter in (replaced or {}).items():
        if path in base:
            base[lighter] = base.pop(path)
    return {path: order for path, order in base.items() if path not in unused}


class CrawlStats(MemoryStatsCollector):
    """Scrapy's in-memory stats without its per-attribute deprecation hook.

    Scrapy 2.19's StatsCollector routes every attribute read (its own `_stats` included)
    through `__getattribute__`, which first tries and fails a `_cached_<name>` lookup to
    warn about a `spider` argument nobody here passes: a raised AttributeError per read,
    several per page.
    """

    __getattribute__ = object.__getattribute__  # type: ignore[assignment]


def region_to_dict(region: Region) -> dict[str, Any]:
    return {"name": region.name, "label": region.label, "country": region.country,
            "postcode_ranges": [list(r) for r in region.postcode_ranges],
            "bbox": list(region.bbox) if region.bbox else None}


def region_from_dict(data: dict[str, Any]) -> Region:
    return Region(name=data["name"], label=data.get("label", ""),
                  country=data.get("country", "BE"),
                  postcode_ranges=tuple(tuple(r) for r in data.get("postcode_ranges") or ()),
                  bbox=tuple(data["bbox"]) if data.get("bbox") else None)


def merge_settings(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Later settings win; dict-valued settings (middlewares, pipelines) are merged."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def crawl_settings(source: Any, options: SpiderOptions, region: Region, *, db_path: str,
                   run_id: int | None, jobdir: str | None, http_cache_dir: str | None,
                   throttle: bool, log_file: str | None,
                   progress_file: str | None) -> dict[str, Any]:
    """Politeness, robustness and our pipelines; the gate's settings are merged on top."""
    delay = 1.0 / source.max_requests_per_second
    settings: dict[str, Any] = {
        "BOT_NAME": "horeca",
        "USER_AGENT": source.effective_user_agent,
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": 16,
        # Scrapy starts this many tasks (plus one) for every response's output; our
        # pipelines are synchronous, so more than one only costs CPU.
        "CONCURRENT_ITEMS": 1,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,  # one request at a time per site
        "DOWNLOAD_DELAY": delay,
        "AUTOTHROTTLE_ENABLED": throttle,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_TIMEOUT": 30,
        "RETRY_ENABLED": False,  # replaced by RetryAfterMiddleware
        "HORECA_RETRY_TIMES": 3,
        "DOWNLOADER_MIDDLEWARES_BASE": _components_base(
            "DOWNLOADER_MIDDLEWARES", UNUSED_DOWNLOADER_MIDDLEWARES,
            REPLACED_DOWNLOADER_MIDDLEWARES),
        "DOWNLOADER_MIDDLEWARES": {"horeca.spiders.middlewares.RetryAfterMiddleware": 550},
        "SPIDER_MIDDLEWARES_BASE": _components_base("SPIDER_MIDDLEWARES",
                                                    UNUSED_SPIDER_MIDDLEWARES),
        "ITEM_PIPELINES": dict(ITEM_PIPELINES),
        "EXTENSIONS_BASE": _components_base("EXTENSIONS", UNUSED_EXTENSIONS),
        "EXTENSIONS": {"horeca.spiders.crawl_process.ProgressFile": 500},
        "STATS_CLASS": STATS_CLASS,
        # Scrapy re-reads a callback's source code to warn about `return` in generators;
        # its cache is keyed by bound methods, which are new objects on every response.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        # Every request of a crawl goes to the legal gate's one download slot, so
        # Scrapy's default queue, which balances requests across download slots, only
        # adds work per request. Part of the job fingerprint: saved queues differ.
        "SCHEDULER_PRIORITY_QUEUE": SCHEDULER_PRIORITY_QUEUE,
        # Scrapy's pickle LIFO queue in JOBDIR, with its newest requests held in memory
        # until the crawl stops (same files, same resume; see spiders/queues.py).
        "SCHEDULER_DISK_QUEUE": "horeca.spiders.queues.BufferedLifoDiskQueue",
        "LOG_FORMATTER": "horeca.spiders.pipelines.QuietDropsLogFormatter",
        "LOG_LEVEL": "INFO",
        "LOGSTATS_INTERVAL": 30.0,
        "TELNETCONSOLE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "REACTOR_THREADPOOL_MAXSIZE": 4,
        "HORECA_DB_PATH": db_path,
        "HORECA_RUN_ID": run_id or 0,
        "HORECA_REGION_NAME": region.name,
        "HORECA_DEFAULT_COUNTRY": region.country or "BE",
    }
    if log_file:
        settings["LOG_FILE"] = log_file
        settings["LOG_FILE_APPEND"] = True
    if progress_file:
        settings["HORECA_PROGRESS_FILE"] = progress_file
    if jobdir:
        settings["JOBDIR"] = jobdir
    if http_cache_dir:
        settings.update({
            "HTTPCACHE_ENABLED": True,
            "HTTPCACHE_DIR": http_cache_dir,
            "HTTPCACHE_EXPIRATION_SECS": 0,
            "HTTPCACHE_IGNORE_HTTP_CODES": [408, 429, 500, 502, 503, 504],
        })
    return settings


class ProgressFile:
    """Writes pages / items / kept to a small JSON file twice a second, for the parent's
    progress bar (on a timer: a signal handler would run for every page and item)."""

    INTERVAL_S = 0.5

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.path = crawler.settings.get("HORECA_PROGRESS_FILE")
        self.task: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressFile:
        ext = cls(crawler)
        if ext.path:
            crawler.signals.connect(ext.start, signal=signals.spider_opened)
            crawler.signals.connect(ext.stop, signal=signals.spider_closed)
        return ext

    def start(self, *args: Any, **kwargs: Any) -> None:
        from twisted.internet.task import LoopingCall

        self.task = LoopingCall(self.write)
        self.task.start(self.INTERVAL_S, now=False)

    def stop(self, *args: Any, **kwargs: Any) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()

    def write(self) -> None:
        if self.crawler.stats is None:
            return
        get = self.crawler.stats.get_value
        data = {"pages": get("downloader/response_count", 0),
                "items": get("horeca/items/yielded", 0), "kept": get("horeca/kept", 0)}
        tmp = Path(self.path + ".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)


def job_fingerprint(source: Any, region: Region) -> str:
    """What must not change for a saved job to be resumed."""
    data = {"spider": source.spider, "start_urls": list(source.start_urls),
            "options": source.spider_options, "region": region_to_dict(region),
            "queue": SCHEDULER_PRIORITY_QUEUE}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def prepare_jobdir(jobdir: Path, fingerprint: str) -> dict[str, Any]:
    """Keep a saved job only when it belongs to the same crawl; return its saved counters."""
    job_file = jobdir / JOB_FILE
    if jobdir.exists():
        try:
            saved = json.loads(job_file.read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("fingerprint") != fingerprint:
            shutil.rmtree(jobdir)
    jobdir.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps({"fingerprint": fingerprint}))
    partial = jobdir / PARTIAL_FILE
    if partial.exists():
        try:
            return json.loads(partial.read_text())
        except ValueError:
            return {}
    return {}


@dataclass
class _Prepared:
    """One source's crawl, ready to start: its spider, settings and saved job state."""

    spec: dict[str, Any]
    spider_cls: type[Any]
    kwargs: dict[str, Any]
    settings: dict[str, Any]
    jobdir: Path | None
    partial: dict[str, Any]
    crawler: Crawler | None = None
    started: float = 0.0
    written: bool = False


def prepare(spec: dict[str, Any]) -> _Prepared:
    """Read the source, check its options, set up its job folder, build its settings."""
    from horeca.legal_gate.config import load_sources
    from horeca.legal_gate.middleware import gate_settings

    source = load_sources(spec["sources_path"]).get(spec["source"])
    options = parse_options(source.spider, source.spider_options, source=source.name,
                            path=source.path)
    region = region_from_dict(spec["region"])
    jobdir = Path(spec["jobdir"]) if spec.get("jobdir") else None
    partial: dict[str, Any] = {}
    if jobdir is not None:
        partial = prepare_jobdir(jobdir, job_fingerprint(source, region))
    settings = crawl_settings(
        source, options, region, db_path=spec["db_path"], run_id=spec.get("run_id"),
        jobdir=str(jobdir) if jobdir else None, http_cache_dir=spec.get("http_cache_dir"),
        throttle=spec.get("throttle", True), log_file=spec.get("log_file"),
        progress_file=spec.get("progress_file"))
    settings = merge_settings(settings, gate_settings(source, proxy=spec.get("proxy")))
    settings = merge_settings(settings, spec.get("settings") or {})
    # Several crawls share this process: each gets its own spider class whose
    # custom_settings carry the whole of its settings (they outrank the process's).
    base = SPIDER_KINDS[source.spider]
    spider_cls = type(base.__name__, (base,), {"custom_settings": settings})
    return _Prepared(spec=spec, spider_cls=spider_cls, settings=settings, jobdir=jobdir,
                     partial=partial,
                     kwargs={"source": source, "region": region, "options": options})


def crawl_result(crawl: _Prepared, error: str | None = None) -> dict[str, Any]:
    """Finish reason and counters (added to a resumed job's), and the job folder's fate:
    removed when the crawl finished, kept with the counters so far otherwise."""
    if error is not None:
        return {"finish_reason": None, "error": error}
    crawler = crawl.crawler
    stats = crawler.stats.get_stats() if crawler and crawler.stats is not None else {}
    finish_reason = stats.get("finish_reason")
    partial = crawl.partial
    total = merge_stats(partial.get("stats", {}), stats)
    segments = int(partial.get("segments", 0)) + 1
    duration = time.monotonic() - crawl.started + float(partial.get("duration_s", 0.0))
    if stats.get(STORE_FAILED):
        # Pages whose listings were lost are marked seen in the job: only a crawl from
        # the start can get them back.
        if crawl.jobdir is not None:
            shutil.rmtree(crawl.jobdir, ignore_errors=True)
        return {"finish_reason": finish_reason, "stats": total, "pid": os.getpid(),
                "error": f"listings could not be written to the store "
                         f"({stats[STORE_FAILED]}); crawl again"}
    if crawl.jobdir is not None:
        if finish_reason == "finished":
            shutil.rmtree(crawl.jobdir, ignore_errors=True)
        else:
            (crawl.jobdir / PARTIAL_FILE).write_text(json.dumps(
                {"stats": total, "segments": segments, "duration_s": duration}))
    return {"finish_reason": finish_reason, "stats": total, "segments": segments,
            "duration_s": duration, "pid": os.getpid()}


def write_result(path: str | Path, result: dict[str, Any]) -> None:
    """Atomically: the parent polls for this file while the worker goes on."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(result, default=str))
    tmp.replace(path)


def claim(spec: dict[str, Any], claims_dir: str | None) -> bool:
    """Take a source for this worker; False when another worker took it first."""
    if claims_dir is None:
        return True
    try:
        fd = os.open(Path(claims_dir) / f"{spec['source']}.claim",
                     os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:  # the parent fails this crawl if this pid dies
        out.write(str(os.getpid()))
    return True


def _process_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings Scrapy reads once per process (logging, reactor, thread pool)."""
    keys = ("BOT_NAME", "LOG_LEVEL", "LOG_FILE", "LOG_FILE_APPEND", "LOG_FORMATTER",
            "TELNETCONSOLE_ENABLED", "REACTOR_THREADPOOL_MAXSIZE", "TWISTED_REACTOR")
    return {k: settings[k] for k in keys if k in settings}


def quieter_collector() -> None:
    """Keep Python's cyclic collector off the objects that live as long as the worker.

    After start-up (Python, Scrapy, Twisted, the first crawler: several hundred thousand
    objects) those objects move to the permanent generation, so the collections a crawl
    triggers no longer walk them again, and young collections run every 10,000 rather
    than 700 allocations. Cycles (Twisted failures, Deferreds) are still collected;
    start-up garbage is frozen with the rest rather than paying a full collection here.
    """
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


class _Process(CrawlerProcess):
    """CrawlerProcess that remembers a Ctrl-C / SIGTERM, so no further crawl starts."""

    stopping = False

    def _signal_shutdown(self, signum: int, frame: Any) -> None:
        self.stopping = True
        super()._signal_shutdown(signum, frame)


class Worker:
    """Crawls sources one after another on one Twisted reactor, in this process.

    Python, Scrapy and Twisted start once per worker instead of once per source. With
    `claims_dir`, several workers share one list of sources: each takes the next source
    nobody has claimed yet, so the work balances itself. Each crawl writes its result
    file as soon as it ends; Ctrl-C (SIGINT) stops the running crawl gracefully and
    starts no other.
    """

    def __init__(self, specs: list[dict[str, Any]], claims_dir: str | None = None) -> None:
        self.specs = list(specs)
        self.claims_dir = claims_dir
        self.process: _Process | None = None
        self.crawls: list[_Prepared] = []

    def _next(self) -> _Prepared | None:
        """The next source this worker claims and can prepare (errors are its result)."""
        while self.specs and not (self.process and self.process.stopping):
            spec = self.specs.pop(0)
            if not claim(spec, self.claims_dir):
                continue
            try:
                return prepare(spec)
            except Exception as err:  # reported by the parent as a failed crawl
                write_result(spec["result_path"], {
                    "finish_reason": None, "error": f"{type(err).__name__}: {err}"})
        return None

    def _launch(self, crawl: _Prepared) -> None:
        assert self.process is not None
        # Scrapy filters log levels in its handler, after building every record; debug
        # records (two per page) are not even built this way.
        logging.getLogger("scrapy").setLevel(crawl.settings.get("LOG_LEVEL", "INFO"))
        crawl.crawler = self.process.create_crawler(crawl.spider_cls)
        crawl.started = time.monotonic()
        self.crawls.append(crawl)
        done = self.process.crawl(crawl.crawler, **crawl.kwargs)
        done.addBoth(self._finished, crawl)

    def _write(self, crawl: _Prepared, error: str | None = None) -> None:
        if not crawl.written:
            crawl.written = True
            write_result(crawl.spec["result_path"], crawl_result(crawl, error))

    def _finished(self, outcome: Any, crawl: _Prepared) -> None:
        from twisted.python.failure import Failure

        error = None
        if isinstance(outcome, Failure):
            error = f"{outcome.type.__name__}: {outcome.value}"
            logger.error("crawl of %s failed: %s", crawl.spec["source"], error)
        self._write(crawl, error)
        following = self._next()
        if following is None:
            self._stop_reactor()
        else:  # once the finished crawler's own callbacks are done
            from twisted.internet import reactor

            reactor.callLater(0, self._launch, following)  # type: ignore[attr-defined]

    @staticmethod
    def _stop_reactor() -> None:
        from twisted.internet import reactor

        with contextlib.suppress(RuntimeError):  # already stopping
            reactor.stop()  # type: ignore[attr-defined]

    def run(self) -> None:
        first = self._next()
        if first is None:
            return
        self.process = _Process(_process_settings(first.settings))
        self._launch(first)  # before start(): the first crawler installs the reactor
        quieter_collector()
        self.process.start(stop_after_crawl=False)
        for crawl in self.crawls:  # stopped with the reactor (a second Ctrl-C)
            self._write(crawl)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Crawl one source as the spec says, in this process; return its result."""
    Worker([spec]).run()
    return json.loads(Path(spec["result_path"]).read_text())


def main(argv: list[str]) -> int:
    """`python -m horeca.spiders.run_one SPEC.json`: a worker spec
    `{"crawls": [spec, ...], "claims_dir": ...}` or one crawl's spec."""
    spec = json.loads(Path(argv[0]).read_text())
    specs = spec.get("crawls", [spec])
    try:
        Worker(specs, spec.get("claims_dir")).run()
    except Exception as err:  # the crawls without a result are reported as failed
        logger.exception("crawl worker failed: %s", err)
        return 1
    return 0
