"""The crawl's request queue in the job folder (JOBDIR), with its top kept in memory.

Scrapy's `PickleLifoDiskQueue` turns every request into a dict, pickles it, appends it to
a file, and on the way out seeks, reads, truncates and rebuilds the request: a few
system calls and a new `Request` per page. `BufferedLifoDiskQueue` keeps the newest
`MEMORY_LIMIT` requests of each priority as they are and puts only older ones in the very
same disk queue (the bottom of the stack, which a LIFO queue reaches last), so a crawl
whose frontier stays small touches the disk only when it stops.

What a stopped crawl leaves behind does not change: `close()` (a finished, interrupted
or failed crawl alike, as Scrapy closes the scheduler) moves the requests still in memory
onto the disk queue in their order, so the folder holds exactly what Scrapy's own queue
would, in its format, and a resumed crawl reads it with either class. Memory stays flat:
at most `MEMORY_LIMIT` requests per priority are held (the crawl uses two priorities).
As with Scrapy's queue, a request that cannot be serialised is refused when pushed (the
scheduler then keeps it in its memory queue).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.squeues import PickleLifoDiskQueue

logger = logging.getLogger(__name__)

MEMORY_LIMIT = 256


class BufferedLifoDiskQueue:
    """A LIFO request queue: memory on top of Scrapy's pickle LIFO disk queue."""

    def __init__(self, crawler: Any, key: str, memory_limit: int = MEMORY_LIMIT) -> None:
        self.crawler = crawler
        self.key = key
        self.memory_limit = max(0, memory_limit)
        self.memory: list[Request] = []
        # A queue left by an earlier, interrupted crawl is opened at once; otherwise the
        # file is only created when requests have to go there.
        self.disk: Any = self._open_disk() if Path(key).exists() else None

    @classmethod
    def from_crawler(cls, crawler: Any, key: str, *args: Any, **kwargs: Any
                     ) -> BufferedLifoDiskQueue:
        return cls(crawler, key)

    def _open_disk(self) -> Any:
        return PickleLifoDiskQueue.from_crawler(self.crawler, self.key)

    def _check_serialisable(self, request: Request) -> None:
        """Raise ValueError now, as Scrapy's disk queue would, rather than when the
        request is written later: only a callback or errback that is not a method of the
        spider can make the dict fail; pickling it can still fail later (see `_spill`)."""
        if request.callback is not None or request.errback is not None:
            request.to_dict(spider=self.crawler.spider)

    def push(self, request: Request) -> None:
        self._check_serialisable(request)
        self.memory.append(request)
        if len(self.memory) > self.memory_limit:
            self._spill(1)

    def _spill(self, count: int) -> None:
        """Move the `count` oldest requests held in memory to the top of the disk stack
        (all of them are newer than what is already there)."""
        if self.disk is None:
            self.disk = self._open_disk()
        kept: list[Request] = []
        for request in self.memory[:count]:
            try:
                self.disk.push(request)
            except ValueError as err:  # e.g. an object in meta that pickle refuses
                logger.error("request %s cannot be saved in the job folder: %s",
                             request, err)
                kept.append(request)
        self.memory[:count] = kept

    def pop(self) -> Request | None:
        if self.memory:
            return self.memory.pop()
        return self.disk.pop() if self.disk is not None else None

    def peek(self) -> Request | None:
        if not self.memory and self.disk is not None and len(self.disk):
            # taken off the disk rather than peeked at: queuelib's peek leaves the file
            # position mid-file, and the next push would write there
            self.memory.append(self.disk.pop())
        return self.memory[-1] if self.memory else None

    def close(self) -> None:
        if self.memory:
            self._spill(len(self.memory))
        if self.disk is not None:
            self.disk.close()

    def __len__(self) -> int:
        return len(self.memory) + (len(self.disk) if self.disk is not None else 0)
