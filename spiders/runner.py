"""Crawling sources: the library entry point behind `horeca crawl`, `horeca run` and the demo.

`crawl_sources` checks every selected source's spider options, then for each source runs
the legal gate's preflight (a refusal is reported, audited by the gate, and stops nothing
else), runs the crawl in a subprocess (`python -m horeca.spiders.run_one`), and builds,
flags, stores and audits its crawl report. Sources are different sites, so up to
`parallel` of them may be crawled at the same time; each site still sees one request at
a time at the rate its review allows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from horeca.errors import UserError
from horeca.region import Region
from horeca.spiders.crawl_process import region_to_dict
from horeca.spiders.options import parse_options
from horeca.spiders.report import (
    CrawlReport,
    build_report,
    flags_against,
    previous_report,
    region_key,
    store_report,
)
from horeca.store import open_db, transaction
from horeca.store.runs import finish_run, start_run

WORK_DIR = ".horeca"
POLL_S = 0.05  # how soon a finished crawl is reported; a poll costs a few system calls

# progress(source_name, {"pages": n, "items": n, "kept": n}) while a crawl runs
ProgressCallback = Callable[[str, dict[str, int]], None]


def work_dir(db_path: str | Path) -> Path:
    """Folder beside the database for jobs, HTTP cache and logs."""
    return Path(db_path).resolve().parent / WORK_DIR


def select_sources(config: Any, names: Iterable[str] | None) -> list[Any]:
    """The sources to crawl: the named ones (in order), or every source when None."""
    if names is None:
        return list(config)
    chosen = []
    for name in names:
        source = config.get(name)  # UserError naming the known sources
        if source not in chosen:
            chosen.append(source)
    if not chosen:
        raise UserError("no source to crawl", path="horeca crawl",
                        fix="name sources (horeca crawl gustoreviews) or pass --all")
    return chosen


def check_spider_options(sources: Iterable[Any]) -> None:
    """Every selected source's spider options, before anything is fetched."""
    for source in sources:
        parse_options(source.spider, source.spider_options, source=source.name,
                      path=source.path)


@dataclass
class _Crawl:
    """One source's crawl: its spec, and what the worker that claimed it left behind."""

    source: Any
    spec: dict[str, Any]
    log_file: Path

    @property
    def _claim_file(self) -> Path:
        return Path(self.spec["claims_dir"]) / f"{self.source.name}.claim"

    def claimed_by(self) -> int | None:
        """The pid of the worker that took this source, None while unclaimed."""
        with contextlib.suppress(OSError, ValueError):
            return int(self._claim_file.read_text() or 0)
        return None

    def has_result(self) -> bool:
        return Path(self.spec["result_path"]).exists()

    def progress(self) -> dict[str, int] | None:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(Path(self.spec["progress_file"]).read_text())
        return None

    def result(self, exit_code: int | None = None) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(Path(self.spec["result_path"]).read_text())
        return {"finish_reason": None,
                "error": f"the crawl process exited with status {exit_code}"}


