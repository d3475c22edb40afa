"""Crawling sources: the library entry point behind `horeca crawl`, `horeca run` and the demo.

`crawl_sources` checks every selected source's spider options, then for each source runs
the legal gate's preflight (refusals are reported, audited by the gate, and stop nothing
else), runs the crawl in a subprocess (`horeca.spiders.run_one`), builds, flags, stores
and audits the crawl report.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
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
    store_report,
)
from horeca.store import open_db, transaction
from horeca.store.runs import finish_run, start_run

WORK_DIR = ".horeca"

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


def _wait(proc: subprocess.Popen[bytes], progress_file: Path, name: str,
          progress: ProgressCallback | None) -> None:
    """Wait for the crawl; on Ctrl-C, ask it once to stop gracefully (so it can resume)."""
    interrupted = False
    while True:
        try:
            proc.wait(timeout=0.25)
            break
        except subprocess.TimeoutExpired:
            if progress is not None and progress_file.exists():
                with contextlib.suppress(OSError, ValueError):
                    progress(name, json.loads(progress_file.read_text()))
        except KeyboardInterrupt:
            # a second Ctrl-C forces the child to stop at once, as Scrapy does
            proc.send_signal(signal.SIGINT)
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt


def _run_child(spec: dict[str, Any], tmp: Path, name: str,
               progress: ProgressCallback | None) -> tuple[dict[str, Any], bool]:
    spec_path = tmp / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    # Own session: a terminal Ctrl-C reaches only us, and we forward exactly one SIGINT.
    proc = subprocess.Popen([sys.executable, "-m", "horeca.spiders.run_one", str(spec_path)],
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    interrupted = False
    try:
        _wait(proc, Path(spec["progress_file"]), name, progress)
    except KeyboardInterrupt:
        interrupted = True
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
    result_path = Path(spec["result_path"])
    if result_path.exists():
        try:
            return json.loads(result_path.read_text()), interrupted
        except ValueError:
            pass
    return {"finish_reason": None,
            "error": f"the crawl process exited with status {proc.returncode}"}, interrupted


def _refused(source: str, region: Region, reason: str, status: str = "refused") -> CrawlReport:
    return CrawlReport(source=source, status=status, reason=reason, region=region.name,
                       segments=0)


def crawl_one(db: sqlite_utils.Database, db_path: Path, sources_path: Path, source: Any,
              region: Region, *, run_id: int, proxy: str | None, actor: str | None,
              purpose: str | None, http_cache: bool, throttle: bool,
              settings: dict[str, Any] | None, progress: ProgressCallback | None,
              tmp: Path) -> CrawlReport:
    """Gate, crawl in a subprocess, report. Returns the stored report."""
    from horeca.legal_gate.checks import CrawlRefused, gate_crawl

    if source.spider == "overpass" and region.bbox is None:
        report = _refused(source.name, region, "the overpass spider needs a region with a "
                          "bounding box (pass --bbox or a named region)", status="skipped")
        store_report(db, run_id, report)
        return report
    try:
        gate_crawl(db, source, actor=actor, purpose=purpose, proxy=proxy)
    except CrawlRefused as refusal:
        report = _refused(source.name, region, getattr(refusal, "bare_message", str(refusal)))
        store_report(db, run_id, report)
        return report

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
        "settings": settings or {},
    }
    result, interrupted = _run_child(spec, tmp, source.name, progress)
    if result.get("error"):
        report = CrawlReport(source=source.name, status="failed", region=region.name,
                             reason=f"{result['error']} (log: {log_file})")
    else:
        report = build_report(source.name, result.get("stats") or {},
                              finish_reason=result.get("finish_reason"), region=region.name,
                              duration_s=float(result.get("duration_s") or 0.0),
                              segments=int(result.get("segments") or 1))
        if report.status == "interrupted":
            report.reason = (f"{report.reason}: stopped before the end; run the same crawl "
                             "again to resume")
        report.flags = flags_against(report, previous_report(db, source.name, region.name,
                                                             before_run_id=run_id))
    _store_and_audit(db, run_id, report, actor=actor, purpose=purpose)
    if interrupted:
        raise KeyboardInterrupt
    return report


def _store_and_audit(db: sqlite_utils.Database, run_id: int, report: CrawlReport, *,
                     actor: str | None, purpose: str | None) -> None:
    from horeca.legal_gate.audit import record

    with transaction(db):
        store_report(db, run_id, report)
        record(db, "crawl", actor=actor, source=report.source, target=report.region,
               rows=report.kept, purpose=purpose,
               details={"run_id": run_id, "status": report.status, "pages": report.pages,
                        "new": report.new, "updated": report.updated,
                        "dropped": report.dropped, "flags": report.flags})


def check_spider_options(sources: Iterable[Any]) -> None:
    """Every selected source's spider options, before anything is fetched."""
    for source in sources:
        parse_options(source.spider, source.spider_options, source=source.name,
                      path=source.path)


def crawl_sources(db_path: str | Path, sources_path: str | Path, names: Iterable[str] | None,
                  region: Region, proxy: str | None = None, *, run_id: int | None = None,
                  actor: str | None = None, purpose: str | None = None,
                  http_cache: bool = False, throttle: bool = True,
                  settings: dict[str, Any] | None = None,
                  progress: ProgressCallback | None = None) -> list[CrawlReport]:
    """Crawl the named sources (every source in the file when `names` is None).

    Sources the gate refuses come back as reports with status "refused" and the reason;
    the others are crawled one after another, each in its own subprocess. `settings`
    are extra Scrapy settings (tests, benchmarks). `run_id` ties listings and reports to
    the caller's `runs` row; without one a "crawl" run is recorded here.
    """
    from horeca.legal_gate.config import load_sources

    db_path = Path(db_path)
    config = load_sources(sources_path)
    sources = select_sources(config, names)
    check_spider_options(sources)
    db = open_db(db_path)
    own_run = run_id is None
    if own_run:
        run_id = start_run(db, "crawl", {"sources": [s.name for s in sources],
                                         "region": region.name}, analyst=actor, purpose=purpose)
    assert run_id is not None
    reports: list[CrawlReport] = []
    status = "failed"
    try:
        with tempfile.TemporaryDirectory(prefix="horeca-crawl-") as tmp:
            for source in sources:
                reports.append(crawl_one(
                    db, db_path, Path(config.path), source, region, run_id=run_id,
                    proxy=proxy, actor=actor, purpose=purpose, http_cache=http_cache,
                    throttle=throttle, settings=settings, progress=progress, tmp=Path(tmp)))
        status = "ok"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if own_run:
            finish_run(db, run_id, status, {r.source: r.kept for r in reports})
    return reports

