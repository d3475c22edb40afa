"""Offline matching of a run's distinct queries, in this process or in a second one.

`geocode_pending` hands `OfflineMatching` the queries the cache cannot answer while it is
still reading and normalising entities (`add`), then takes the answers batch by batch,
in the order the queries were added (`batches`); once the last batch is taken, every
answer is in the cache (`geocodes`).

With two workers (`workers` = 2, or 0 when a core is idle), a store on disk, fork
available and at least `BATCH` queries to match, a forked process loads the gazetteer
areas each batch can reach, matches the batch while this process goes on reading
entities, and writes the answers to the cache with its own connection (this process
writes nothing until that transaction is committed). Loading the index, matching and
the cache rows leave the run's critical path. Smaller runs, and runs on a machine whose
other cores are busy, are matched here: a second process would cost more than it saves.

The answers are the same either way: a query's answer depends only on the areas it can
reach (`gazetteer.Reach`), and those are loaded before it is matched.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import sqlite_utils

from horeca.bulk import can_fork
from horeca.geocode.gazetteer import DEFAULT_FUZZY_CUTOFF, AreaLoader, Gazetteer
from horeca.geocode.model import (
    CACHE_COLUMNS,
    GAZETTEER,
    STATUS_NOT_FOUND,
    AddressQuery,
    Answer,
)
from horeca.store import db_file, open_db, transaction, upsert
from horeca.store.runs import now_iso

Progress = Callable[[str, int, int], None]   # (phase, done, total)
Matched = list[tuple[AddressQuery, Answer]]   # one batch: each query with its answer

BATCH = 4096          # queries per batch (matched, sent, written together)
_POLL_SECONDS = 1.0   # how often a wait checks that the matching process is alive
# The matching process's page cache while it writes (KiB, used only as far as needed):
# 100,000 answers fill about 20 MB of pages.
_WRITE_CACHE_KIB = 256 * 1024


def match_offline(gazetteer: Gazetteer, query: AddressQuery, imported: bool) -> Answer:
    if not imported:
        return Answer(provider=GAZETTEER, query_key=query.gazetteer_key, query="",
                      status=STATUS_NOT_FOUND, error="not_found: no gazetteer imported")
    return gazetteer.match(query)


def write_answers(db: sqlite_utils.Database, answers: Iterable[Answer]) -> int:
    stamp = now_iso()
    # In key order, SQLite fills its index pages one after another.
    rows = sorted(a.values(stamp) for a in answers)   # the key comes first and is unique
    return upsert(db, "geocodes", rows, key="key", columns=CACHE_COLUMNS) if rows else 0


def other_running_tasks(samples: int = 3, gap_s: float = 0.003) -> float:
    """How many other tasks keep a core busy: on Linux the fewest running tasks seen in a
    few looks at /proc/loadavg (a busy neighbour is in every look, a passing one is not),
    less this one; elsewhere the load average of the last minute."""
    try:
        seen = []
        for i in range(samples):
            if i:
                time.sleep(gap_s)
            fields = Path("/proc/loadavg").read_text().split()
            seen.append(int(fields[3].split("/")[0]) - 1)
        return max(0, min(seen))
    except (OSError, IndexError, ValueError):
        return os.getloadavg()[0]


def second_core_free() -> bool:
    """Whether a core is left for a second process besides this one: when other work
    keeps the cores busy, the processes only take turns, and the copies and transfers
    between them make the run slower than one process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    return cores >= 2 and other_running_tasks() <= cores - 2


def use_workers(workers: int) -> int:
    """Processes to match with: `workers` as configured, 0 meaning two when another core
    looks idle, else one."""
    if workers:
        return workers
    return 2 if second_core_free() else 1


class OfflineMatching:
    """Collects queries to match; matches them here or in a forked process."""

    def __init__(self, db: sqlite_utils.Database, *, workers: int = 0,
                 fuzzy_cutoff: float = DEFAULT_FUZZY_CUTOFF) -> None:
        self.db, self.fuzzy_cutoff = db, fuzzy_cutoff
        self._batches: list[list[AddressQuery]] = []
        self._waiting: list[AddressQuery] = []
        self._workers = workers
        self._child: _MatchingProcess | None = None
        self._decided = False

    @property
    def forked(self) -> bool:
        return self._child is not None

    def add(self, queries: list[AddressQuery]) -> None:
        self._waiting.extend(queries)
        while len(self._waiting) >= BATCH:
            batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
            self._batches.append(batch)
            if not self._decided:   # a large run: worth a second process?
                self._decided = True
                path = db_file(self.db)
                if path and can_fork() and use_workers(self._workers) >= 2:
                    self._child = _MatchingProcess(path, self.fuzzy_cutoff)
            if self._child is not None:
                self._child.submit(batch)

    def batches(self, progress: Progress | None = None) -> Iterator[Matched]:
        """Every query added with its answer, batch after batch, in the order added."""
        if self._waiting:
            self._batches.append(self._waiting)
            if self._child is not None:
                self._child.submit(self._waiting)
            self._waiting = []
        total, done = sum(map(len, self._batches)), 0
        if self._child is not None:
            matched = self._child.answers(self._batches)
        else:
            matched = _match_here(self.db, self._batches, self.fuzzy_cutoff)
        for batch in matched:
            done += len(batch)
            if progress:
                progress("offline", done, total)
            yield batch
        self._batches = []

    def close(self) -> None:
        """Stop the matching process, if any (it has ended unless a run failed)."""
        if self._child is not None:
            self._child.stop()
            self._child = None


