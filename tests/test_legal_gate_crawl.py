"""The legal gate enforces its rules before and during real Scrapy crawls on 127.0.0.1.

A small threaded HTTP server plays several sites at once, as a forward proxy (the way the
demo's fixture server works): requests name `http://<host>.example/...` and the server
answers per host, logging every request with its arrival time. Each crawl runs in a
subprocess (Twisted's reactor cannot restart in one process): this file is also that
subprocess's script, see `_crawl_main` at the bottom.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from horeca.legal_gate import audit
from horeca.legal_gate.checks import CrawlRefused, gate_crawl, preflight, terms_sha256
from horeca.legal_gate.config import SourceConfig
from horeca.store import open_db

UA = "horeca-test/1.0 (+mailto:gate-tests@inspection.example)"
TERMS_HTML = (b"<html><head><title>Terms</title></head><body><h1>Terms of use</h1>"
              b"<p>You may read this site.</p><p>Version 3.</p></body></html>")


# --------------------------------------------------------------------------- the sites


@dataclass
class Page:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    fail_first: int = 0  # answer 503 this many times first
    delay: float = 0.0  # seconds the server takes to answer

    def __post_init__(self) -> None:
        self.headers.setdefault("Content-Type", "text/html; charset=utf-8")


def html(title: str, *links: str, head: str = "") -> bytes:
    anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
    return (f"<html><head><title>{title}</title>{head}</head><body><h1>{title}</h1>"
            f"{anchors}</body></html>").encode()


def text(body: str, status: int = 200) -> Page:
    return Page(body.encode(), status, {"Content-Type": "text/plain"})


class VHosts:
    """Sites by host name, served on 127.0.0.1 as a forward proxy; logs every request."""

    def __init__(self, sites: dict[str, dict[str, Page]]) -> None:
        self.sites = sites
        self.log: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self._accepted: dict[Any, float] = {}
        self._in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        vhosts = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                vhosts._serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # Time a request when its connection is accepted, in the serving loop: a
            # handler thread may start late on a busy machine and blur the gaps.
            def process_request(self, request: Any, client_address: Any) -> None:
                vhosts._accepted[request] = time.monotonic()
                super().process_request(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        arrived = self._accepted.pop(handler.request, None) or time.monotonic()
        if handler.path.startswith("http://"):
            parts = urlsplit(handler.path)
            host, path = parts.hostname or "", parts.path + (f"?{parts.query}" if parts.query
                                                             else "")
        else:
            host, path = handler.headers.get("Host", "").split(":")[0], handler.path
        with self._lock:
            self.log.append((arrived, host, path))
            page = self.sites.get(host, {}).get(path)
            fail = page is not None and page.fail_first > 0
            if fail:
                page.fail_first -= 1
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            self.max_in_flight[host] = max(self.max_in_flight.get(host, 0),
                                           self._in_flight[host])
        try:
            self._answer(handler, page, fail)
        finally:
            with self._lock:
                self._in_flight[host] -= 1

    def _answer(self, handler: BaseHTTPRequestHandler, page: Page | None, fail: bool) -> None:
        if page is None:
            page = Page(b"not found", 404)
        if page.delay:
            time.sleep(page.delay)
        if page.drop:
            handler.close_connection = True
            return
        status = 503 if fail else page.status
        handler.send_response(status)
        for name, value in page.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(page.body)))
        handler.end_headers()
        handler.wfile.write(page.body)

    def requests(self, host: str) -> list[str]:
        return [p for _, h, p in self.log if h == host]

    def times(self, host: str | None = None) -> list[float]:
        return [t for t, h, _ in self.log if host is None or h == host]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_source(**overrides: Any) -> SourceConfig:
    base = dict(
        name="testsite", spider="structured", status="approved",
        allowed_domains=("site.example",), start_urls=("http://site.example/",),
        reviewer="R. Eviewer", reviewed_on=date(2026, 1, 15), legal_basis="test basis",
        purpose="tests", terms_url="http://site.example/terms/",
        terms_sha256=terms_sha256(TERMS_HTML, "text/html"), allowed_fields=("name",),
        max_requests_per_second=50.0, user_agent=UA,
    )
    base.update(overrides)
    return SourceConfig(**base)


def plain_site(extra: dict[str, Page] | None = None) -> dict[str, Page]:
    pages = {"/robots.txt": text("User-agent: *\nDisallow: /private/\n"),
             "/terms/": Page(TERMS_HTML), "/": Page(html("Home", "/a"))}
    pages.update(extra or {})
    return pages


@pytest.fixture
def vhosts() -> Iterator[Callable[[dict[str, dict[str, Page]]], VHosts]]:
    started: list[VHosts] = []

    def start(sites: dict[str, dict[str, Page]]) -> VHosts:
        server = VHosts(sites)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


# --------------------------------------------------------------------------- preflight


def test_pending_source_is_refused_before_anything_is_fetched(vhosts) -> None:
    sites = vhosts({"site.example": plain_site()})
    with pytest.raises(CrawlRefused, match="pending") as err:
        preflight(make_source(status="pending"), sites.proxy)
    assert err.value.reason == "not_approved"
    assert sites.log == []


def test_suspended_source_is_refused_with_its_reason(vhosts) -> None:
    sites = vhosts({"site.example": plain_site()})
    source = make_source(status="suspended", suspended_reason="platform objected")
    with pytest.raises(CrawlRefused, match="platform objected"):
        preflight(source, sites.proxy)
    assert sites.log == []


def test_approved_source_with_clean_site_passes(vhosts) -> None:
    sites = vhosts({"site.example": plain_site()})
    pf = preflight(make_source(), sites.proxy)
    assert not pf.terms_changed
    assert pf.hosts["site.example"].robots.mode == "rules"


def test_changed_terms_refuse_the_crawl_naming_the_review_date(vhosts) -> None:
    changed = TERMS_HTML.replace(b"You may read", b"You may not scrape")
    sites = vhosts({"site.example": plain_site({"/terms/": Page(changed)})})
    with pytest.raises(CrawlRefused) as err:
        preflight(make_source(), sites.proxy)
    assert err.value.reason == "terms_changed"
    assert "terms changed since review on 2026-01-15" in str(err.value)
    assert "horeca sources approve testsite" in str(err.value)


def test_terms_that_cannot_be_read_refuse_the_crawl(vhosts) -> None:
    sites = vhosts({"site.example": plain_site({"/terms/": Page(b"oops", 500)})})
    with pytest.raises(CrawlRefused) as err:
        preflight(make_source(), sites.proxy)
    assert err.value.reason == "terms_unreachable"


def test_tdmrep_json_reservation_refuses_the_crawl(vhosts) -> None:
    rules = json.dumps([{"location": "/*", "tdm-reservation": 1,
                         "tdm-policy": "http://site.example/tdm-policy.json"}])
    sites = vhosts({"site.example": plain_site(
        {"/.well-known/tdmrep.json": Page(rules.encode(), headers={
            "Content-Type": "application/json"})})})
    with pytest.raises(CrawlRefused) as err:
        preflight(make_source(), sites.proxy)
    assert err.value.reason == "tdm_reserved"
    assert "tdmrep.json" in str(err.value)


def test_tdm_header_on_the_start_page_refuses_the_crawl(vhosts) -> None:
    sites = vhosts({"site.example": plain_site(
        {"/": Page(html("Home"), headers={"tdm-reservation": "1"})})})
    with pytest.raises(CrawlRefused, match="header") as err:
        preflight(make_source(), sites.proxy)
    assert err.value.reason == "tdm_reserved"


def test_tdm_meta_on_the_start_page_refuses_the_crawl(vhosts) -> None:
    meta = '<meta name="tdm-reservation" content="1">'
    sites = vhosts({"site.example": plain_site({"/": Page(html("Home", head=meta))})})
    with pytest.raises(CrawlRefused, match="meta") as err:
        preflight(make_source(), sites.proxy)
    assert err.value.reason == "tdm_reserved"


def test_meta_saying_not_reserved_overrides_the_header(vhosts) -> None:
    meta = '<meta name="tdm-reservation" content="0">'
    sites = vhosts({"site.example": plain_site(
        {"/": Page(html("Home", head=meta), headers={"tdm-reservation": "1"})})})
    preflight(make_source(), sites.proxy)


def test_unparsable_tdmrep_json_refuses_the_crawl(vhosts) -> None:
    sites = vhosts({"site.example": plain_site(
        {"/.well-known/tdmrep.json": Page(b'[{"location": "/", ', headers={
            "Content-Type": "application/json"})})})
    with pytest.raises(CrawlRefused, match="not JSON") as err:
        preflight(make_source(), sites.proxy)
    assert err.value.reason == "tdmrep_unparsable"


def test_robots_5xx_refuses_the_crawl_and_nothing_else_is_fetched(vhosts) -> None:
    sites = vhosts({"site.example": plain_site({"/robots.txt": text("down", 503)})})
    with pytest.raises(CrawlRefused, match=r"robots\.txt") as err:
        preflight(make_source(), sites.proxy)
    assert err.value.reason == "robots_server_error"
    assert "/" not in sites.requests("site.example")


def test_robots_dropped_connection_refuses_the_crawl(vhosts) -> None:
    sites = vhosts({"site.example": plain_site({"/robots.txt": Page(drop=True)})})
    with pytest.raises(CrawlRefused) as err:
        preflight(make_source(), sites.proxy)
    assert err.value.reason == "robots_unreachable"
    assert "/" not in sites.requests("site.example")


def test_unreachable_host_refuses_the_crawl() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    source = make_source(allowed_domains=("127.0.0.1",), start_urls=(f"{base}/",),
                         terms_url=None)
    with pytest.raises(CrawlRefused) as err:
        preflight(source, timeout=2)
    assert err.value.reason == "robots_unreachable"


def test_robots_404_means_no_restriction(vhosts) -> None:
    sites = vhosts({"site.example": plain_site({"/robots.txt": text("no", 404)})})
    pf = preflight(make_source(), sites.proxy)
    assert pf.hosts["site.example"].robots.mode == "allow_all"
    assert "/" in sites.requests("site.example")


def test_unparsable_robots_refuses_the_crawl(vhosts) -> None:
    sites = vhosts({"site.example": plain_site({"/robots.txt": Page(html("Oops, a page"))})})
    with pytest.raises(CrawlRefused) as err:
        preflight(make_source(), sites.proxy)
    assert err.value.reason == "robots_unparsable"


def test_gate_crawl_audits_every_refusal(vhosts, tmp_path: Path) -> None:
    sites = vhosts({"site.example": plain_site()})
    db = open_db(tmp_path / "h.db")
    with pytest.raises(CrawlRefused):
        gate_crawl(db, make_source(status="pending"), "tester", "tests", sites.proxy)
    entry = db.execute("SELECT action, actor, source, purpose, details FROM audit_log"
                       ).fetchall()
    assert len(entry) == 1
    action, actor, source, purpose, details = entry[0]
    assert (action, actor, source, purpose) == ("crawl_refused", "tester", "testsite", "tests")
    assert json.loads(details)["reason"] == "not_approved"
    assert db.execute("SELECT status FROM sources WHERE name = 'testsite'").fetchone()[0] == \
        "pending"
    assert audit.verify(db) is None


def test_gate_crawl_passes_an_allowed_source_without_audit_noise(vhosts, tmp_path: Path) -> None:
    sites = vhosts({"site.example": plain_site()})
    db = open_db(tmp_path / "h.db")
    gate_crawl(db, make_source(), "tester", "tests", sites.proxy)
    assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0


# --------------------------------------------------------------------------- reviewer CLI

REVIEW_TOML = """\
# Demo sources (comment kept by every edit).
[defaults]
user_agent = "horeca-test/1.0 (+mailto:gate-tests@inspection.example)"
allowed_fields = ["name"]

