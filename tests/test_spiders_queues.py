"""The crawl's JOBDIR request queue: memory on top of Scrapy's own pickle LIFO disk queue."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy import Request, Spider
from scrapy.squeues import PickleLifoDiskQueue
from scrapy.utils.test import get_crawler

from horeca.spiders.queues import BufferedLifoDiskQueue


class _Spider(Spider):
    name = "queues"

    def parse_detail(self, response):  # a callback the disk queue can name
        return None


@pytest.fixture()
def crawler():
    crawler = get_crawler(_Spider)
    crawler.spider = _Spider()
    return crawler


def _urls(requests) -> list[str]:
    return [r.url for r in requests]


def _drain(queue) -> list[Request]:
    out = []
    while (request := queue.pop()) is not None:
        out.append(request)
    return out


@pytest.mark.parametrize("limit", [0, 1, 3, 100])
def test_order_is_last_in_first_out_whatever_spills_to_disk(crawler, tmp_path: Path,
                                                            limit: int) -> None:
    queue = BufferedLifoDiskQueue(crawler, str(tmp_path / "q" / "-10"), memory_limit=limit)
    for i in range(5):
        queue.push(Request(f"http://a.example/{i}"))
    assert len(queue) == 5 and queue.peek().url == "http://a.example/4"
    queue.push(Request("http://a.example/5"))
    assert _urls(_drain(queue)) == [f"http://a.example/{i}" for i in (5, 4, 3, 2, 1, 0)]
    assert len(queue) == 0
    queue.close()
    assert not (tmp_path / "q" / "-10").exists()  # an empty queue leaves no file


def test_a_closed_queue_is_scrapys_own_file_in_the_same_order(crawler, tmp_path: Path) -> None:
    key = str(tmp_path / "q" / "0")
    queue = BufferedLifoDiskQueue(crawler, key, memory_limit=2)
    for i in range(6):
        queue.push(Request(f"http://a.example/{i}", meta={"n": i}, priority=-i,
                           callback=crawler.spider.parse_detail))
    assert queue.pop().url == "http://a.example/5"
    queue.close()
    plain = PickleLifoDiskQueue.from_crawler(crawler, key)  # what Scrapy would read
    assert len(plain) == 5
    assert plain.peek().meta == {"n": 4}
    plain.close()
    resumed = BufferedLifoDiskQueue(crawler, key)
    requests = _drain(resumed)
    assert _urls(requests) == [f"http://a.example/{i}" for i in (4, 3, 2, 1, 0)]
    assert requests[0].callback == crawler.spider.parse_detail
    resumed.close()


def test_an_unserialisable_request_is_refused_when_pushed(crawler, tmp_path: Path) -> None:
    queue = BufferedLifoDiskQueue(crawler, str(tmp_path / "q" / "0"))
    with pytest.raises(ValueError):
        queue.push(Request("http://a.example/", callback=lambda response: None))
    assert len(queue) == 0
