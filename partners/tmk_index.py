"""The match index of TMK+PDQF video hashes: the TMK authors' two stages, a cheap level-1 cosine
filter over every shared video's time-averaged frame features, then the level-2 score (the
best time offset) on the few that pass, at most the signal's LEVEL2_CANDIDATES_PER_QUERY.

Memory is ~1 KB per shared video whatever was stored: the index keeps each value's unit-length
level-1 vector under the value's store digest (store/cases.hash_digest), never the 351 KB value
itself; a level-2 candidate's value is read back from the database (the loader the match index
attaches). Holding values made 1,000 stored TMK values cost the process ~700 MB (issue 21).

The signal module (hashing/signals/video_tmk_pdqf.py) supplies the scores and thresholds; this
class only stores and scans, so another two-level type could reuse it."""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from types import ModuleType

import numpy as np

from partners.signal_index import Entry, SignalIndex

ValueLoader = Callable[[list[bytes]], dict[bytes, str]]


class TmkIndex(SignalIndex):
    def __init__(self, signal: ModuleType) -> None:
        self._signal = signal
        # held only for dict updates and the candidate snapshot, never while scoring
        self._lock = threading.Lock()
        self._pathways: dict[bytes, set[str]] = {}  # digest -> pathways sharing it
        self._vectors: dict[bytes, np.ndarray] = {}  # digest -> unit-length level-1 vector
        self._load: ValueLoader | None = None

    @classmethod
    def for_signal(cls, signal: ModuleType, pathways: tuple[str, ...],
                   background_merge: bool) -> TmkIndex:
        return cls(signal)

    def set_value_loader(self, load: ValueLoader) -> None:
        """Where candidates' values are read back: digests -> values (the match index's store)."""
        self._load = load

    def _digest(self, value: str) -> bytes:
        # The store's digest of (type, value) (store/cases.hash_digest), so the loader can find
        # the value by its unique key.
        return hashlib.sha256(f"{self._signal.NAME}:{value}".encode()).digest()

    def apply_batch(self, entries: list[Entry]) -> None:
        # Level-1 vectors of new values are computed before taking the lock (decoding 351 KB
        # each): lookups go on meanwhile.
        keyed = [(is_add, self._digest(value), value, pathway)
                 for is_add, value, pathway in entries]
        with self._lock:
            known = set(self._vectors)
        vectors = {key: self._signal.level1_vector(value, normalized=True)
                   for is_add, key, value, _ in keyed if is_add and key not in known}
        with self._lock:
            for is_add, key, value, pathway in keyed:
                shared = self._pathways.setdefault(key, set())
                (shared.add if is_add else shared.discard)(pathway)
                if shared and key not in self._vectors:
                    vector = vectors.get(key)  # None: removed and re-added in this batch
                    self._vectors[key] = vector if vector is not None else \
                        self._signal.level1_vector(value, normalized=True)
                elif not shared:
                    del self._pathways[key]
                    self._vectors.pop(key, None)

    def match_shared(self, value: str, pathways) -> list[tuple[str, float, frozenset[str]]]:
        """Level 1 over every candidate in one matrix product, then level 2 on at most
        LEVEL2_CANDIDATES_PER_QUERY of those that pass, most similar first: the level-2 score is
        the expensive step (reading and decoding a 351 KB value, then the scores), and without
        the cap one query against many stored near-duplicates cost seconds (issue 21)."""
        with self._lock:
            # The pathways as of this snapshot, like the vectors (a remove racing the lookup
            # is seen before or after it, as for the other types).
            candidates = [(key, vector, entitled) for key, vector in self._vectors.items()
                          if (entitled := frozenset(self._pathways[key].intersection(pathways)))]
        if not candidates:
            return []
        signal = self._signal
        query = signal.decode(value)  # once, not once per candidate
        scores = np.stack([vector for _, vector, _ in candidates]) @ signal.level1_vector(
            query, normalized=True)
        passing = np.flatnonzero(scores >= signal.LEVEL1_THRESHOLD)
        best = passing[np.argsort(-scores[passing], kind="stable")]
        chosen = [candidates[i] for i in best[:signal.LEVEL2_CANDIDATES_PER_QUERY]]
        keys = [key for key, _, _ in chosen]
        values = self._load(keys) if self._load is not None and keys else {}
        found = []
        for key, _, entitled in chosen:
            candidate = values.get(key)
            if candidate is None:  # gone from the store meanwhile (or no loader attached)
                continue
            score = signal.level2_score(query, signal.decode_stored(candidate))
            if score >= signal.LEVEL2_THRESHOLD:
                found.append((candidate, round(1.0 - score, 6), entitled))
        return sorted(found, key=lambda m: m[1])

    def __len__(self) -> int:
        return len(self._vectors)