[sources.testsite]
spider = "structured"
status = "pending"   # waiting for the reviewer
allowed_domains = ["site.example"]
start_urls = ["http://site.example/"]
terms_url = "http://site.example/terms/"

[sources.testsite.spider_options]
listing = "a.next"   # owned by the spider kind
"""


@pytest.fixture
def reviewer_cli(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from horeca.cli import app

    monkeypatch.setenv("HORECA_DB", str(tmp_path / "h.db"))
    monkeypatch.setenv("HORECA_SOURCES", str(tmp_path / "sources.toml"))
    monkeypatch.setenv("HORECA_ANALYST", "R. Eviewer")
    (tmp_path / "sources.toml").write_text(REVIEW_TOML)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_approve_check_and_suspend_commands(reviewer_cli, vhosts, tmp_path: Path) -> None:
    from horeca.legal_gate.config import load_sources

    sites = vhosts({"site.example": plain_site()})
    listed = reviewer_cli("sources", "list")
    assert listed.exit_code == 0 and "testsite" in listed.output and "pending" in listed.output

    approved = reviewer_cli("sources", "approve", "testsite", "--reviewer", "R. Eviewer",
                            "--basis", "GDPR Art. 6(1)(e)", "--purpose", "inspection targeting",
                            "--proxy", sites.proxy)
    assert approved.exit_code == 0, approved.output
    text = (tmp_path / "sources.toml").read_text()
    assert "# Demo sources (comment kept by every edit)." in text
    assert 'listing = "a.next"   # owned by the spider kind' in text
    source = load_sources(tmp_path / "sources.toml").get("testsite")
    assert source.status == "approved" and source.reviewed_on == date.today()
    assert source.terms_sha256 == terms_sha256(TERMS_HTML, "text/html")
    db = open_db(tmp_path / "h.db")
    entry = db.execute("SELECT action, actor, source FROM audit_log").fetchall()
    assert entry == [("approve", "R. Eviewer", "testsite")]

    clean = reviewer_cli("sources", "check", "testsite", "--proxy", sites.proxy)
    assert clean.exit_code == 0, clean.output
    assert "unchanged since review" in clean.output and "a crawl may start" in clean.output

    sites.sites["site.example"]["/terms/"] = Page(TERMS_HTML.replace(
        b"You may read this site.", b"Scraping is forbidden."))
    changed = reviewer_cli("sources", "check", "testsite", "--proxy", sites.proxy)
    assert changed.exit_code == 1
    assert "CHANGED since review" in changed.output
    assert "-You may read this site." in changed.output
    assert "+Scraping is forbidden." in changed.output

    suspended = reviewer_cli("sources", "suspend", "testsite", "--reason", "terms changed")
    assert suspended.exit_code == 0, suspended.output
    source = load_sources(tmp_path / "sources.toml").get("testsite")
    assert source.status == "suspended" and source.suspended_reason == "terms changed"
    assert [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id")] == [
        "approve", "suspend"]
    with pytest.raises(CrawlRefused, match="terms changed"):
        gate_crawl(db, source, "analyst", "tests", sites.proxy)
    assert audit.verify(db) is None


# --------------------------------------------------------------------------- real crawls
#
# Every crawl scenario runs in ONE subprocess, concurrently in one Scrapy reactor (each
# with its own source, hosts and settings): one Scrapy start-up instead of five.

TDMREP_RULES = json.dumps([
    {"location": "/by-file/*", "tdm-reservation": 1},
    {"location": "/meta-zero/*", "tdm-reservation": 1},
    {"location": "/*", "tdm-reservation": 0},
]).encode()


def rules_sites() -> dict[str, dict[str, Page]]:
    meta1 = '<meta name="tdm-reservation" content="1">'
    meta0 = '<meta name="tdm-reservation" content="0">'
    return {
        "open.example": {
            "/robots.txt": text("User-agent: *\nDisallow: /private/\n"),
            "/.well-known/tdmrep.json": Page(TDMREP_RULES, headers={
                "Content-Type": "application/json"}),
            "/": Page(html("Home", "/fine", "/private/secret", "/header-tdm", "/meta-tdm",
                           "/by-file/x", "/meta-zero/x", "http://elsewhere.example/page",
                           "http://down.example/", "http://dropped.example/",
                           "http://norobots.example/")),
            "/fine": Page(html("Fine")),
            "/private/secret": Page(html("Secret")),
            "/header-tdm": Page(html("Header"), headers={"tdm-reservation": "1"}),
            "/meta-tdm": Page(html("Meta", head=meta1)),
            "/by-file/x": Page(html("ByFile")),
            "/meta-zero/x": Page(html("MetaZero", head=meta0)),
        },
        "elsewhere.example": {"/page": Page(html("Elsewhere"))},
        "down.example": {"/robots.txt": text("down", 500), "/": Page(html("Down"))},
        "dropped.example": {"/robots.txt": Page(drop=True), "/": Page(html("Dropped"))},
        "norobots.example": {"/robots.txt": text("nothing here", 404),
                             "/": Page(html("NoRobots", "/deep")),
                             "/deep": Page(html("Deep"))},
    }


def fanout_site(pages: int, *, crawl_delay: float | None = None,
                page_delay: float = 0.0) -> dict[str, Page]:
    robots = "User-agent: *\nDisallow: /private/\n"
    if crawl_delay:
        robots += f"Crawl-delay: {crawl_delay}\n"
    links = [f"/p{i}" for i in range(pages)]
    site = {"/robots.txt": text(robots), "/": Page(html("Home", *links))}
    for i, link in enumerate(links):
        site[link] = Page(html(f"P{i}"), fail_first=1 if i % 3 == 0 else 0, delay=page_delay)
    return site


def _one_host(host: str, **overrides: Any) -> SourceConfig:
    return make_source(name=host.split(".")[0], allowed_domains=(host,),
                       start_urls=(f"http://{host}/",), terms_url=None, **overrides)


# name -> (source, hostile spider settings, spider drops MinimisePipeline)
SCENARIOS: dict[str, tuple[SourceConfig, bool, bool]] = {
    "rules": (make_source(name="rules", allowed_domains=(
        "open.example", "down.example", "dropped.example", "norobots.example"),
        start_urls=("http://open.example/",), max_requests_per_second=40.0, terms_url=None),
        False, False),
    "rate": (_one_host("fast.example", max_requests_per_second=10), True, False),
    "crawl_delay": (_one_host("slow.example", max_requests_per_second=50), True, False),
    # No rate cap to speak of (as in the throughput benchmark) and slow answers: requests
    # queue up in the download slot, which must still send them one at a time.
    "unlimited": (_one_host("burst.example", max_requests_per_second=1e6), False, False),
    "pending": (_one_host("pending.example", status="pending"), False, False),
    "no_pipeline": (_one_host("nopipe.example"), False, True),
}


@pytest.fixture(scope="module")
def crawls(tmp_path_factory) -> Iterator[tuple[dict[str, dict[str, Any]], VHosts, str]]:
    sites = VHosts({**rules_sites(), "fast.example": fanout_site(8),
                    "slow.example": fanout_site(4, crawl_delay=0.3),
                    "burst.example": fanout_site(12, page_delay=0.03),
                    "pending.example": plain_site(), "nopipe.example": plain_site()})
    folder = tmp_path_factory.mktemp("crawls")
    spec = {"proxy": sites.proxy, "out": str(folder / "result.json"), "crawls": {
        name: {"source": source.to_dict(), "hostile": hostile, "drop_pipeline": drop}
        for name, (source, hostile, drop) in SCENARIOS.items()}}
    (folder / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, __file__, str(folder / "spec.json")],
                          capture_output=True, text=True, timeout=300)
    out = folder / "result.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    yield results, sites, done.stderr
    sites.close()


def _result(crawls: Any, name: str) -> dict[str, Any]:
    results, _, log = crawls
    assert name in results, log
    return results[name]


def _titles(result: dict[str, Any]) -> set[str]:
    return {item.get("name") for item in result["items"]}


def test_crawl_fetches_allowed_pages(crawls) -> None:
    assert {"Home", "Fine", "NoRobots", "Deep"} <= _titles(_result(crawls, "rules")), crawls[2]


def test_offsite_links_are_dropped(crawls) -> None:
    _, sites, _ = crawls
    assert sites.requests("elsewhere.example") == []
    assert _result(crawls, "rules")["stats"].get("legal_gate/offsite", 0) >= 1


def test_robots_disallowed_path_is_not_fetched(crawls) -> None:
    _, sites, _ = crawls
    assert "/private/secret" not in sites.requests("open.example")
    assert _result(crawls, "rules")["stats"].get("legal_gate/robots_forbidden", 0) >= 1


def test_robots_is_fetched_before_anything_else_on_each_host(crawls) -> None:
    _, sites, _ = crawls
    for host in ("open.example", "down.example", "dropped.example", "norobots.example",
                 "fast.example", "slow.example"):
        assert sites.requests(host)[0] == "/robots.txt", host


def test_robots_5xx_means_nothing_is_fetched_from_that_host(crawls) -> None:
    _, sites, _ = crawls
    assert set(sites.requests("down.example")) == {"/robots.txt"}
    result = _result(crawls, "rules")
    assert "Down" not in _titles(result)
    assert result["stats"].get("legal_gate/robots_unavailable", 0) >= 2


def test_robots_network_error_means_nothing_is_fetched_from_that_host(crawls) -> None:
    _, sites, _ = crawls
    assert set(sites.requests("dropped.example")) == {"/robots.txt"}
    assert "Dropped" not in _titles(_result(crawls, "rules"))


def test_robots_404_means_the_host_is_crawled(crawls) -> None:
    _, sites, _ = crawls
    assert "/deep" in sites.requests("norobots.example")
    assert {"NoRobots", "Deep"} <= _titles(_result(crawls, "rules"))


def test_page_with_tdm_header_is_fetched_but_not_used(crawls) -> None:
    _, sites, _ = crawls
    assert "/header-tdm" in sites.requests("open.example")
    result = _result(crawls, "rules")
    assert "Header" not in _titles(result)
    assert result["stats"].get("legal_gate/tdm_reserved", 0) >= 3


def test_page_with_tdm_meta_is_not_used(crawls) -> None:
    assert "Meta" not in _titles(_result(crawls, "rules"))


def test_page_reserved_by_tdmrep_json_is_not_used(crawls) -> None:
    assert "ByFile" not in _titles(_result(crawls, "rules"))


def test_page_meta_overrides_the_tdmrep_file(crawls) -> None:
    assert "MetaZero" in _titles(_result(crawls, "rules"))


def test_items_reaching_the_spider_output_are_minimised(crawls) -> None:
    result = _result(crawls, "rules")
    assert result["items"]
    for item in result["items"]:
        assert set(item) == {"source", "source_id", "url", "name", "natural_person"}
    assert result["stats"].get("legal_gate/minimised/personal", 0) >= 4 * len(result["items"])


def test_the_rate_check_forgives_one_late_arrival_but_not_a_burst(
        assert_rate_at_most) -> None:
    # The arrivals CI once saw at a 0.3 s crawl delay: one request timed 0.12 s late.
    assert_rate_at_most([0, 0.42, 0.59, 0.89, 1.19, 1.49, 1.79, 2.09], 1 / 0.3)
    with pytest.raises(AssertionError):
        assert_rate_at_most([0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06], 1 / 0.3)
    with pytest.raises(AssertionError):  # a spider at 0.2 s instead of 0.3 s
        assert_rate_at_most([0.2 * i for i in range(8)], 1 / 0.3)


def test_rate_never_exceeds_the_maximum_even_with_hostile_spider_settings(
        crawls, assert_rate_at_most) -> None:
    # The spider asks for no delay, 16 parallel requests per domain, jitter and
    # AutoThrottle; some pages fail once so retries are in the mix.
    result = _result(crawls, "rate")
    times = crawls[1].times("fast.example")
    assert len(times) >= 12, crawls[2]  # robots, tdmrep, home, 8 pages, retried ones
    assert result["stats"].get("retry/count", 0) >= 1
    assert_rate_at_most(times, 10)


def test_crawl_delay_is_honoured(crawls, assert_rate_at_most) -> None:
    _result(crawls, "crawl_delay")
    times = crawls[1].times("slow.example")
    assert len(times) >= 7, crawls[2]
    assert_rate_at_most(times, 1 / 0.3)


def test_one_request_at_a_time_per_source_even_without_a_rate_cap(crawls) -> None:
    _result(crawls, "unlimited")
    sites = crawls[1]
    assert len(sites.requests("burst.example")) >= 14, crawls[2]
    assert sites.max_in_flight["burst.example"] == 1


def test_gate_refuses_a_crawl_with_another_downloader() -> None:
    from scrapy.settings import Settings

    from horeca.legal_gate.middleware import (
        check_gate_components,
        gate_settings,
        merge_settings,
    )

    settings = gate_settings(make_source())
    check_gate_components(Settings(settings))
    stock = merge_settings(settings, {"DOWNLOADER": "scrapy.core.downloader.Downloader"})
    with pytest.raises(RuntimeError, match="DOWNLOADER"):
        check_gate_components(Settings(stock))


def test_crawl_of_unapproved_source_fetches_nothing_even_without_preflight(crawls) -> None:
    assert crawls[1].requests("pending.example") == []
    assert _result(crawls, "pending")["stats"].get("legal_gate/not_approved", 0) >= 1


def test_crawl_without_the_minimise_pipeline_does_not_start(crawls) -> None:
    _, sites, log = crawls
    assert sites.requests("nopipe.example") == []
    assert "MinimisePipeline must be the first" in log


# --------------------------------------------------------------------------- subprocess


def _crawl_main(spec_path: str) -> None:
    import scrapy
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from horeca.legal_gate.middleware import gate_settings, merge_settings

    spec = json.loads(Path(spec_path).read_text())
    hostile = {"DOWNLOAD_DELAY": 0, "CONCURRENT_REQUESTS_PER_DOMAIN": 16, "DOWNLOAD_SLOTS": {},
               "AUTOTHROTTLE_ENABLED": True, "AUTOTHROTTLE_START_DELAY": 0,
               "AUTOTHROTTLE_TARGET_CONCURRENCY": 16, "DOWNLOAD_DELAY_JITTER": 0.9}
    process = CrawlerProcess({"LOG_LEVEL": "INFO", "TELNETCONSOLE_ENABLED": False,
                              "RETRY_TIMES": 2, "DOWNLOAD_TIMEOUT": 5})
    runs: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
    keep_alive: list[Any] = []  # signal receivers are weak references

    for name, crawl in spec["crawls"].items():
        source = SourceConfig.from_dict(crawl["source"])
        # Gate settings would come at project priority from the runner; here they sit
        # in the spider's settings with the hostile ones merged over them, which gives
        # the same effective values as a spider overriding the project.
        settings = gate_settings(source, spec["proxy"])
        if crawl["hostile"]:
            settings = merge_settings(settings, hostile)
        if crawl["drop_pipeline"]:
            settings = merge_settings(settings, {"ITEM_PIPELINES": {
                "horeca.legal_gate.minimise.MinimisePipeline": None}})

        class GateTestSpider(scrapy.Spider):
            custom_settings = settings
            source_name = source.name

            def parse(self, response: Any) -> Iterator[Any]:
                title = response.css("title::text").get()
                # Fields a careless spider might yield: the gate must drop them.
                yield {"source": self.source_name, "source_id": response.url,
                       "url": response.url, "name": title, "reviews": ["great - Jan"],
                       "author": "Jan", "photo": "x.jpg", "email": "jan@example.org"}
                for href in response.css("a::attr(href)").getall():
                    yield response.follow(href, callback=self.parse)

        GateTestSpider.name = f"gatetest_{name}"
        crawler = process.create_crawler(GateTestSpider)
        items: list[dict[str, Any]] = []

        def collect(item: Any, _items: list = items, **_: Any) -> None:
            _items.append(dict(item))

        keep_alive.append(collect)
        crawler.signals.connect(collect, signal=signals.item_scraped)
        runs[name] = (crawler, items)
        process.crawl(crawler, start_urls=list(source.start_urls))
    process.start()
    out = {}
    for name, (crawler, items) in runs.items():
        stats = crawler.stats.get_stats() if crawler.stats else {}
        out[name] = {"items": items, "stats": {
            k: v for k, v in stats.items() if isinstance(v, int | float | str)}}
    Path(spec["out"]).write_text(json.dumps(out))


if __name__ == "__main__":
    _crawl_main(sys.argv[1])