def _start_worker(crawls: list[_Crawl], tmp: Path, index: int) -> subprocess.Popen[bytes]:
    """A worker process that crawls the sources of `crawls` nobody has claimed yet."""
    spec_path = tmp / f"worker-{index}.json"
    spec_path.write_text(json.dumps({"crawls": [c.spec for c in crawls],
                                     "claims_dir": str(tmp / "claims")}))
    # Own session: a terminal Ctrl-C reaches only the parent, which forwards exactly
    # one SIGINT (Scrapy's graceful stop); a second one would force an unclean stop.
    return subprocess.Popen(
        [sys.executable, "-m", "horeca.spiders.run_one", str(spec_path)],
        stdin=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _skipped(source: str, region: Region, reason: str, status: str) -> CrawlReport:
    return CrawlReport(source=source, status=status, reason=reason, region=region.name,
                       region_key=region_key(region), segments=0)


def _prepare(db: sqlite_utils.Database, db_path: Path, sources_path: Path, source: Any,
             region: Region, *, run_id: int, proxy: str | None, actor: str | None,
             purpose: str | None, http_cache: bool, throttle: bool,
             settings: dict[str, Any] | None, tmp: Path) -> CrawlReport | _Crawl:
    """The gate's preflight; a report when the source is not crawled, else its crawl."""
    from horeca.legal_gate.checks import CrawlRefused, gate_crawl

    if source.spider == "overpass" and region.bbox is None:
        return _skipped(source.name, region, "the overpass spider needs a region with a "
                        "bounding box (pass --bbox or a named region)", "skipped")
    try:
        gate_crawl(db, source, actor=actor, purpose=purpose, proxy=proxy)
    except CrawlRefused as refusal:
        return _skipped(source.name, region, refusal.bare_message, "refused")
    work = work_dir(db_path)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    log_file = work / "logs" / f"{source.name}.log"
    spec = {
        "db_path": str(db_path), "sources_path": str(sources_path), "source": source.name,
        "region": region_to_dict(region), "proxy": proxy, "run_id": run_id,
        "jobdir": str(work / "jobs" / source.name),
        "http_cache_dir": str(work / "httpcache") if http_cache else None,
        "throttle": throttle, "log_file": str(log_file),
        "progress_file": str(tmp / f"{source.name}.progress.json"),
        "result_path": str(tmp / f"{source.name}.result.json"),
        "claims_dir": str(tmp / "claims"),
        "settings": settings or {},
    }
    return _Crawl(source=source, spec=spec, log_file=log_file)


def _finish(db: sqlite_utils.Database, crawl: _Crawl, region: Region,
            run_id: int, exit_code: int | None = None) -> CrawlReport:
    result = crawl.result(exit_code)
    name = crawl.source.name
    if result.get("error"):
        return CrawlReport(source=name, status="failed", region=region.name,
                           region_key=region_key(region),
                           reason=f"{result['error']} (log: {crawl.log_file})")
    report = build_report(name, result.get("stats") or {},
                          finish_reason=result.get("finish_reason"), region=region.name,
                          region_key=region_key(region),
                          duration_s=float(result.get("duration_s") or 0.0),
                          segments=int(result.get("segments") or 1))
    if report.status == "interrupted":
        report.reason = (f"{report.reason}: stopped before the end; run the same crawl "
                         "again to resume")
    report.flags = flags_against(report, previous_report(db, name, region_key(region),
                                                         before_run_id=run_id))
    return report


def _store_and_audit(db: sqlite_utils.Database, run_id: int, report: CrawlReport, *,
                     actor: str | None, purpose: str | None) -> None:
    from horeca.legal_gate.audit import record

    with transaction(db):
        store_report(db, run_id, report)
        if report.status in {"refused", "skipped"}:
            return  # the gate audited the refusal; nothing was fetched
        record(db, "crawl", actor=actor, source=report.source, target=report.region,
               rows=report.kept, purpose=purpose,
               details={"run_id": run_id, "status": report.status, "pages": report.pages,
                        "new": report.new, "updated": report.updated,
                        "dropped": report.dropped, "flags": report.flags})


def _run_all(crawls: list[_Crawl], *, parallel: int, tmp: Path,
             progress: ProgressCallback | None,
             done: Callable[[_Crawl, int | None], None]) -> None:
    """Run the crawls in at most `parallel` worker processes; `done(crawl, exit_code)` is
    called as each crawl ends (exit_code: its worker's, when it died without a result).

    Workers take sources in order, each the next one nobody has claimed, so start-up is
    paid once per worker and the work balances itself. A worker that dies fails only
    the crawl it was running; another worker takes the rest. On Ctrl-C every worker gets
    one SIGINT (a graceful, resumable stop of its running crawl; it starts no other),
    the parent waits for them, reports the crawls that ran, and re-raises
    KeyboardInterrupt.
    """
    (tmp / "claims").mkdir(exist_ok=True)
    pending = list(crawls)
    workers = [_start_worker(crawls, tmp, i) for i in range(min(parallel, len(crawls)))]
    started = len(workers)
    max_workers = parallel + len(crawls)  # workers that die at start must not loop
    interrupted = False
    exit_code: int | None = None
    while pending or workers:  # workers are waited for (reaped) before returning
        try:
            time.sleep(POLL_S)
            for crawl in [c for c in pending if c.has_result()]:
                pending.remove(crawl)
                done(crawl, None)
            for worker in [w for w in workers if w.poll() is not None]:
                workers.remove(worker)
                exit_code = worker.returncode
                for crawl in [c for c in pending if c.claimed_by() == worker.pid
                              and not c.has_result()]:
                    pending.remove(crawl)
                    done(crawl, exit_code)
            unclaimed = [c for c in pending if c.claimed_by() is None]
            if unclaimed and not interrupted and len(workers) < parallel \
                    and started < max_workers:  # a worker died before the list was done
                for _ in range(min(parallel - len(workers), len(unclaimed))):
                    workers.append(_start_worker(crawls, tmp, started))
                    started += 1
            if not workers:
                break
            if progress is not None:
                for crawl in pending:
                    counts = crawl.progress() if crawl.claimed_by() else None
                    if counts is not None:
                        progress(crawl.source.name, counts)
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: stop at once
                for worker in workers:
                    worker.kill()
                continue
            interrupted = True
            for worker in workers:
                with contextlib.suppress(ProcessLookupError):
                    worker.send_signal(signal.SIGINT)
    for crawl in pending:  # no worker left to run them; after Ctrl-C, only those begun
        if crawl.has_result() or not interrupted or crawl.claimed_by() is not None:
            done(crawl, exit_code)
    if interrupted:
        raise KeyboardInterrupt


def crawl_sources(db_path: str | Path, sources_path: str | Path, names: Iterable[str] | None,
                  region: Region, proxy: str | None = None, *, run_id: int | None = None,
                  actor: str | None = None, purpose: str | None = None,
                  http_cache: bool = False, throttle: bool = True, parallel: int = 1,
                  settings: dict[str, Any] | None = None,
                  progress: ProgressCallback | None = None) -> list[CrawlReport]:
    """Crawl the named sources (every source in the file when `names` is None).

    Returns one report per source, in the order given: sources the gate refuses come back
    with status "refused" and the reason. `parallel` sources are crawled at once (each in
    its own process). `settings` are extra Scrapy settings (tests, benchmarks). `run_id`
    ties listings and reports to the caller's `runs` row; without one a "crawl" run is
    recorded here.
    """
    from horeca.legal_gate.config import load_sources

    db_path = Path(db_path)
    config = load_sources(sources_path)
    sources = select_sources(config, names)
    check_spider_options(sources)
    if parallel < 1:
        raise UserError("--parallel must be at least 1", path="--parallel", fix="e.g. 2")
    db = open_db(db_path)
    own_run = run_id is None
    if own_run:
        run_id = start_run(db, "crawl", {"sources": [s.name for s in sources],
                                         "region": region.name}, analyst=actor, purpose=purpose)
    assert run_id is not None
    reports: dict[str, CrawlReport] = {}
    status = "failed"

    def done(crawl: _Crawl, exit_code: int | None) -> None:
        report = _finish(db, crawl, region, run_id, exit_code)
        _store_and_audit(db, run_id, report, actor=actor, purpose=purpose)
        reports[report.source] = report

    try:
        with tempfile.TemporaryDirectory(prefix="horeca-crawl-") as tmp:
            crawls: list[_Crawl] = []
            for source in sources:
                prepared = _prepare(db, db_path, Path(config.path), source, region,
                                    run_id=run_id, proxy=proxy, actor=actor, purpose=purpose,
                                    http_cache=http_cache, throttle=throttle,
                                    settings=settings, tmp=Path(tmp))
                if isinstance(prepared, CrawlReport):
                    _store_and_audit(db, run_id, prepared, actor=actor, purpose=purpose)
                    reports[source.name] = prepared
                else:
                    crawls.append(prepared)
            _run_all(crawls, parallel=parallel, tmp=Path(tmp), progress=progress, done=done)
        status = "ok"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if own_run:
            finish_run(db, run_id, status, {name: r.kept for name, r in reports.items()})
    return [reports[s.name] for s in sources if s.name in reports]
