"""Keeps a process's match index current from one place: a background thread, not every request.

Why: every `POST /v1/partner/match` used to run the index's catch-up query itself, so the first
request after start-up built the whole index (40 s at 1 M hashes) and, under load, 9-11 copies of
the same change-log query ran at once (issue 22). Now one follower per process builds the index
at start-up and then follows the change log, woken by the change-log notifier (in-process commits
and, on PostgreSQL, other processes' commits via LISTEN) and re-checking every `recheck_seconds`
as a backstop (SQLite has no cross-process wake-up).

Coalesced, not per commit (issue 22, the submit-throughput regression): under a stream of submits
the notifier fires for every commit (twice on PostgreSQL: the request's notify and LISTEN's), and
a pass per wake-up (one change-log query, an index apply, and the PDQ merges that the many small
applies set off) took a third of the server's CPU and halved submits/s (bench/submit_bench.py:
1,778 -> 843 cases/s). So after a pass the follower waits for the next wake-up and then lets
changes gather until `min_interval` has passed since the previous pass began, and reads all of
them in one query. A match request that needs currency (`wait_current` below) cuts that wait
short, so read-your-writes costs it one pass, not the interval. New hashes (and removals) are
still matchable within about `min_interval` + one pass of their commit, well under 1 s.
The PDQ index's merges, which the applies set off, are paced too (partners/pdq_index.py).

bench/submit_bench.py, default args, closed-loop submits, on a 2-core machine shared with other
work (load average beside each; quiet figures were not to be had), server CPU per case:
| code | load avg | cases/s | server CPU/case |
|---|---|---|---|
| 740fb57 (before the follower) | 21 -> 13 | 150 | 1.25 ms |
| 740fb57 | 10 -> 7.5 | 264 | 1.20 ms |
| 740fb57 | 7.9 -> 6.7 | 249 | 1.47 ms |
| d74ae5a (a pass per commit, a merge per 4,096 adds) | 1.8 -> 15 | 69 | 4.24 ms |
| 72b8ff2 (passes coalesced) | 9 -> 16 | 82 | 3.27 ms |
| 772d8ae (+ merges paced at 2 s, compiled merge) | 12.5 -> 18.7 | 95 | 3.44 ms |
| 1e835e7 (+ catch-up rows by position) | 13 -> 10 | 180 | 2.67 ms |
| 6b6e023 (+ merge pace 10 s) | 7.5 -> 13.4 | 179 | 2.07 ms |
| fd23939 (+ a pass per 250 ms at most) | 5.9 -> 7.9 | 207 | 1.82 ms |
The follower alone (one in a process of its own, over a 500 k-row index, while another process
logs 1,450-2,520 PDQ adds/s for 30 s; that process's CPU, two runs each, load 3-10): 0.54-0.58
ms per 10 adds at wt/int 7a7a8f3 (2 merges, two reads a pass), 0.16-0.30 ms with one read a pass
and merges paid for by lookups (partners/pdq_index.py MERGE_SCAN_BUDGET_ROWS: 0-1 merges, the
one at the 65,536-row scan limit).

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
import time

from partners.match_index import MatchIndex
from store.background import BackgroundLoop

log = logging.getLogger("hashguard.match_follower")

# Backstop between wake-ups: SQLite writers in other processes (the CLI) send none, and a lost
# LISTEN connection drops some. Cheap: one indexed `seq > n` query per process per interval.
RECHECK_SECONDS = 0.5
# Under a stream of commits, passes start at most this often (module docstring). Short enough
# that a commit is matchable well within a second; long enough that a pass reads a batch (at
# 1,800 submits/s of 10 hashes: ~4,500 entries a pass instead of one query per commit). py-spy
# at 0.15 s still showed the pass's query (its construction and round trips, not the rows) as
# most of the follower's time under bench/submit_bench.py.
MIN_INTERVAL_SECONDS = 0.25
# After a failed pass (database down at start-up, a lost connection), try again after this long.
RETRY_SECONDS = 1.0


class MatchIndexFollower(BackgroundLoop):
    thread_name = "match-index-follower"

    def __init__(self, index: MatchIndex, database, notifier,
                 recheck_seconds: float = RECHECK_SECONDS,
                 min_interval: float = MIN_INTERVAL_SECONDS) -> None:
        super().__init__()
        self.index, self.database, self.notifier = index, database, notifier
        self.recheck_seconds, self.min_interval = recheck_seconds, min_interval
        # Set by a request waiting for currency: ends the coalescing wait at once.
        self._hurry = threading.Event()
        self.passes = 0  # passes that succeeded (observability, tests, benchmarks)
        self.step_lock = threading.Lock()  # the test seam (module docstring)
        self._ready = threading.Event()
        # The notifier version the index is known to include (-1: nothing applied yet).
        self._synced_version = -1
        self._synced = threading.Condition()

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
        # After reading `wanted`: the follower clears the flag before it reads the version for a
        # pass, so either that pass covers `wanted` or the flag is still set for the next one.
        self._hurry.set()
        with self._synced:
            return self._synced.wait_for(lambda: self._synced_version >= wanted, timeout)

    # ------------------------------------------------------------------ thread
    def wake(self) -> None:
        self._hurry.set()  # end a coalescing wait
        self.notifier.notify()  # wake the thread if it waits on the notifier

    def run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self._hurry.clear()  # before reading the version: see wait_current
            # Read before querying the log: a commit announced after this read bumps the
            # version again, so its wake-up is not lost.
            version = self.notifier.version
            if not self._step(version):
                self._stop.wait(RETRY_SECONDS)
                continue
            if not self.notifier.wait_blocking(version, self.recheck_seconds):
                continue  # the periodic re-check (other processes' commits on SQLite)
            # Woken by a commit: let more gather (module docstring) unless a request waits.
            rest = started + self.min_interval - time.monotonic()
            if rest > 0:
                self._hurry.wait(rest)

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
        self.passes += 1
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
