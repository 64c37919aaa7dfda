"""Group commit for case submits on PostgreSQL: concurrent submits share one transaction.

Why: the change log's order is drawn at COMMIT under one lock that is held through the commit's
WAL flush (store/changelog.py), so transactions that append to the log commit one at a time,
each paying a flush. One submit per transaction capped the service at the flush rate (measured
with bench/submit_bench.py: ~300 submits/s, most backends queued on the lock). PostgreSQL's own
group commit cannot help while the lock serialises the flushes, so the grouping happens here:
each process has one writer thread; request threads hand it their submit and wait; the writer
takes everything queued (up to MAX_CASES) and creates it with one statement in autocommit
(store/backends/postgres.py), on a psycopg connection of its own that it keeps open (no pool
checkout per batch). Under light load a batch is a single submit and nothing waits; under heavy
load batches grow and the flushes per submit shrink.

A batch is all or nothing in the database. If it fails (say, two retries with the same
Idempotency-Key landed in one batch), each of its submits is retried alone, so each gets its
own outcome, exactly as without batching.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import psycopg
import psycopg.errors
from sqlalchemy.exc import DBAPIError, OperationalError

from store.backends import postgres

log = logging.getLogger("hashguard.submits")

MAX_CASES = 64
MAX_HASHES = 20_000  # keeps one statement's arrays (and its lock set) bounded


@dataclass
class _Pending:
    values: dict
    rows: list
    result: Future = field(default_factory=Future)  # the case id, or the submit's error
    case_id: int | None = None
    error: BaseException | None = None

    def settle(self) -> None:
        # The future is RUNNING (see _take), so no one can cancel it any more.
        if self.error is not None:
            self.result.set_exception(self.error)
        else:
            self.result.set_result(self.case_id)


class SubmitBatcher:
    def __init__(self, database):
        self.database = database
        self._queue: deque[_Pending] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.largest_batch = 0  # for tests and curiosity: did concurrent submits share commits?
        self._connection = None  # the writer thread's own; opened on its first batch

    def enqueue(self, values: dict, rows: list) -> Future:
        """Queue one case; the future resolves to its id once committed (async callers await
        it with asyncio.wrap_future: no thread is parked per waiting request)."""
        pending = _Pending(values, rows)
        with self._wake:
            if self._closed:
                raise RuntimeError("the database is closed")
            self._queue.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="submit-batcher",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()
        return pending.result

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(30)
        self._close_connection()

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    while not self._queue and not self._closed:
                        self._wake.wait()
                    if not self._queue:
                        return
                    batch = self._take()
                if batch:  # empty when every queued request went away
                    self._commit(batch)
        finally:
            self._close_connection()
            with self._wake:  # the next submit starts a new writer
                self._thread = None

    def _take(self) -> list[_Pending]:
        batch, hashes = [], 0
        while self._queue and len(batch) < MAX_CASES:
            if batch and hashes + len(self._queue[0].rows) > MAX_HASHES:
                break
            item = self._queue.popleft()
            # A request that went away while queued (asyncio.wrap_future cancels the future when
            # its awaiting task is cancelled) is dropped: no one would learn the case's token.
            # Marking the rest RUNNING makes a later cancel a no-op, so settle() cannot meet a
            # cancelled future (which raised InvalidStateError, stopped the writer and left
            # the rest of its batch waiting for good).
            if not item.result.set_running_or_notify_cancel():
                continue
            batch.append(item)
            hashes += len(item.rows)
        self.largest_batch = max(self.largest_batch, len(batch))
        return batch

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            try:
                for item, case_id in zip(batch, self._execute(batch)):
                    item.case_id = case_id
            except Exception as error:
                if len(batch) == 1:
                    batch[0].error = error
                else:
                    log.info("a batch of %d submits failed (%s); retrying them one by one",
                             len(batch), type(error).__name__)
                    for item in batch:
                        try:
                            item.case_id = self._execute([item])[0]
                        except Exception as alone:
                            item.error = alone
        except BaseException as unexpected:  # never leave a request waiting forever
            for item in batch:
                if item.case_id is None and item.error is None:
                    item.error = unexpected
            raise
        finally:
            for item in batch:
                item.settle()

    def _execute(self, batch: list[_Pending]) -> list[int]:
        if self._connection is None or self._connection.closed:
            self._connection = self.database.connect_autocommit()
        try:
            return postgres.BACKEND.create_cases(
                self._connection, [(p.values, p.rows) for p in batch], int(time.time()),
                autocommit=True)
        except DBAPIError as failed:
            # The connection may be gone (a restarted server), or was opened while the database
            # was read-only (it would stay so once the database is writable again): the next
            # batch opens a new one.
            if (isinstance(failed, OperationalError)
                    or isinstance(failed.orig, psycopg.errors.ReadOnlySqlTransaction)):
                self._close_connection()
            raise

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
