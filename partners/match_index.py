"""An in-memory index of the shared set for `POST /v1/partner/match`, kept current from the change
log (adds and removes applied incrementally; lookups never wait for a rebuild).

Each API process holds its own copy, built at start-up and kept current by one follower thread
(partners/match_follower.py; requests never run catch_up), so several processes behind a load
balancer agree within a second.

This class only dispatches: one index per signal type, of the kind the type's module names in
`MATCH_INDEX` (INDEX_CLASSES below; python-threatexchange's `get_index_cls`). PDQ: an exact
multi-index hash (partners/pdq_index.py and its layers: design, memory, what is rebuilt when,
and why not faiss), built for 10 M hashes: recall 100% at distance <= 31, lookups lock-free,
adds matchable as soon as catch_up applied them, removes as tombstones, merges in a background
thread with memory under 2 GB at 10 M throughout. MD5/SHA-256: exact dict
(partners/exact_index.py). TMK: the authors' level-1 then level-2 scores (partners/tmk_index.py).
vPDQ: the frames in a second PDQ multi-index, counted per video (partners/vpdq_index.py).

Locks: catch_up's writers are serialised by `_apply_lock`, which no lookup takes; each index
guards its own lookups (a dict lock held for microseconds; PDQ none). When an index must first
finish its own background work (a PDQ merge after a burst of adds), catch_up waits for it
outside every lock, so lookups of every type go on meanwhile (issue 20, bug 5: the wait used to
happen under the one lock that MD5, SHA-256 and TMK lookups took).
"""
from __future__ import annotations

import bisect
import threading
from operator import itemgetter
from types import ModuleType

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from hashing.signals import SIGNAL_TYPES, pdq
from partners.exact_index import ExactIndex
from partners.pdq_index import PdqIndex
from partners.signal_index import Entry, SignalIndex
from partners.tmk_index import TmkIndex
from partners.vpdq_index import VpdqIndex
from store import changelog
from store.models import OP_ADD, PATHWAYS, Hash

# Catch-up reads the log in batches of at most this many entries and about this many bytes of
# values, so a restart with many TMK values stored never holds them all at once.
CATCH_UP_ROWS = 50_000
CATCH_UP_BYTES = 16 * 1024 * 1024

# A signal module's MATCH_INDEX -> the class that serves it.
INDEX_CLASSES: dict[str, type[SignalIndex]] = {
    "exact": ExactIndex,
    "pdq_multi_index": PdqIndex,
    "tmk_two_level": TmkIndex,
    "vpdq_frames": VpdqIndex,
}


def _batches_after(rows, applied_seq: int) -> dict[str, list[Entry]]:
    """The entries of `rows` (in seq order) past `applied_seq` (the earlier ones another thread
    applied meanwhile), by signal type, each type's in order. By position, not attribute: per
    row attribute access was most of a catch-up pass's own time under a stream of submits
    (py-spy of bench/submit_bench.py), and a pass reads thousands of rows."""
    fields = rows[0]._fields
    first = bisect.bisect_right(rows, applied_seq, key=itemgetter(fields.index("seq")))
    pick = itemgetter(*(fields.index(n) for n in ("signal_type", "op", "value", "pathway")))
    batches: dict[str, list[Entry]] = {}
    for signal_type, op, value, pathway in map(pick, rows[first:]):
        entries = batches.get(signal_type)
        if entries is None:
            entries = batches[signal_type] = []
        entries.append((op == OP_ADD, value, pathway))
    return batches


def index_class(signal: ModuleType) -> type[SignalIndex]:
    """The index class serving the signal type `signal` (a hashing/signals module)."""
    try:
        return INDEX_CLASSES[signal.MATCH_INDEX]
    except (AttributeError, KeyError):
        raise LookupError(f"signal type {signal.NAME!r} names no known MATCH_INDEX "
                          f"(one of {', '.join(sorted(INDEX_CLASSES))})") from None


class MatchIndex:
    def __init__(self, background_merge: bool = True) -> None:
        self._apply_lock = threading.Lock()  # catch_up's writers; never taken by lookups
        self.applied_seq = 0
        self.indexes: dict[str, SignalIndex] = {
            name: index_class(signal).for_signal(signal, PATHWAYS, background_merge)
            for name, signal in SIGNAL_TYPES.items()}
        self._engine = None
        for index in self.indexes.values():
            if hasattr(index, "set_value_loader"):
                index.set_value_loader(self._load_values)

    def _load_values(self, digests: list[bytes]) -> dict[bytes, str]:
        """Values by their store digest (store/cases.hash_digest), for an index that keeps only
        digests in memory (TMK: 351 KB a value, read back for its few level-2 candidates)."""
        if self._engine is None or not digests:
            return {}
        with Session(self._engine) as session:
            return dict(session.execute(select(Hash.digest, Hash.value)
                                        .where(Hash.digest.in_(digests))).all())

    @property
    def pdq(self) -> PdqIndex:
        """The PDQ index (benchmarks, bulk loads, tests)."""
        return self.indexes[pdq.NAME]

    # ------------------------------------------------------------------ updates
    def catch_up(self, session) -> None:
        """Apply change-log entries committed since the last call."""
        self._engine = session.get_bind()  # where indexes that keep no values read them back
        while True:
            # Bounded by bytes too: 50,000 TMK entries would be 17 GB in one batch.
            rows, more = changelog.read_all_after(session, self.applied_seq, CATCH_UP_ROWS,
                                                  CATCH_UP_BYTES)
            if not rows:
                return
            with self._apply_lock:
                batches = _batches_after(rows, self.applied_seq)
                # A type no longer registered cannot be looked up (its queries are refused as
                # an unknown type), so its entries are skipped.
                targets = {self.indexes[t]: e for t, e in batches.items() if t in self.indexes}
                busy = [index for index in targets if index.backlogged()]
                if not busy:
                    # Types are independent; each batch keeps its entries' order.
                    for index, entries in targets.items():
                        index.apply_batch(entries)
                    self.applied_seq = max(self.applied_seq, rows[-1].seq)
                    if not more:
                        return
                    continue
            for index in busy:  # outside every lock; then fetch and try again
                index.wait_for_backlog()

    def bulk_load_pdq(self, values_or_words, pathway: str) -> float:
        """Load many new distinct PDQ values straight into the main table (benchmarks, initial
        loads); they are not in the change log's accounting (applied_seq is unchanged)."""
        words = values_or_words
        if not isinstance(words, np.ndarray):
            from partners.pdq_layout import words_of_many
            words = words_of_many(list(values_or_words))
        return self.pdq.bulk_load(words, pathway)

    # ------------------------------------------------------------------ lookups
    def match(self, signal_type: str, value: str, pathways: list[str]) -> list[tuple[str, str, float]]:
        """(signal_type, value, distance) of shared hashes matching the canonical `value`."""
        index = self.indexes.get(signal_type)  # None: not a type (refused before it gets here)
        return [] if index is None else [
            (signal_type, v, d) for v, d in index.match(value, pathways)]

    def match_shared(self, signal_type: str, value: str,
                     pathways: list[str]) -> list[tuple[str, str, float, list[str]]]:
        """Like `match`, each with the ones of `pathways` the match is shared under, in
        PATHWAYS order."""
        index = self.indexes.get(signal_type)
        return [] if index is None else [
            (signal_type, v, d, [p for p in PATHWAYS if p in shared])
            for v, d, shared in index.match_shared(value, pathways)]
