"""An in-memory index of the shared set for `POST /v1/partner/match`, kept current from the change
log (adds and removes applied incrementally; lookups never wait for a rebuild).

Each API process holds its own copy and catches up from the database before answering, so
several processes behind a load balancer agree. PDQ lookups are a vectorised brute-force
Hamming scan (exact: recall is 100% by construction); the scale issue swaps in a multi-index.
"""
from __future__ import annotations

import threading

import numpy as np
from sqlalchemy import select

from hashing.signals import pdq, video_tmk_pdqf
from store.models import OP_ADD, ChangeLogEntry, Hash

_popcount = getattr(np, "bitwise_count", None)


def _popcount_rows(words: np.ndarray) -> np.ndarray:
    if _popcount is not None:
        return _popcount(words).sum(axis=1, dtype=np.int32)
    as_bytes = words.view(np.uint8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1, dtype=np.int32)


def pdq_words(value: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(value), dtype=">u8").astype(np.uint64)


class MatchIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.applied_seq = 0
        # (signal_type, value) -> pathways it is currently shared under
        self._pathways: dict[tuple[str, str], set[str]] = {}
        self._pdq_rows = np.zeros((1024, 4), dtype=np.uint64)
        self._pdq_alive = np.zeros(1024, dtype=bool)
        self._pdq_values: list[str] = []
        self._pdq_position: dict[str, int] = {}
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
                for row in rows:
                    if row.seq <= self.applied_seq:
                        continue  # another thread applied it meanwhile
                    self._apply(row.op, row.signal_type, row.value, row.pathway)
                    self.applied_seq = row.seq

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
        if signal_type == pdq.NAME:
            position = self._pdq_position.get(value)
            if position is None:
                position = len(self._pdq_values)
                if position == len(self._pdq_alive):
                    self._pdq_rows = np.concatenate([self._pdq_rows, np.zeros_like(self._pdq_rows)])
                    self._pdq_alive = np.concatenate([self._pdq_alive,
                                                      np.zeros_like(self._pdq_alive)])
                self._pdq_values.append(value)
                self._pdq_position[value] = position
                self._pdq_rows[position] = pdq_words(value)
            self._pdq_alive[position] = True
        elif signal_type == video_tmk_pdqf.NAME:
            self._tmk[value] = video_tmk_pdqf.level1_vector(value, normalized=True)

    def _delete(self, signal_type: str, value: str) -> None:
        if signal_type == pdq.NAME and value in self._pdq_position:
            self._pdq_alive[self._pdq_position[value]] = False  # slot reused if it comes back
        elif signal_type == video_tmk_pdqf.NAME:
            self._tmk.pop(value, None)

    # ------------------------------------------------------------------ lookups
    def _visible(self, key: tuple[str, str], pathways: list[str]) -> bool:
        return bool(self._pathways.get(key, set()).intersection(pathways))

    def match(self, signal_type: str, value: str, pathways: list[str]) -> list[tuple[str, str, float]]:
        """(signal_type, value, distance) of shared hashes matching the canonical `value`."""
        with self._lock:
            if signal_type == pdq.NAME:
                return self._match_pdq(value, pathways)
            if signal_type == video_tmk_pdqf.NAME:
                candidates = [(v, vec) for v, vec in self._tmk.items()
                              if self._visible((signal_type, v), pathways)]
            else:  # exact types
                key = (signal_type, value)
                return [(signal_type, value, 0.0)] if self._visible(key, pathways) else []
        return self._match_tmk(value, candidates)

    def _match_pdq(self, value: str, pathways: list[str]) -> list[tuple[str, str, float]]:
        count = len(self._pdq_values)
        distances = _popcount_rows(self._pdq_rows[:count] ^ pdq_words(value))
        hits = np.nonzero((distances <= pdq.MATCH_THRESHOLD) & self._pdq_alive[:count])[0]
        found = [(pdq.NAME, self._pdq_values[i], float(distances[i])) for i in hits
                 if self._visible((pdq.NAME, self._pdq_values[i]), pathways)]
        return sorted(found, key=lambda m: m[2])

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
