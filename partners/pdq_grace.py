"""The PDQ index's reuse grace period: memory a merge retires (a slot's old regions, dropped
rows) is written again only after every lookup that might still read it has finished.

Why: lookups take no lock (they read an immutable view that writers replace atomically), so a
writer cannot know who still reads the old one; lookups register themselves instead (a dict
entry, no lock), and the merge waits for the older registrations to go before it reuses memory.
"""
from __future__ import annotations

import itertools
import time

class Readers:
    """Running lookups, registered without a lock, so that a merge reuses memory it retired (a
    slot's old regions, dropped rows) only once no lookup can still read it: a grace period.

    A lookup registers the publication count BEFORE it reads the view. So if a writer replaces
    the view, then bumps the count to N, then sees no registration below N, every lookup still
    running registered after the replacement and reads the new view."""

    def __init__(self) -> None:
        self._tickets = itertools.count()
        self._running: dict[int, int] = {}  # ticket -> publication count when it started
        self.published = 0

    def enter(self) -> int:
        ticket = next(self._tickets)
        self._running[ticket] = self.published
        return ticket

    def leave(self, ticket: int) -> None:
        del self._running[ticket]

    def publish(self) -> int:
        """Call right after replacing the view (under the write lock)."""
        self.published += 1
        return self.published

    def wait_for(self, published: int) -> None:
        """Return once no lookup that started before publication `published` is running."""
        while any(p < published for p in list(self._running.values())):
            time.sleep(0.0002)
