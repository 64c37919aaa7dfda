"""Push wake-ups: tell waiting partners the moment the change log grows.

The cursor pull stays the source of truth; a wake-up only says "pull now". Within a process,
writers call `ChangeNotifier.notify()` after they commit. Across processes (several API workers
on one PostgreSQL), the change-log trigger sends `NOTIFY hashguard_change_log` at COMMIT
(migrations/), and every process runs a `PostgresListener` thread that LISTENs and forwards to
its local notifier, so a partner long-polling worker B learns of a submit served by worker A.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import psycopg

CHANNEL = "hashguard_change_log"
log = logging.getLogger("hashguard.wakeup")


class ChangeNotifier:
    """A version counter that threads bump and asyncio tasks (and threads) wait on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = set()
        self._thread_waiters = threading.Condition(self._lock)
        self.listeners: list[Callable[[], None]] = []  # e.g. the webhook dispatcher

    @property
    def version(self) -> int:
        return self._version

    def notify(self) -> None:
        with self._lock:
            self._version += 1
            waiters, self._waiters = self._waiters, set()
            self._thread_waiters.notify_all()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)
        for listener in self.listeners:
            listener()

    async def wait(self, seen_version: int, timeout: float) -> bool:
        """Wait until the version passes `seen_version`; False on timeout."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self._version != seen_version:
                return True
            self._waiters.add((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard((loop, future))

    def wait_blocking(self, seen_version: int, timeout: float) -> bool:
        with self._thread_waiters:
            return self._thread_waiters.wait_for(lambda: self._version != seen_version, timeout)


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class PostgresListener:
    """LISTENs on the change-log channel in a daemon thread and bumps the local notifier."""

    def __init__(self, conninfo: str, notifier: ChangeNotifier) -> None:
        self.conninfo, self.notifier = conninfo, notifier
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hashguard-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.notifier.notify()  # entries may have arrived while we were away
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.notifier.notify()
            except psycopg.Error:
                log.warning("change-log listener lost its connection; reconnecting")
                self._stop.wait(1.0)
