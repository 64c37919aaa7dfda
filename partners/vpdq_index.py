"""The match index of vPDQ video hashes: the frames of every shared video in a PDQ multi-index
(partners/pdq_index.py, exact up to distance 31), and for each frame the videos that hold it, so
a query's frames are looked up once each and the reference's two percentages
(hashing/signals/vpdq.py) are counted per video from the hits, as pytx's VPDQIndex does with
faiss. The answer is exactly the brute-force rule's (tests/test_vpdq_index.py checks it).

What is kept per shared video: the store digest of its value (store/cases.hash_digest), the
pathways it is shared under and its usable frames (quality >= 50, each hash once) as 32 bytes
each; per distinct frame, the videos holding it (~170 B). The value itself (~80 B a frame) is
read back from the database only for the matches (the loader the match index attaches), as for
TMK. A frame is in the PDQ index under a pathway while some video holding it is shared under
that pathway; the video-level pathways decide what a partner may see.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from partners.pdq_index import PdqIndex
from partners.signal_index import Entry, SignalIndex

ValueLoader = Callable[[list[bytes]], dict[bytes, str]]
# Matches reported per query, best first (each needs its value read back from the store).
MAX_MATCHES_PER_QUERY = 16


@dataclass
class _Video:
    frames: list[bytes]  # usable frames' PDQ, 32 bytes each
    pathways: set[str] = field(default_factory=set)


class VpdqIndex(SignalIndex):
    def __init__(self, signal: ModuleType, pathways: tuple[str, ...], background_merge: bool):
        self._signal = signal
        self._frames = PdqIndex(pathways, background=background_merge)
        # held for dict updates and a query's counting (no I/O, no PDQ lookups under it)
        self._lock = threading.Lock()
        self._videos: dict[bytes, _Video] = {}
        # frame -> the digest of the one video holding it, or a set when several do (most
        # frames are in one video: a bare reference costs nothing beyond the dict entry)
        self._holders: dict[bytes, bytes | set[bytes]] = {}
        self._load: ValueLoader | None = None

    @classmethod
    def for_signal(cls, signal: ModuleType, pathways: tuple[str, ...],
                   background_merge: bool) -> VpdqIndex:
        return cls(signal, pathways, background_merge)

    def set_value_loader(self, load: ValueLoader) -> None:
        self._load = load

    def _digest(self, value: str) -> bytes:
        return hashlib.sha256(f"{self._signal.NAME}:{value}".encode()).digest()

    def _holding(self, frame: bytes) -> tuple[bytes, ...]:
        held = self._holders.get(frame)
        return () if held is None else (held,) if isinstance(held, bytes) else tuple(held)

    def _hold(self, frame: bytes, key: bytes) -> None:
        held = self._holders.get(frame)
        if held is None:
            self._holders[frame] = key
        elif isinstance(held, bytes):
            if held != key:
                self._holders[frame] = {held, key}
        else:
            held.add(key)

    def _release(self, frame: bytes, key: bytes) -> None:
        held = self._holders.get(frame)
        if held == key:
            del self._holders[frame]
        elif isinstance(held, set):
            held.discard(key)
            if len(held) == 1:
                self._holders[frame] = next(iter(held))

    def _frame_shared(self, frame: bytes, pathway: str) -> bool:
        return any(pathway in self._videos[k].pathways for k in self._holding(frame))

    # ------------------------------------------------------------------ updates
    def apply_batch(self, entries: list[Entry]) -> None:
        keyed = [(is_add, self._digest(value), value, pathway) for is_add, value, pathway in entries]
        with self._lock:
            known = set(self._videos)
        # Decoding (up to 4,800 frames a value) happens before the lock: lookups go on.
        decoded = {key: [bytes.fromhex(f.pdq_hex) for f in self._signal.usable(
                         self._signal.decode(value))]
                   for is_add, key, value, _ in keyed if is_add and key not in known}
        frame_entries: list[Entry] = []
        with self._lock:
            for is_add, key, value, pathway in keyed:
                video = self._videos.get(key)
                if video is None:
                    if not is_add:
                        continue
                    frames = decoded.get(key) or [bytes.fromhex(f.pdq_hex) for f in
                                                  self._signal.usable(self._signal.decode(value))]
                    video = self._videos[key] = _Video(frames)
                    for frame in frames:
                        self._hold(frame, key)
                if (pathway in video.pathways) == is_add:
                    continue
                before = [self._frame_shared(f, pathway) for f in video.frames]
                (video.pathways.add if is_add else video.pathways.discard)(pathway)
                for frame, was in zip(video.frames, before):
                    if self._frame_shared(frame, pathway) != was:
                        frame_entries.append((not was, frame.hex(), pathway))
                if not video.pathways:
                    del self._videos[key]
                    for frame in video.frames:
                        self._release(frame, key)
        self._frames.apply_batch(frame_entries)

    def backlogged(self) -> bool:
        return self._frames.backlogged()

    def wait_for_backlog(self) -> None:
        self._frames.wait_for_backlog()

    # ------------------------------------------------------------------ lookups
    def match_shared(self, value: str, pathways) -> list[tuple[str, float, frozenset[str]]]:
        signal = self._signal
        query = [bytes.fromhex(f.pdq_hex) for f in signal.usable(signal.decode(value))]
        if not query:
            return []
        hits = [(q, [bytes.fromhex(h) for h, _ in self._frames.lookup(
                    q.hex(), pathways, signal.DISTANCE_THRESHOLD)]) for q in query]
        wanted = set(pathways)
        query_hits: dict[bytes, set[bytes]] = {}
        compared_hits: dict[bytes, set[bytes]] = {}
        with self._lock:
            for q, frames in hits:
                for frame in frames:
                    for key in self._holding(frame):
                        if self._videos[key].pathways & wanted:
                            query_hits.setdefault(key, set()).add(q)
                            compared_hits.setdefault(key, set()).add(frame)
            scored = []
            for key, matched in query_hits.items():
                query_percent = len(matched) * 100 / len(query)
                compared_percent = len(compared_hits[key]) * 100 / len(self._videos[key].frames)
                if signal.passes(query_percent, compared_percent):
                    shared = frozenset(self._videos[key].pathways & wanted)
                    scored.append((-query_percent, -compared_percent, key, shared))
        scored.sort()
        best = scored[:MAX_MATCHES_PER_QUERY]
        values = (self._load([key for _, _, key, _ in best]) if self._load is not None and best
                  else {})
        # distance: 1 - the query match share (0 when every usable query frame matched)
        return [(values[key], round(1.0 - (-negative_percent) / 100, 6), shared)
                for negative_percent, _, key, shared in best if key in values]

    def __len__(self) -> int:
        return len(self._videos)
