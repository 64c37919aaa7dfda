"""The match index of TMK+PDQF video hashes: the TMK authors' two stages, a cheap level-1 cosine
filter over every shared video's time-averaged frame features, then the level-2 score (the
best time offset) on the few that pass. Values are 351 KB each, so the index keeps only their
unit-length level-1 vectors (1 KB) beside the value, and decodes a candidate's full features
only when it passes level 1.

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
        with self._lock:
            candidates = [(v, vector) for v, vector in self._vectors.items()
                          if self._pathways[v].intersection(pathways)]
        signal = self._signal
        query = signal.level1_vector(value, normalized=True)
        found = []
        for candidate, vector in candidates:
            if float(vector @ query) < signal.LEVEL1_THRESHOLD:
                continue
            score = signal.level2_score(value, candidate)
            if score >= signal.LEVEL2_THRESHOLD:
                found.append((candidate, round(1.0 - score, 6)))
        return sorted(found, key=lambda m: m[1])

    def __len__(self) -> int:
        return len(self._vectors)
