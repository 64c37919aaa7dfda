"""The match index of TMK+PDQF video hashes: the TMK authors' two stages, a cheap level-1 cosine
filter over every shared video's time-averaged frame features, then the level-2 score (the
best time offset) on the few that pass. Values are 351 KB each, so the index keeps only their
unit-length level-1 vectors (1 KB) beside the value, and decodes a candidate's full features
only when it passes level 1, for at most the signal's LEVEL2_CANDIDATES_PER_QUERY candidates.

The signal module (hashing/signals/video_tmk_pdqf.py) supplies the scores and thresholds; this
class only stores and scans, so another two-level type could reuse it."""
from __future__ import annotations

import threading
from types import ModuleType

import numpy as np

from partners.signal_index import Entry, SignalIndex


class TmkIndex(SignalIndex):
    def __init__(self, signal: ModuleType) -> None:
        self._signal = signal
        # held only for dict updates and the candidate snapshot, never while scoring
        self._lock = threading.Lock()
        self._pathways: dict[str, set[str]] = {}
        self._vectors: dict[str, np.ndarray] = {}  # value -> unit-length level-1 vector

    @classmethod
    def for_signal(cls, signal: ModuleType, pathways: tuple[str, ...],
                   background_merge: bool) -> TmkIndex:
        return cls(signal)

    def apply_batch(self, entries: list[Entry]) -> None:
        # Level-1 vectors of new values are computed before taking the lock (decoding 351 KB
        # each): lookups go on meanwhile.
        with self._lock:
            known = set(self._vectors)
        vectors = {value: self._signal.level1_vector(value, normalized=True)
                   for is_add, value, _ in entries if is_add and value not in known}
        with self._lock:
            for is_add, value, pathway in entries:
                shared = self._pathways.setdefault(value, set())
                (shared.add if is_add else shared.discard)(pathway)
                if shared and value not in self._vectors:
                    vector = vectors.get(value)  # None: removed and re-added in this batch
                    self._vectors[value] = vector if vector is not None else \
                        self._signal.level1_vector(value, normalized=True)
                elif not shared:
                    del self._pathways[value]
                    self._vectors.pop(value, None)

    def match(self, value: str, pathways) -> list[tuple[str, float]]:
        """Level 1 over every candidate in one matrix product, then level 2 on at most
        LEVEL2_CANDIDATES_PER_QUERY of those that pass, most similar first: the level-2 score is
        the expensive step (decoding a 351 KB value, then the scores), and without the cap one
        query against many stored near-duplicates cost seconds and hundreds of MB (issue 21)."""
        with self._lock:
            candidates = [(v, vector) for v, vector in self._vectors.items()
                          if self._pathways[v].intersection(pathways)]
        if not candidates:
            return []
        signal = self._signal
        query = signal.decode(value)  # once, not once per candidate
        scores = np.stack([vector for _, vector in candidates]) @ signal.level1_vector(
            query, normalized=True)
        passing = np.flatnonzero(scores >= signal.LEVEL1_THRESHOLD)
        best_first = passing[np.argsort(-scores[passing], kind="stable")]
        found = []
        for i in best_first[:signal.LEVEL2_CANDIDATES_PER_QUERY]:
            candidate = candidates[i][0]
            score = signal.level2_score(query, signal.decode_stored(candidate))
            if score >= signal.LEVEL2_THRESHOLD:
                found.append((candidate, round(1.0 - score, 6)))
        return sorted(found, key=lambda m: m[1])

    def __len__(self) -> int:
        return len(self._vectors)
