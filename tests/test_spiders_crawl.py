"""Real Scrapy crawls (in a subprocess, as in production) against a programmable site
served on 127.0.0.1 as a forward proxy: pagination, duplicates across pages, validation
and region drops, re-crawl idempotence, sitemaps, 429 + Retry-After, 500 until giving up,
resume after an interruption, coverage collapse flagged, refusal by the gate, the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from horeca.cli import app
from horeca.legal_gate.checks import terms_sha256
from horeca.region import resolve_region
from horeca.spiders.crawl_process import region_to_dict
from horeca.spiders.runner import crawl_sources, work_dir
from horeca.store import open_db

BRUSSELS = resolve_region("brussels")
HOST = "resto.example"
TERMS = b"<html><body><h1>Terms</h1><p>Public bodies may read business data.</p></body></html>"
FAST = {"HORECA_RETRY_BACKOFF_BASE": 0.05, "HORECA_RETRY_TIMES": 2, "DOWNLOAD_TIMEOUT": 5}

Reply = tuple[int, dict[str, str], bytes]


class Site:
    """Pages by (host, path); every hit is recorded with its time."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[int], Reply]] = {}
        self.hits: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    def page(self, path: str, body: str | bytes, host: str = HOST, status: int = 200,
             headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[(host, path)] = lambda _n: (status, headers or {}, data)

    def dynamic(self, path: str, reply: Callable[[int], Reply], host: str = HOST) -> None:
        self.routes[(host, path)] = reply

    def count(self, path: str, host: str = HOST) -> int:
        return len(self.hits[(host, path)])

    def reply(self, host: str, path: str) -> Reply:
        with self.lock:
            self.hits[(host, path)].append(time.monotonic())
            n = len(self.hits[(host, path)])
        if (host, path) in self.routes:
            return self.routes[(host, path)](n)
        if path == "/robots.txt":
            return 200, {}, b"User-agent: *\nDisallow: /private/\n"
        if path == "/terms/":
            return 200, {}, TERMS
        return 404, {}, b"not found"


@contextmanager
def serve(site: Site) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            host = parts.hostname or self.headers.get("Host", "")
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            status, headers, body = site.reply(host, path)
            self.send_response(status)
            headers = {"Content-Type": "text/html; charset=utf-8", **headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def place(pid: int, name: str | None, *, postcode: str = "1000", phone: str | None = "02 511 11 11",
          website: str | None = "www.place{pid}.be") -> str:
    node: dict = {"@context": "https://schema.org", "@type": "Restaurant",
                  "url": f"http://{HOST}/place/p-{pid}/",
                  "address": {"@type": "PostalAddress", "streetAddress": f"Rue Haute {pid}",
                              "postalCode": postcode, "addressLocality": "Bruxelles"},
                  "geo": {"latitude": 50.84, "longitude": 4.35},
                  "aggregateRating": {"ratingValue": 4, "reviewCount": pid},
                  "review": [{"author": {"name": "Jan Peeters"}, "reviewBody": "private text"}]}
    if name is not None:
        node["name"] = name
    if phone:
        node["telephone"] = phone
    if website:
        node["sameAs"] = website.format(pid=pid)
    return ("<html><head><script type='application/ld+json'>" + json.dumps(node)
            + "</script></head><body><p>Jan Peeters: private text</p></body></html>")


def listing_page(links: list[str], next_href: str | None) -> str:
    anchors = "".join(f'<a href="{href}">x</a>' for href in links)
    nxt = f'<a class="next" href="{next_href}">next</a>' if next_href else ""
    return (f"<html><body>{anchors}{nxt}<a href='/private/place/p-99/'>p</a>"
            "<a href='http://elsewhere.example/place/p-98/'>o</a></body></html>")


def write_sources(path: Path, entries: dict[str, dict]) -> Path:
    digest = terms_sha256(TERMS, "text/html; charset=utf-8")
    lines = ['[defaults]', 'user_agent = "horeca-test/0.1 (+mailto:t@inspection.example)"',
             "max_requests_per_second = 500.0",
             'allowed_fields = ["name", "address", "phone", "website", "geo", "category", '
             '"review_count", "rating"]']
    for name, entry in entries.items():
        lines += [f"[sources.{name}]", f'spider = "{entry.get("spider", "structured")}"',
                  f'status = "{entry.get("status", "approved")}"',
                  f'allowed_domains = ["{HOST}"]',
                  f"start_urls = {json.dumps(entry['start_urls'])}",
                  'reviewer = "A. Reviewer"', "reviewed_on = 2026-10-01",
                  'legal_basis = "test"', 'purpose = "test"',
                  f'terms_url = "http://{HOST}/terms/"', f'terms_sha256 = "{digest}"']
        options = entry.get("options", {})
        if options:
            lines.append(f"[sources.{name}.spider_options]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in options.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


PAGINATED = {"detail_url_pattern": r"/place/p-(?P<id>\d+)/", "next_page": "a.next::attr(href)"}


def paginated_site(site: Site, n_pages: int = 3, per_page: int = 4) -> list[int]:
    """n_pages listing pages; every detail page also linked, with a query, from the next
    page (a duplicate the request filter cannot see)."""
    ids = list(range(1, n_pages * per_page + 1))
    for p in range(n_pages):
        mine = ids[p * per_page:(p + 1) * per_page]
        links = [f"/place/p-{i}/" for i in mine]
        if p:
            links.append(f"/place/p-{ids[p * per_page - 1]}/?from=list")
        nxt = f"/list/{p + 2}/" if p + 1 < n_pages else None
        site.page("/list/" if p == 0 else f"/list/{p + 1}/", listing_page(links, nxt))
    for i in ids:
        body = place(i, f"Resto {i}")
        site.page(f"/place/p-{i}/", body)
        site.page(f"/place/p-{i}/?from=list", body)
    return ids


def crawl(tmp_path: Path, proxy: str, sources: Path, names: list[str] | None = None, **kw):
    return crawl_sources(tmp_path / "h.db", sources, names, BRUSSELS, proxy,
                         settings={**FAST, **kw.pop("settings", {})}, **kw)


# --------------------------------------------------------------------------- crawls

def test_pagination_duplicates_drops_and_report(tmp_path: Path) -> None:
    site = Site()
    ids = paginated_site(site)
    site.page("/place/p-90/", place(90, None))                      # no name
    site.page("/place/p-91/", place(91, "Antwerp Resto", postcode="2000"))
    site.page("/list/3/", listing_page([f"/place/p-{i}/" for i in ids[8:]]
                                       + ["/place/p-8/?from=list", "/place/p-90/",
                                          "/place/p-91/"], None))
    sources = write_sources(tmp_path / "sources.toml",
                            {"resto": {"start_urls": [f"http://{HOST}/list/"],
                                       "options": PAGINATED}})
    with serve(site) as proxy:
        (report,) = crawl(tmp_path, proxy, sources)
    assert report.status == "ok", report
    assert report.kept == len(ids) == 12
    assert report.dropped == {"duplicate": 2, "missing_name": 1, "outside_region": 1}
    assert report.items == 16 and report.new == 12
    assert report.coverage["name"] == 1.0 and report.coverage["phone"] == 1.0
    assert report.filtered["robots_forbidden"] == 1     # /private/ in robots.txt
    assert report.filtered["offsite"] >= 1
    assert site.count("/private/place/p-99/") == 0
    db = open_db(tmp_path / "h.db")
    rows = {r["id"]: r for r in db.query("SELECT * FROM listings")}
    assert set(rows) == {f"resto:{i}" for i in ids}
    row = rows["resto:3"]
    assert (row["name"], row["street"], row["house_number"], row["postcode"]) == (
        "Resto 3", "Rue Haute", "3", "1000")
    assert row["phone"] == "+3225111111" and row["website"] == "http://www.place3.be/"
    assert row["review_count"] == 3 and row["region"] == "brussels"
    assert "Jan Peeters" not in json.dumps(list(rows.values()))
    stored = json.loads(db.execute("SELECT stats FROM crawl_reports").fetchone()[0])
    assert stored["kept"] == 12
    audit = db.execute("SELECT action, source, rows FROM audit_log WHERE action = 'crawl'"
                       ).fetchall()
    assert audit == [("crawl", "resto", 12)]


def test_a_meta_refresh_page_leads_to_its_target(tmp_path: Path) -> None:
    site = Site()
    site.page("/list/", listing_page(["/place/p-1/", "/place/p-2/"], None))
    site.page("/place/p-1/", place(1, "Resto 1"))
    site.page("/place/p-2/", '<html><head><META HTTP-EQUIV="Refresh" '
              'content="0; url=/place/p-3/"></head><body>moved</body></html>')
    site.page("/place/p-3/", place(3, "Resto 3"))
    sources = write_sources(tmp_path / "sources.toml",
                            {"resto": {"start_urls": [f"http://{HOST}/list/"],
                                       "options": PAGINATED}})
    with serve(site) as proxy:
        (report,) = crawl(tmp_path, proxy, sources)
    assert report.status == "ok", report
    assert site.count("/place/p-3/") == 1
    db = open_db(tmp_path / "h.db")
    assert {r[0] for r in db.execute("SELECT id FROM listings")} == {"resto:1", "resto:3"}


def test_recrawl_from_a_sitemap_updates_rows_and_never_duplicates(tmp_path: Path) -> None:
    site = Site()
    urls = "".join(f"<url><loc>http://{HOST}/place/p-{i}/</loc></url>" for i in range(1, 6))
    site.page("/sitemap.xml", f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/'
              f'schemas/sitemap/0.9">{urls}</urlset>', headers={"Content-Type": "text/xml"})
    for i in range(1, 6):
        site.page(f"/place/p-{i}/", place(i, f"Resto {i}"))
    site.page("/", "<html><body>home</body></html>")
    options = {"detail_url_pattern": r"/place/p-(?P<id>\d+)/",
               "sitemap_urls": [f"http://{HOST}/sitemap.xml"]}
    sources = write_sources(tmp_path / "sources.toml",
                            {"resto": {"start_urls": [f"http://{HOST}/"], "options": options}})
    with serve(site) as proxy:
        (first,) = crawl(tmp_path, proxy, sources)
        db = open_db(tmp_path / "h.db")
        before = {r["id"]: r for r in db.query("SELECT * FROM listings")}
        (second,) = crawl(tmp_path, proxy, sources)
    after = {r["id"]: r for r in db.query("SELECT * FROM listings")}
    assert (first.kept, first.new, first.updated) == (5, 5, 0)
    assert (second.kept, second.new, second.updated) == (5, 0, 5)
    assert set(after) == set(before) and len(after) == 5
    for key, row in after.items():
        assert row["first_seen"] == before[key]["first_seen"]
        assert row["last_run_id"] > before[key]["last_run_id"]
        assert row["last_seen"] >= before[key]["last_seen"]
    assert site.count("/place/p-1/") == 2  # the second crawl fetched again (no stale job)


def test_http_cache_serves_a_recrawl_without_refetching_pages(tmp_path: Path) -> None:
    site = Site()
    ids = paginated_site(site, n_pages=1)
    sources = write_sources(tmp_path / "sources.toml",
                            {"resto": {"start_urls": [f"http://{HOST}/list/"],
                                       "options": PAGINATED}})
    with serve(site) as proxy:
        (first,) = crawl(tmp_path, proxy, sources, http_cache=True)
        (second,) = crawl(tmp_path, proxy, sources, http_cache=True)
    assert first.kept == second.kept == len(ids) and second.updated == len(ids)
    assert all(site.count(f"/place/p-{i}/") == 1 for i in ids)
    assert site.count("/robots.txt") >= 2  # the gate's checks are never answered from cache
    assert (work_dir(tmp_path / "h.db") / "httpcache").is_dir()


def test_429_is_retried_after_the_time_the_server_asks(tmp_path: Path) -> None:
    site = Site()
    site.page("/list/", listing_page(["/place/p-1/", "/place/p-2/"], None))
    site.page("/place/p-2/", place(2, "Resto 2"))
    site.dynamic("/place/p-1/", lambda n: (429, {"Retry-After": "1"}, b"slow down") if n == 1
                 else (200, {}, place(1, "Resto 1").encode()))
    sources = write_sources(tmp_path / "sources.toml",
                            {"resto": {"start_urls": [f"http://{HOST}/list/"],
                                       "options": PAGINATED}})
    with serve(site) as proxy:
        (report,) = crawl(tmp_path, proxy, sources)
    assert report.status == "ok" and report.kept == 2
    assert report.retries == 1 and report.errors == {}
    first, second = site.hits[(HOST, "/place/p-1/")]
    assert second - first >= 0.95  # Retry-After: 1 was honoured
    # the whole host paused: nothing else was requested from it during the wait
    others = [t for (h, p), ts in site.hits.items() if p != "/place/p-1/" for t in ts]
    assert not [t for t in others if first < t < first + 0.95]


def test_500_is_retried_with_backoff_then_given_up(tmp_path: Path) -> None:
    site = Site()
    site.page("/list/", listing_page(["/place/p-1/", "/place/p-2/"], None))
    site.page("/place/p-1/", "broken", status=500)
    site.page("/place/p-2/", place(2, "Resto 2"))
    sources = write_sources(tmp_path / "sources.toml",
                            {"resto": {"start_urls": [f"http://{HOST}/list/"],
                                       "options": PAGINATED}})
    with serve(site) as proxy:
        (report,) = crawl(tmp_path, proxy, sources)
    assert site.count("/place/p-1/") == 3  # first try + HORECA_RETRY_TIMES = 2
    hits = site.hits[(HOST, "/place/p-1/")]
    assert hits[1] - hits[0] >= 0.05 and hits[2] - hits[1] >= 0.1  # exponential backoff
    assert report.status == "ok" and report.kept == 1
    assert report.errors["gave_up_after_retries"] == 1 and report.errors["http_500"] == 1


def crawl_spec(tmp_path: Path, db_path: Path, sources: Path, proxy: str, source: str,
               **extra: object) -> dict:
    """What the runner hands a worker for one source."""
    return {"db_path": str(db_path), "sources_path": str(sources), "source": source,
            "region": region_to_dict(BRUSSELS), "proxy": proxy, "run_id": None,
            "jobdir": str(work_dir(db_path) / "jobs" / source), "throttle": False,
            "log_file": str(tmp_path / f"{source}.log"),
            "progress_file": str(tmp_path / f"{source}.progress.json"),
            "result_path": str(tmp_path / f"{source}.result.json"), "settings": FAST,
            **extra}


def start_worker(tmp_path: Path, specs: list[dict], claims: Path) -> subprocess.Popen:
    claims.mkdir(exist_ok=True)
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({"crawls": specs, "claims_dir": str(claims)}))
    return subprocess.Popen([sys.executable, "-m", "horeca.spiders.run_one", str(path)])


def result_of(spec: dict) -> dict | None:
    path = Path(spec["result_path"])
    return json.loads(path.read_text()) if path.exists() else None


def test_one_worker_crawls_its_sources_in_turn_skipping_claimed_ones(tmp_path: Path) -> None:
    site = Site()
    ids = paginated_site(site, n_pages=2)
    names = ["resto", "taken", "other"]
    sources = write_sources(tmp_path / "sources.toml", {
        name: {"start_urls": [f"http://{HOST}/list/"], "options": PAGINATED}
        for name in names})
    db_path = tmp_path / "h.db"
    open_db(db_path)
    claims = tmp_path / "claims"
    claims.mkdir()
    (claims / "taken.claim").write_text("1")  # another worker has it
    with serve(site) as proxy:
        specs = [crawl_spec(tmp_path, db_path, sources, proxy, name)
                 for name in ["missing", *names]]
        assert start_worker(tmp_path, specs, claims).wait(timeout=60) == 0
    missing, resto, taken, other = (result_of(spec) for spec in specs)
    assert missing is not None and "missing" in missing["error"]  # and the rest went on
    assert taken is None
    for result in (resto, other):
        assert result is not None and result["finish_reason"] == "finished", result
        assert result["stats"]["horeca/kept"] == len(ids)
    assert resto["pid"] == other["pid"]  # one process, one start-up
    for name in ("resto", "other"):  # each crawl logs to its own file
        assert (tmp_path / f"{name}.log").read_text().count("Spider closed (finished)") == 1


def test_interrupted_crawl_resumes_where_it_stopped(tmp_path: Path) -> None:
    site = Site()
    ids = list(range(1, 41))
    site.page("/list/", listing_page([f"/place/p-{i}/" for i in ids], None))
    for i in ids:
        body = place(i, f"Resto {i}").encode()
        site.dynamic(f"/place/p-{i}/", lambda _n, b=body: (time.sleep(0.05), (200, {}, b))[1])
    sources = write_sources(tmp_path / "sources.toml",
                            {name: {"start_urls": [f"http://{HOST}/list/"],
                                    "options": PAGINATED} for name in ("resto", "later")})
    db_path = tmp_path / "h.db"
    open_db(db_path)
    jobdir = work_dir(db_path) / "jobs" / "resto"
    claims = tmp_path / "claims"
    with serve(site) as proxy:
        specs = [crawl_spec(tmp_path, db_path, sources, proxy, name)
                 for name in ("resto", "later")]
        child = start_worker(tmp_path, specs, claims)
        deadline = time.monotonic() + 30
        while sum(len(v) for k, v in site.hits.items() if "/place/" in k[1]) < 8:
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=30) == 0
        first = result_of(specs[0])
        assert first is not None and first["finish_reason"] == "shutdown"
        # the worker's next source was neither started nor taken from other workers
        assert result_of(specs[1]) is None and not (claims / "later.claim").exists()
        assert jobdir.exists()
        stored_first = open_db(db_path).execute("SELECT count(*) FROM listings").fetchone()[0]
        assert 0 < stored_first < len(ids)

        (report,) = crawl(tmp_path, proxy, sources, ["resto"])
    assert report.status == "ok" and report.segments == 2
    assert report.kept == len(ids)
    assert open_db(db_path).execute("SELECT count(*) FROM listings").fetchone()[0] == len(ids)
    # nothing fetched twice: the second run continued the saved queue
    assert all(site.count(f"/place/p-{i}/") == 1 for i in ids), {
        i: site.count(f"/place/p-{i}/") for i in ids if site.count(f"/place/p-{i}/") != 1}
    assert not jobdir.exists()  # a finished crawl leaves no job behind


def test_listings_that_cannot_be_written_fail_the_crawl(tmp_path: Path) -> None:
    site = Site()
    paginated_site(site, n_pages=1)
    sources = write_sources(tmp_path / "sources.toml",
                            {"resto": {"start_urls": [f"http://{HOST}/list/"],
                                       "options": PAGINATED}})
    db = open_db(tmp_path / "h.db")
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON listings "
               "BEGIN SELECT RAISE(ABORT, 'the store refuses'); END")
    with serve(site) as proxy:
        (report,) = crawl(tmp_path, proxy, sources)
    assert report.status == "failed"
    assert "could not be written" in report.reason and "the store refuses" in report.reason
    assert not (work_dir(tmp_path / "h.db") / "jobs" / "resto").exists()  # starts afresh


