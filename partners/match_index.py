"""An in-memory index of the shared set for `POST /v1/partner/match`, kept current from the change
log (adds and removes applied incrementally; lookups never wait for a rebuild).

Each API process holds its own copy and catches up from the database before answering, so
several processes behind a load balancer agree.

PDQ: an exact multi-index hash (partners/pdq_index.py and its layers: design, memory, what is rebuilt when, and
why not faiss), built for 10 M hashes: recall 100% at distance <= 31, lookups lock-free, adds
matchable as soon as catch_up applied them (a brute-force delta tier), removes as pathway-bit
tombstones, the delta merged into the main table by a background thread, one slot at a time
(memory stays under 2 GB at 10 M throughout). MD5/SHA-256: exact dict. TMK: the authors' level-1
then level-2 scores.
"""
from __future__ import annotations

import threading

import numpy as np
from sqlalchemy import select

from hashing.signals import pdq, video_tmk_pdqf
from partners.pdq_index import PdqIndex
from store.models import OP_ADD, PATHWAYS, ChangeLogEntry, Hash


class MatchIndex:
    def __init__(self, background_merge: bool = True) -> None:
        self._lock = threading.Lock()
        self.applied_seq = 0
        # (signal_type, value) -> pathways it is currently shared under (all types but PDQ,
        # whose pathways are bits in the PDQ index: a dict entry per hash would not fit 10 M)
        self._pathways: dict[tuple[str, str], set[str]] = {}
        self.pdq = PdqIndex(PATHWAYS, background=background_merge)
        self._tmk: dict[str, np.ndarray] = {}  # value -> unit-length level-1 vector

    # ------------------------------------------------------------------ updates
    def catch_up(self, session) -> None:
        """Apply change-log entries committed since the last call."""
        while True:
            rows = session.execute(
                select(ChangeLogEntry.seq, ChangeLogEntry.op, ChangeLogEntry.pathway,
                       Hash.signal_type, Hash.value)
                .join(Hash, Hash.id == ChangeLogEntry.hash_id)
                .where(ChangeLogEntry.seq > self.applied_seq)
                .order_by(ChangeLogEntry.seq).limit(50_000)
            ).all()
            if not rows:
                return
            with self._lock:
                pdq_entries = []
                for row in rows:
                    if row.seq <= self.applied_seq:
                        continue  # another thread applied it meanwhile
                    if row.signal_type == pdq.NAME:
                        pdq_entries.append((row.op == OP_ADD, row.value, row.pathway))
                    else:
                        self._apply(row.op, row.signal_type, row.value, row.pathway)
                # Per-value order is kept within the batch; PDQ and other types are independent.
                self.pdq.apply_batch(pdq_entries)
                self.applied_seq = max(self.applied_seq, rows[-1].seq)

    def bulk_load_pdq(self, values_or_words, pathway: str) -> float:
        """Load many new distinct PDQ values straight into the main table (benchmarks, initial
        loads); they are not in the change log's accounting (applied_seq is unchanged)."""
        words = values_or_words
        if not isinstance(words, np.ndarray):
            from partners.pdq_layout import words_of_many
            words = words_of_many(list(values_or_words))
        return self.pdq.bulk_load(words, pathway)

    def _apply(self, op: str, signal_type: str, value: str, pathway: str) -> None:
        key = (signal_type, value)
        pathways = self._pathways.setdefault(key, set())
        was_present = bool(pathways)
        (pathways.add if op == OP_ADD else pathways.discard)(pathway)
        if pathways and not was_present:
            self._insert(signal_type, value)
        elif not pathways:
            del self._pathways[key]
            self._delete(signal_type, value)

    def _insert(self, signal_type: str, value: str) -> None:
        if signal_type == video_tmk_pdqf.NAME:
            self._tmk[value] = video_tmk_pdqf.level1_vector(value, normalized=True)

    def _delete(self, signal_type: str, value: str) -> None:
        if signal_type == video_tmk_pdqf.NAME:
            self._tmk.pop(value, None)

    # ------------------------------------------------------------------ lookups
    def _visible(self, key: tuple[str, str], pathways: list[str]) -> bool:
        return bool(self._pathways.get(key, set()).intersection(pathways))

    def match(self, signal_type: str, value: str, pathways: list[str]) -> list[tuple[str, str, float]]:
        """(signal_type, value, distance) of shared hashes matching the canonical `value`."""
        if signal_type == pdq.NAME:  # lock-free (see partners/pdq_index.py)
            return [(pdq.NAME, v, float(d)) for v, d in self.pdq.lookup(value, pathways)]
        with self._lock:
            if signal_type == video_tmk_pdqf.NAME:
                candidates = [(v, vec) for v, vec in self._tmk.items()
                              if self._visible((signal_type, v), pathways)]
            else:  # exact types
                key = (signal_type, value)
                return [(signal_type, value, 0.0)] if self._visible(key, pathways) else []
        return self._match_tmk(value, candidates)

    @staticmethod
    def _match_tmk(value: str, candidates) -> list[tuple[str, str, float]]:
        """The TMK authors' two stages: cheap level-1 cosine filter, then the level-2 score."""
        query = video_tmk_pdqf.level1_vector(value, normalized=True)
        found = []
        for candidate, vector in candidates:
            if float(vector @ query) < video_tmk_pdqf.LEVEL1_THRESHOLD:
                continue
            score = video_tmk_pdqf.level2_score(value, candidate)
            if score >= video_tmk_pdqf.LEVEL2_THRESHOLD:
                found.append((video_tmk_pdqf.NAME, candidate, round(1.0 - score, 6)))
        return sorted(found, key=lambda m: m[2])
