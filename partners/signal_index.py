"""What every per-signal-type match index offers the match index (partners/match_index.py), so
that it can dispatch without knowing any type: python-threatexchange's `SignalType.get_index_cls`,
split across the device/server line.

A signal type's module (hashing/signals/<type>.py) names the kind of index that serves it in
`MATCH_INDEX`, a plain string: hashing/ runs on the person's device and imports nothing from the
server, so it cannot name a class. partners/match_index.py maps those names to the classes here
(exact dict, PDQ multi-index, TMK level-1/level-2), so adding a signal type means adding its
module, registering it in hashing/signals, and, only if no existing kind fits, an index class.
"""
from __future__ import annotations

from types import ModuleType

# (is_add, canonical value, pathway), in change-log order
Entry = tuple[bool, str, str]


class SignalIndex:
    """The shared set of one signal type. Writers are serialised by the caller (the match
    index's catch_up); lookups may run at any time from any thread and must never wait for a
    writer's slow work (bug 5 of issue 20: a PDQ merge stalled every other type's lookups)."""

    @classmethod
    def for_signal(cls, signal: ModuleType, pathways: tuple[str, ...],
                   background_merge: bool) -> SignalIndex:
        """The index for the signal type `signal` (its hashing/signals module)."""
        raise NotImplementedError

    def apply_batch(self, entries: list[Entry]) -> None:
        """Apply the entries in order; the visible effect is that of applying them one by one."""
        raise NotImplementedError

    def match(self, value: str, pathways) -> list[tuple[str, float]]:
        """(value, distance) of the indexed values matching canonical `value` that are shared
        under one of `pathways`, best first."""
        return [(v, d) for v, d, _ in self.match_shared(value, pathways)]

    def match_shared(self, value: str, pathways) -> list[tuple[str, float, frozenset[str]]]:
        """Like `match`, each match with the ones of `pathways` it is shared under (the match
        answer names them: a value can be shared under both, and a partner must never learn
        of a pathway it is not entitled to)."""
        raise NotImplementedError

    def backlogged(self) -> bool:
        """True when apply_batch would first wait for the index's own background work (a PDQ
        merge after a burst of adds); the caller then waits via wait_for_backlog() without
        holding any lock that lookups need."""
        return False

    def wait_for_backlog(self) -> None:
        """Return once the work that made the index backlogged is done."""
