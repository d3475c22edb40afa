"""Scrapy item pipelines: thin wrappers around `horeca.spiders.steps`, one concern each.

Order (after the legal gate's MinimisePipeline, which must come first):

    CleanStrings 200 -> ParseAddress 300 -> NormalisePhone 400 -> NormaliseWebsite 410
    -> ParseVat 420 -> CoerceNumbers 430 -> Validate 500 -> Region 600 -> Dedupe 700
    -> Store 800

Methods take an optional `spider` argument: Scrapy before 2.13 passes it, later versions
do not. Each pipeline that drops raises `DropItem(reason)` and counts `horeca/dropped/<reason>`;
the store pipeline counts kept listings and field coverage. Settings used:
HORECA_DEFAULT_COUNTRY, HORECA_DB_PATH, HORECA_RUN_ID, HORECA_REGION_NAME,
HORECA_WRITE_BATCH.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.logformatter import LogFormatter

from horeca.spiders import steps
from horeca.spiders.model import COVERAGE_FIELDS, has_field
from horeca.spiders.writer import DEFAULT_BATCH, ListingWriter
from horeca.store import open_db

logger = logging.getLogger(__name__)
_ENGINE_LOG = logging.getLogger("scrapy.core.engine")  # where Scrapy logs each page

GATE_MINIMISE = "horeca.legal_gate.minimise.MinimisePipeline"
ITEM_PIPELINES: dict[str, int] = {
    GATE_MINIMISE: 100,
    "horeca.spiders.pipelines.CleanStringsPipeline": 200,
    "horeca.spiders.pipelines.ParseAddressPipeline": 300,
    "horeca.spiders.pipelines.NormalisePhonePipeline": 400,
    "horeca.spiders.pipelines.NormaliseWebsitePipeline": 410,
    "horeca.spiders.pipelines.ParseVatPipeline": 420,
    "horeca.spiders.pipelines.CoerceNumbersPipeline": 430,
    "horeca.spiders.pipelines.ValidatePipeline": 500,
    "horeca.spiders.pipelines.RegionPipeline": 600,
    "horeca.spiders.pipelines.DedupePipeline": 700,
    "horeca.spiders.pipelines.StorePipeline": 800,
}
SEEN_FILE = "horeca-seen-ids.txt"
STORE_FAILED = "horeca/store_failed"  # stats key: why a batch could not be written


class QuietDropsLogFormatter(LogFormatter):
    """Dropped listings are counted in the crawl report; logging each one (with the item)
    at WARNING, as Scrapy does, would flood the log and cost time on large crawls. The
    "Crawled (200)" line of every page is a debug record: not even built unless the
    engine's logger shows debug records."""

    def crawled(self, request: Any, response: Any, spider: Any = None) -> Any:
        if not _ENGINE_LOG.isEnabledFor(logging.DEBUG):
            return None
        return super().crawled(request, response, spider)

    def dropped(self, item: Any, exception: BaseException, response: Any,
                spider: Any = None) -> dict[str, Any]:
        entry = super().dropped(item, exception, response, spider)
        entry["level"] = logging.DEBUG
        entry["msg"] = "Dropped: %(exception)s"
        entry["args"] = {"exception": exception}
        return entry


class _Pipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.settings = crawler.settings

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        return cls(crawler)

    def drop(self, reason: str) -> DropItem:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"horeca/dropped/{reason}")
        return DropItem(reason)

    @property
    def default_country(self) -> str:
        return self.settings.get("HORECA_DEFAULT_COUNTRY") or "BE"


class CleanStringsPipeline(_Pipeline):
    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        return steps.clean_strings(item)


class ParseAddressPipeline(_Pipeline):
    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        return steps.parse_address_fields(item, self.default_country)


class NormalisePhonePipeline(_Pipeline):
    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        return steps.normalise_phone(item, self.default_country)


class NormaliseWebsitePipeline(_Pipeline):
    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        return steps.normalise_website(item)


class ParseVatPipeline(_Pipeline):
    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        return steps.parse_vat(item)


class CoerceNumbersPipeline(_Pipeline):
    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        return steps.coerce_numbers(item)


class ValidatePipeline(_Pipeline):
    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        reason = steps.validate(item)
        if reason:
            raise self.drop(reason)
        return item


class RegionPipeline(_Pipeline):
    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        region = getattr(self.crawler.spider, "region", None)
        reason = steps.region_drop_reason(item, region)
        if reason:
            raise self.drop(reason)
        return item


class DedupePipeline(_Pipeline):
    """Drops a listing whose source id was already kept in this crawl (duplicates across
    pages). The ids seen are saved in the job folder so a resumed crawl remembers them."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.seen: set[str] = set()
        jobdir = self.settings.get("JOBDIR")
        self.seen_file = Path(jobdir) / SEEN_FILE if jobdir else None

    def open_spider(self, spider: Any = None) -> None:
        if self.seen_file is not None and self.seen_file.exists():
            self.seen = set(self.seen_file.read_text(encoding="utf-8").split("\n")) - {""}

    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        key = str(item["source_id"])
        if key in self.seen:
            raise self.drop("duplicate")
        self.seen.add(key)
        return item

    def close_spider(self, spider: Any = None) -> None:
        if self.seen_file is not None and self.seen_file.parent.exists():
            self.seen_file.write_text("\n".join(sorted(self.seen)), encoding="utf-8")


class StorePipeline(_Pipeline):
    """Upserts kept listings in batches and counts coverage per field (added to the crawl's
    stats when the spider closes, rather than seven stats calls per listing)."""

    writer: ListingWriter

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.coverage: Counter[str] = Counter()

    def open_spider(self, spider: Any = None) -> None:
        db_path = self.settings.get("HORECA_DB_PATH")
        if not db_path:
            raise RuntimeError("HORECA_DB_PATH is not set")
        run_id = self.settings.getint("HORECA_RUN_ID") or None
        self.writer = ListingWriter(
            open_db(db_path), region=self.settings.get("HORECA_REGION_NAME"), run_id=run_id,
            batch_size=self.settings.getint("HORECA_WRITE_BATCH", DEFAULT_BATCH))

    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        try:
            self.writer.add(item)
        except Exception as err:
            self._failed(err)
            raise
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("horeca/kept")  # read by the progress bar
        self.coverage.update(field for field in COVERAGE_FIELDS if has_field(item, field))
        return item

    def _failed(self, err: Exception) -> None:
        """A batch that could not be written fails the crawl (see crawl_process), rather
        than a crawl reported complete with listings missing from the store."""
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("horeca/errors/store_failed")
            self.crawler.stats.set_value(STORE_FAILED, f"{type(err).__name__}: {err}")

    def close_spider(self, spider: Any = None) -> None:
        try:
            self.writer.close()
        except Exception as err:
            self._failed(err)
            raise
        finally:
            stats = self.crawler.stats
            if stats is not None:
                for field, count in self.coverage.items():
                    stats.inc_value(f"horeca/coverage/{field}", count)
                stats.set_value("horeca/written/new", self.writer.new)
                stats.set_value("horeca/written/updated", self.writer.updated)
            self.writer.db.conn.close()
