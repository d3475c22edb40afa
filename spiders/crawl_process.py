"""One crawl of one source in this process (started as `python -m horeca.spiders.run_one`).

Twisted's reactor cannot be restarted inside a process, and `horeca run`, the demo and the
tests crawl several times, so the parent (`horeca.spiders.runner`) starts this module in
a subprocess for each source. The spec (JSON) names the database, sources file, source,
region, proxy, run id and folders; the result (JSON: finish reason, counters, segments)
is written to `spec["result_path"]`.

Resumable: Scrapy keeps the request queue and seen-requests in JOBDIR. An interrupted
crawl (Ctrl-C, SIGTERM, a close-spider limit) leaves JOBDIR and this crawl's counters
there; the next crawl of the same source, region and options continues where it stopped
and adds its counters to the saved ones. A finished crawl removes JOBDIR, so the next
crawl starts afresh (and refreshes `last_seen` of every listing it sees again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from horeca.region import Region
from horeca.spiders.kinds import SPIDER_KINDS
from horeca.spiders.options import SpiderOptions, parse_options
from horeca.spiders.pipelines import ITEM_PIPELINES
from horeca.spiders.report import merge_stats
from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcess

JOB_FILE = "horeca-job.json"
SCHEDULER_PRIORITY_QUEUE = "scrapy.pqueues.ScrapyPriorityQueue"
# Scrapy components a listing crawl never uses; each costs CPU per request or start-up.
UNUSED_DOWNLOADER_MIDDLEWARES: dict[str, None] = {
    # the legal gate, first in the chain, already drops requests outside allowed_domains
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
}
UNUSED_SPIDER_MIDDLEWARES: dict[str, None] = {
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,  # no depth limit: stats only
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,  # Scrapy >= 2.19
}
UNUSED_EXTENSIONS: dict[str, None] = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.memdebug.MemoryDebugger": None,
    "scrapy.extensions.feedexport.FeedExporter": None,
    "scrapy.extensions.remote_control.RemoteControl": None,  # Scrapy >= 2.19; imports aiohttp
}
PARTIAL_FILE = "horeca-partial.json"


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
        # Scrapy starts this many tasks for every response's output; our pipelines are
        # synchronous, so more only costs CPU.
        "CONCURRENT_ITEMS": 4,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,  # one request at a time per site
        "DOWNLOAD_DELAY": delay,
        "AUTOTHROTTLE_ENABLED": throttle,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_TIMEOUT": 30,
        "RETRY_ENABLED": False,  # replaced by RetryAfterMiddleware
        "HORECA_RETRY_TIMES": 3,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "horeca.spiders.middlewares.RetryAfterMiddleware": 550,
            **UNUSED_DOWNLOADER_MIDDLEWARES,
        },
        "SPIDER_MIDDLEWARES": dict(UNUSED_SPIDER_MIDDLEWARES),
        "ITEM_PIPELINES": dict(ITEM_PIPELINES),
        "EXTENSIONS": {"horeca.spiders.crawl_process.ProgressFile": 500,
                       **UNUSED_EXTENSIONS},
        # Scrapy re-reads a callback's source code to warn about `return` in generators;
        # its cache is keyed by bound methods, which are new objects on every response.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        # Every request of a crawl goes to the legal gate's one download slot, so
        # Scrapy's default queue, which balances requests across download slots, only
        # adds work per request. Part of the job fingerprint: saved queues differ.
        "SCHEDULER_PRIORITY_QUEUE": SCHEDULER_PRIORITY_QUEUE,
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
    """Writes pages / items / kept to a small JSON file at most twice a second, for the
    parent's progress bar."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.path = crawler.settings.get("HORECA_PROGRESS_FILE")
        self.last = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressFile:
        ext = cls(crawler)
        if ext.path:
            crawler.signals.connect(ext.tick, signal=signals.response_received)
            crawler.signals.connect(ext.tick, signal=signals.item_scraped)
        return ext

    def tick(self, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        if now - self.last < 0.5 or self.crawler.stats is None:
            return
        self.last = now
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


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Crawl one source as the spec says; return finish reason and counters."""
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

    # Scrapy filters log levels in its handler, after building every record; debug
    # records (two per page) are not even built this way.
    logging.getLogger("scrapy").setLevel(settings.get("LOG_LEVEL", "INFO"))
    started = time.monotonic()
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(SPIDER_KINDS[source.spider])
    process.crawl(crawler, source=source, region=region, options=options)
    process.start()
    duration = time.monotonic() - started

    stats = crawler.stats.get_stats() if crawler.stats is not None else {}
    finish_reason = stats.get("finish_reason")
    total = merge_stats(partial.get("stats", {}), stats)
    segments = int(partial.get("segments", 0)) + 1
    duration += float(partial.get("duration_s", 0.0))
    if jobdir is not None:
        if finish_reason == "finished":
            shutil.rmtree(jobdir, ignore_errors=True)
        else:
            (jobdir / PARTIAL_FILE).write_text(json.dumps(
                {"stats": total, "segments": segments, "duration_s": duration}))
    return {"finish_reason": finish_reason, "stats": total, "segments": segments,
            "duration_s": duration}


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    result_path = Path(spec["result_path"])
    try:
        result = run(spec)
    except Exception as err:  # reported by the parent as a failed crawl, with the log
        import traceback

        result = {"finish_reason": None, "error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc()}
        result_path.write_text(json.dumps(result))
        return 1
    result_path.write_text(json.dumps(result, default=str))
    return 0


