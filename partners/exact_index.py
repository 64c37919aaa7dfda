"""The match index of exact signal types (video_md5, video_sha256): a dict from value to the
pathways it is currently shared under. A file digest matches only itself, so nothing smarter
would find more, and a dict answers in a microsecond."""
from __future__ import annotations

import threading
from types import ModuleType

from partners.signal_index import Entry, SignalIndex


class ExactIndex(SignalIndex):
    def __init__(self) -> None:
        # held only for dict updates and reads (microseconds), never across slow work
        self._lock = threading.Lock()
        self._pathways: dict[str, set[str]] = {}

    @classmethod
    def for_signal(cls, signal: ModuleType, pathways: tuple[str, ...],
                   background_merge: bool) -> ExactIndex:
        return cls()

    def apply_batch(self, entries: list[Entry]) -> None:
        with self._lock:
            for is_add, value, pathway in entries:
                shared = self._pathways.setdefault(value, set())
                (shared.add if is_add else shared.discard)(pathway)
                if not shared:
                    del self._pathways[value]

    def match_shared(self, value: str, pathways) -> list[tuple[str, float, frozenset[str]]]:
        with self._lock:
            entitled = frozenset(self._pathways.get(value, ())).intersection(pathways)
        return [(value, 0.0, entitled)] if entitled else []

    def __len__(self) -> int:
        return len(self._pathways)
