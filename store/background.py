"""One way to run a process's background loops over the store: start once, stop with a join.

Three loops follow or tidy the store from a daemon thread in every serving process: the match
index follower (partners/match_follower.py), the transparency tree builder
(partners/transparency.py) and the idempotency sweeper (api/idempotency_sweeper.py). Each had its
own copy of the same start/stop code; a fix to one (say, a stop that must also wake a waiting
thread) was easy to miss in the others. Each loop still owns its own `run` and its waits: they
differ on purpose (a coalescing follower, a timed signer, a sweeper on ticks).
"""
from __future__ import annotations

import threading

# How long stop() waits for a loop to finish its current step. A step is one database
# round of work; a loop stuck longer than this is left to die with the process (daemon thread).
STOP_JOIN_SECONDS = 30.0


class BackgroundLoop:
    """Subclasses set `thread_name`, implement `run()` (return once `stopping` is set) and, when
    `run()` can block on something other than `stopping`, override `wake()` to end that wait."""

    thread_name = "background-loop"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_SECONDS)
            self._thread = None

    def wake(self) -> None:
        """End any wait other than on `stopping` (nothing by default)."""

    def run(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError
