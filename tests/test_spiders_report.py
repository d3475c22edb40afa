"""Crawl report and politeness helpers as pure functions: counters to a report, collapse
flags against the previous crawl, Retry-After parsing, backoff, resumed-segment merging."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from horeca.spiders.middlewares import backoff_delay, parse_retry_after
from horeca.spiders.report import CrawlReport, build_report, flags_against, merge_stats

STATS = {
    "downloader/response_count": 40, "horeca/items/yielded": 30, "horeca/kept": 20,
    "horeca/dropped/duplicate": 4, "horeca/dropped/outside_region": 3,
    "horeca/coverage/name": 20, "horeca/coverage/address": 18, "horeca/coverage/phone": 10,
    "horeca/coverage/geo": 20, "horeca/written/new": 15, "horeca/written/updated": 5,
    "downloader/exception_type_count/twisted.internet.error.TimeoutError": 2,
    "downloader/exception_type_count/scrapy.exceptions.IgnoreRequest": 7,
    "httperror/response_ignored_status_count/500": 1, "horeca/retry/gave_up": 1,
    "horeca/errors/jsonld_invalid": 3, "legal_gate/robots_forbidden": 2,
    "legal_gate/robots_fetched": 1, "legal_gate/minimised/personal": 9,
    "offsite/filtered": 4,
}


def test_stats_become_a_report_with_reasons_coverage_and_errors() -> None:
    report = build_report("s", STATS, finish_reason="finished", region="brussels")
    assert (report.status, report.pages, report.items, report.kept) == ("ok", 40, 30, 20)
    # 30 yielded - 20 kept - 7 with a reason = 3 dropped without one (e.g. by the gate)
    assert report.dropped == {"duplicate": 4, "other": 3, "outside_region": 3}
    assert report.coverage["address"] == 0.9 and report.coverage["phone"] == 0.5
    assert report.coverage["website"] == 0.0
    assert report.errors == {"TimeoutError": 2, "gave_up_after_retries": 1, "http_500": 1,
                             "jsonld_invalid": 3}
    assert report.filtered == {"offsite": 4, "robots_forbidden": 2}
    assert (report.new, report.updated) == (15, 5)


@pytest.mark.parametrize(("reason", "status"), [
    ("finished", "ok"), ("shutdown", "interrupted"), ("closespider_itemcount", "interrupted"),
    ("cancelled", "failed"), (None, "failed"),
])
def test_finish_reason_sets_the_status(reason, status) -> None:
    assert build_report("s", {}, finish_reason=reason).status == status


def _report(kept: int, **coverage: float) -> CrawlReport:
    base = {"name": 1.0, "address": 0.9, "postcode": 0.9, "phone": 0.8, "website": 0.3,
            "geo": 1.0, "review_count": 1.0}
    return CrawlReport(source="s", status="ok", region="brussels", kept=kept,
                       coverage={**base, **coverage})


def test_collapse_of_kept_listings_or_a_core_field_is_flagged() -> None:
    previous = _report(100)
    assert flags_against(_report(95, phone=0.6), previous) == []
    assert flags_against(_report(49), previous) == [
        "kept listings fell from 100 to 49 (under 50% of the previous crawl)"]
    assert flags_against(_report(100, address=0.5), previous) == [
        "address coverage fell from 90% to 50%"]
    # review_count is reported but is not a core field
    assert flags_against(_report(100, review_count=0.0), previous) == []


def test_first_crawl_is_flagged_only_when_it_keeps_nothing() -> None:
    assert flags_against(_report(10), None) == []
    assert flags_against(_report(0), None) == ["no listing kept"]
    interrupted = CrawlReport(source="s", status="interrupted", kept=0)
    assert flags_against(interrupted, _report(100)) == []


def test_segments_of_a_resumed_crawl_add_up() -> None:
    merged = merge_stats({"horeca/kept": 3, "start_time": "x"},
                         {"horeca/kept": 4, "horeca/dropped/duplicate": 1, "flag": True})
    assert merged == {"horeca/kept": 7, "horeca/dropped/duplicate": 1}


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after(b"120") == 120.0
    assert parse_retry_after(" 3 ") == 3.0
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_delay(n, 1.0, 5.0) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_crawls_compare_only_over_the_same_region_definition() -> None:
    from horeca.region import resolve_region
    from horeca.spiders.report import region_key

    whole = region_key(resolve_region("brussels"))
    assert whole == region_key(resolve_region("brussels"))
    assert whole != region_key(resolve_region("brussels", postcodes="1000"))
    assert whole != region_key(resolve_region("brussels", bbox="50.8,4.3,50.9,4.4"))


def test_listing_writer_waits_for_another_writer_instead_of_failing(tmp_path) -> None:
    """Crawls write to one store at the same time: a batch must wait for a concurrent
    write to commit (busy timeout), not fail with "database is locked" (which a read-then-
    write transaction does in WAL mode when another writer commits in between)."""
    import threading
    import time

    from horeca.spiders.writer import ListingWriter
    from horeca.store import open_db

    path = tmp_path / "h.db"
    other = open_db(path)
    writer = ListingWriter(open_db(path), region="brussels", batch_size=1000)
    writer.add({"source": "a", "source_id": "1", "name": "A"})
    other.conn.execute("BEGIN")
    other.conn.execute("SELECT count(*) FROM listings").fetchone()
    other.conn.execute("UPDATE runs SET status = status")  # holds the write lock

    def commit_soon() -> None:
        time.sleep(0.3)
        other.conn.execute("INSERT INTO listings (id, source, source_id, name) "
                           "VALUES ('b:1', 'b', '1', 'B')")
        other.conn.execute("COMMIT")

    thread = threading.Thread(target=commit_soon)
    thread.start()
    writer.close()
    thread.join()
    assert writer.new == 1
    assert {r[0] for r in other.conn.execute("SELECT id FROM listings")} == {"a:1", "b:1"}


def test_page_log_records_are_built_only_when_debug_is_shown() -> None:
    import logging

    from scrapy.http import HtmlResponse, Request

    from horeca.spiders.pipelines import QuietDropsLogFormatter

    formatter = QuietDropsLogFormatter()
    request = Request("http://a.example/")
    response = HtmlResponse("http://a.example/", body=b"<p>x</p>", request=request)
    scrapy_log = logging.getLogger("scrapy")
    level = scrapy_log.level
    try:
        scrapy_log.setLevel(logging.INFO)
        assert formatter.crawled(request, response, None) is None
        scrapy_log.setLevel(logging.DEBUG)
        assert formatter.crawled(request, response, None)["level"] == logging.DEBUG
    finally:
        scrapy_log.setLevel(level)