def _match_here(db: sqlite_utils.Database, batches: list[list[AddressQuery]],
                fuzzy_cutoff: float) -> Iterator[Matched]:
    if not batches:
        return
    loader = AreaLoader(db, fuzzy_cutoff=fuzzy_cutoff)
    computed: list[Answer] = []
    for batch in batches:
        gazetteer = loader.for_queries(batch)
        answers = [match_offline(gazetteer, q, loader.imported) for q in batch]
        computed.extend(answers)
        yield list(zip(batch, answers, strict=True))
    with transaction(db):
        write_answers(db, computed)


@contextmanager
def page_cache(db: sqlite_utils.Database, kib: int) -> Iterator[None]:
    """SQLite's page cache raised to `kib` KiB (if smaller) for a block, then restored."""
    before = db.conn.execute("PRAGMA cache_size").fetchone()[0]
    page_kib = db.conn.execute("PRAGMA page_size").fetchone()[0] / 1024
    if (-before if before < 0 else before * page_kib) >= kib:
        yield
        return
    db.conn.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        db.conn.execute(f"PRAGMA cache_size = {int(before)}")


# ------------------------------------------------------------------ the second process

def _query_fields(q: AddressQuery) -> tuple[Any, ...]:
    return (q.street, q.number, q.number_last, q.suffix, q.postcode, q.locality, q.country,
            q.street_alt)


def _answer_fields(a: Answer) -> tuple[Any, ...]:
    """An answer without its provider and query key (both known to the receiver), in the
    order `Answer` takes them after those two."""
    return (a.query, a.status, a.lat, a.lon, a.precision, a.method, a.matched, a.error)


class _MatchingProcess:
    def __init__(self, path: str, fuzzy_cutoff: float) -> None:
        context = multiprocessing.get_context("fork")
        self._inbox: Queue[Any] = context.Queue()
        self._outbox: Queue[Any] = context.Queue()
        self._process = context.Process(target=_serve, name="horeca-geocode-match",
                                        args=(path, fuzzy_cutoff, self._inbox, self._outbox),
                                        daemon=True)
        self._process.start()

    def submit(self, queries: list[AddressQuery]) -> None:
        self._inbox.put([_query_fields(q) for q in queries])

    def answers(self, batches: list[list[AddressQuery]]) -> Iterator[Matched]:
        self._inbox.put(None)
        for batch in batches:
            fields = self._receive("answers")
            yield [(q, Answer(GAZETTEER, q.gazetteer_key, *values))
                   for q, values in zip(batch, fields, strict=True)]
        self._receive("written")
        self._process.join()

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()

    def _receive(self, expected: str) -> Any:
        while True:
            try:
                kind, payload = self._outbox.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RuntimeError("the offline matching process ended without an "
                                       f"answer (exit code {self._process.exitcode})") from None
                continue
            if kind == "error":
                raise RuntimeError(f"offline matching failed: {payload}")
            assert kind == expected, (kind, expected)
            return payload


def _serve(path: str, fuzzy_cutoff: float, inbox: Queue[Any], outbox: Queue[Any]) -> None:
    """The matching process: batches of query fields in, their answers out, until None;
    each batch's answers written to the cache as it goes, in one transaction (a page that
    several batches touch is written once), then ("written", count) out."""
    try:
        db = open_db(path, create=False)
        written = 0
        with transaction(db), page_cache(db, _WRITE_CACHE_KIB):
            loader = AreaLoader(db, fuzzy_cutoff=fuzzy_cutoff)
            for batch in iter(inbox.get, None):
                queries = [AddressQuery(*values) for values in batch]
                gazetteer = loader.for_queries(queries)
                answers = [match_offline(gazetteer, q, loader.imported) for q in queries]
                outbox.put(("answers", [_answer_fields(a) for a in answers]))
                written += write_answers(db, answers)
        db.conn.close()
        outbox.put(("written", written))
    except BaseException as err:  # reported to the parent, which raises it
        outbox.put(("error", f"{type(err).__name__}: {err}"))
    finally:
        outbox.close()
        outbox.join_thread()
