"""Keeps a process's match index current from one place: a background thread, not every request.

Why: every `POST /v1/partner/match` used to run the index's catch-up query itself, so the first
request after start-up built the whole index (40 s at 1 M hashes) and, under load, 9-11 copies of
the same change-log query ran at once (issue 22). Now one follower per process builds the index
at start-up and then follows the change log, woken by the change-log notifier (in-process commits
and, on PostgreSQL, other processes' commits via LISTEN) and re-checking every `recheck_seconds`
as a backstop (SQLite has no cross-process wake-up).

Requests ask two cheap questions (no database):
- `ready`: has the index caught up with the log at least once? Until then match answers 503
  `index_not_ready` and `/readyz` says not ready, so a request never waits for the build.
- `wait_current(timeout)`: has the follower applied everything the notifier had announced when
  the request arrived? A submit committed in this process (or announced by LISTEN) before the
  match request is then matchable by it: read-your-writes, at the cost of waiting for one
  incremental pass (milliseconds), bounded so that a slow pass never holds a request long.

Test seam: `step_lock` is held by the follower for each pass (build or catch-up). A test that
acquires it before the app starts keeps the index unbuilt (readyz and match answer 503) until it
releases it; nothing else takes it.
"""
from __future__ import annotations

import logging
import threading

from partners.match_index import MatchIndex

log = logging.getLogger("hashguard.match_follower")

# Backstop between wake-ups: SQLite writers in other processes (the CLI) send none, and a lost
# LISTEN connection drops some. Cheap: one indexed `seq > n` query per process per interval.
RECHECK_SECONDS = 0.5
# After a failed pass (database down at start-up, a lost connection), try again after this long.
RETRY_SECONDS = 1.0


class MatchIndexFollower:
    def __init__(self, index: MatchIndex, database, notifier,
                 recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.index, self.database, self.notifier = index, database, notifier
        self.recheck_seconds = recheck_seconds
        self.step_lock = threading.Lock()  # the test seam (module docstring)
        self._ready = threading.Event()
        # The notifier version the index is known to include (-1: nothing applied yet).
        self._synced_version = -1
        self._synced = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        """The index has caught up with the change log at least once."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def wait_current(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until the index includes every change announced before this
        call; False on timeout (the caller answers from the index as it is)."""
        wanted = self.notifier.version
        if self._synced_version >= wanted:  # the common case: no lock, no wait
            return True
        with self._synced:
            return self._synced.wait_for(lambda: self._synced_version >= wanted, timeout)

    # ------------------------------------------------------------------ thread
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="match-index-follower",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.notifier.notify()  # wake the thread if it waits on the notifier
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            # Read before querying the log: a commit announced after this read bumps the
            # version again, so its wake-up is not lost.
            version = self.notifier.version
            if not self._step(version):
                self._stop.wait(RETRY_SECONDS)
                continue
            self.notifier.wait_blocking(version, self.recheck_seconds)

    def _step(self, version: int) -> bool:
        """One pass: apply what the log holds; True when it succeeded."""
        # Acquired with a timeout so that stop() is honoured while a test holds the seam.
        while not self.step_lock.acquire(timeout=0.1):
            if self._stop.is_set():
                return False
        try:
            with self.database.read() as session:
                self.index.catch_up(session)
        except Exception:  # noqa: BLE001 - retried; the index keeps what it applied
            if not self._stop.is_set():
                log.exception("match index catch-up failed; retrying")
            return False
        finally:
            self.step_lock.release()
        with self._synced:
            self._synced_version = max(self._synced_version, version)
            self._synced.notify_all()
        if not self._ready.is_set():
            log.info("match index ready at change-log seq %d", self.index.applied_seq)
            self._ready.set()
        return True


def match_index_ready(app) -> dict | None:
    """For `/readyz`: None when the match index has been built; else why this process is not
    ready yet (a load balancer should not route matches to it)."""
    follower = getattr(app.state, "match_follower", None)
    if follower is None or follower.ready:
        return None
    return {"status": "unavailable", "reason": "index_not_ready"}
