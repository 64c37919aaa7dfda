"""Deletes replay records (Idempotency-Key digest, request digest, sealed token) once their
replay window is over, so that a key stops being a credential to its case (api/idempotency.py).

How it knows a record's age without storing a time in the clear (case times are kept to the
hour, store/models.py): case ids only grow, so every tick it notes the highest case id and the
(monotonic) time it saw it; a record with an id up to a mark taken a whole window ago was made
before that mark, so its window is over. Records are deleted between one window and one window
plus a tick after their submit; a replay in between is already refused (api/cases.py checks the
sealed time). Each serving process sweeps with its own marks: the deletes are idempotent, so
several processes need no coordination, and after a restart the records made before it are
deleted a window later (until then they are refused on replay all the same).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

from store import cases as store_cases
from store.background import BackgroundLoop

log = logging.getLogger("hashguard.idempotency")

MAX_TICK_SECONDS = 60.0
TICKS_PER_WINDOW = 10


class IdempotencySweeper(BackgroundLoop):
    thread_name = "idempotency-sweeper"

    def __init__(self, database, window_seconds: float):
        super().__init__()
        self.database, self.window = database, window_seconds
        # A tenth of the window (at most a minute): records outlive it by at most that much.
        self.tick = min(MAX_TICK_SECONDS, max(0.01, window_seconds / TICKS_PER_WINDOW))
        self._marks: deque[tuple[float, int]] = deque()  # (monotonic time, highest case id)
        self._lock = threading.Lock()

    def sweep(self) -> int:
        """Take a mark, delete the records whose window is over; returns how many it deleted."""
        with self._lock:
            now = time.monotonic()
            with self.database.read() as session:
                self._marks.append((now, store_cases.last_case_id(session)))
            due = None
            while self._marks and now - self._marks[0][0] >= self.window:
                due = self._marks.popleft()[1]
            if due is None:
                return 0
            with self.database.transaction() as session:
                return store_cases.forget_idempotency_through(session, due)

    def run(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:  # the next tick retries; a failed delete leaves records refused
                log.exception("idempotency sweep failed")
            if self._stop.wait(self.tick):
                return