def test_collapsed_coverage_is_flagged(tmp_path: Path) -> None:
    site = Site()
    ids = paginated_site(site, n_pages=2)
    sources = write_sources(tmp_path / "sources.toml",
                            {"resto": {"start_urls": [f"http://{HOST}/list/"],
                                       "options": PAGINATED}})
    with serve(site) as proxy:
        (good,) = crawl(tmp_path, proxy, sources)
        for i in ids:  # the site drops phone numbers from its pages
            site.page(f"/place/p-{i}/", place(i, f"Resto {i}", phone=None))
        (bad,) = crawl(tmp_path, proxy, sources)
    assert good.flags == []
    assert bad.flags == ["phone coverage fell from 100% to 0%"]
    db = open_db(tmp_path / "h.db")
    flagged = db.execute("SELECT flagged FROM crawl_reports ORDER BY run_id").fetchall()
    assert flagged == [(None,), ("phone coverage fell from 100% to 0%",)]


def test_cli_crawls_approved_and_shows_refused_sources(tmp_path: Path) -> None:
    site = Site()
    paginated_site(site, n_pages=1)
    sources = write_sources(tmp_path / "sources.toml", {
        "resto": {"start_urls": [f"http://{HOST}/list/"], "options": PAGINATED},
        "waiting": {"start_urls": [f"http://{HOST}/other/"], "status": "pending"},
    })
    with serve(site) as proxy:
        result = CliRunner().invoke(app, [
            "--db", str(tmp_path / "h.db"), "crawl", "--all", "--region", "brussels",
            "--sources", str(sources), "--proxy", proxy], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "refused" in result.output and "pending" in result.output
    assert site.count("/other/") == 0
    db = open_db(tmp_path / "h.db")
    assert db.execute("SELECT count(*) FROM listings").fetchone()[0] == 4
    statuses = dict(db.execute("SELECT source, json_extract(stats, '$.status') "
                               "FROM crawl_reports").fetchall())
    assert statuses == {"resto": "ok", "waiting": "refused"}
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'crawl_refused'"
                      ).fetchone()[0] == 1


def test_bad_spider_options_stop_before_any_fetch(tmp_path: Path) -> None:
    site = Site()
    sources = write_sources(tmp_path / "sources.toml", {
        "resto": {"start_urls": [f"http://{HOST}/list/"], "spider": "selector",
                  "options": {"detail_links": "a[["}}})
    with serve(site) as proxy:
        result = CliRunner().invoke(app, ["--db", str(tmp_path / "h.db"), "crawl", "resto",
                                          "--region", "brussels", "--sources", str(sources),
                                          "--proxy", proxy])
    assert result.exit_code == 2
    assert "sources.resto.spider_options" in result.output
    assert not site.hits


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
