"""`video_tmk_pdqf` as a pytx SignalType, with an index that matches as hashguard does.

Format checks, level-1/level-2 scores and thresholds are hashguard's own
(hashing/signals/video_tmk_pdqf.py), imported rather than re-implemented, so a platform's
matcher and the service agree on what matches. pytx reserves the name `tmk_pdqf` for a future
type of its own; this one keeps hashguard's wire name so that fetched records index unchanged.
"""
import pathlib
import typing as t

import numpy as np
from threatexchange.content_type.content_base import ContentType
from threatexchange.content_type.video import VideoContent
from threatexchange.signal_type import index, signal_base

from hashing.signals import video_tmk_pdqf as tmk
from hashing.signals.base import InvalidHash


def _similarity(distance: float) -> index.SignalSimilarityInfoWithSingleDistance:
    # distance = 1 - level-2 score: 0 for the same video, as on hashguard's /v1/partner/match;
    # never below 0 (float rounding puts a video's score against itself a hair above 1)
    return index.SignalSimilarityInfoWithSingleDistance(max(0.0, round(distance, 6)))


class VideoTmkPdqfSignal(signal_base.SignalType, signal_base.FileHasher):
    """TMK+PDQF video hash: base64 of the authors' .tmk file (351,128 characters)."""

    @classmethod
    def get_name(cls) -> str:
        return tmk.NAME

    @classmethod
    def get_content_types(cls) -> t.List[t.Type[ContentType]]:
        return [VideoContent]

    @classmethod
    def get_index_cls(cls) -> t.Type["VideoTmkPdqfIndex"]:
        return VideoTmkPdqfIndex

    @classmethod
    def validate_signal_str(cls, signal_str: str) -> str:
        try:
            return tmk.parse(signal_str)
        except InvalidHash as refused:  # pytx expects ValueError for a bad value
            raise ValueError(f"{refused.code}: {refused.message}") from None

    @classmethod
    def compare_hash(cls, hash1: str, hash2: str) -> signal_base.SignalComparisonResult:
        a, b = tmk.decode(hash1), tmk.decode(hash2)
        level2 = tmk.level2_score(a, b)
        matched = tmk.level1_score(a, b) >= tmk.LEVEL1_THRESHOLD and \
            level2 >= tmk.LEVEL2_THRESHOLD
        return signal_base.SignalComparisonResult(matched, _similarity(1.0 - level2))

    @classmethod
    def hash_from_file(cls, file: pathlib.Path) -> str:
        """Needs ffmpeg and hashguard's `video` extra (tmkpy)."""
        return tmk.hash_file(file)[0].value

    @staticmethod
    def get_examples() -> t.List[str]:
        return []  # a real value is 351 KB of base64; tests make their own


class VideoTmkPdqfIndex(index.SignalTypeIndex[index.T]):
    """Level 1 (cosine of the time-averaged frame features, one matrix product over all
    entries), then level 2 on the survivors, the most similar at level 1 first and at most
    hashguard's per-query bound of them (a level-2 score costs milliseconds)."""

    def __init__(self) -> None:
        self._features: t.List[t.Any] = []
        self._entries: t.List[index.T] = []
        self._level1 = np.zeros((0, tmk.DIMENSION), dtype=np.float32)

    def add(self, signal_str: str, entry: index.T) -> None:
        features = tmk.decode(signal_str)
        self._features.append(features)
        self._entries.append(entry)
        vector = tmk.level1_vector(features, normalized=True)
        self._level1 = np.vstack([self._level1, vector[None, :]])

    def add_all(self, entries: t.Iterable[t.Tuple[str, index.T]]) -> None:
        vectors = []
        for signal_str, entry in entries:  # one vstack, not one per entry
            features = tmk.decode(signal_str)
            self._features.append(features)
            self._entries.append(entry)
            vectors.append(tmk.level1_vector(features, normalized=True))
        if vectors:
            self._level1 = np.vstack([self._level1, np.stack(vectors)])

    def query(self, query: str) -> t.List[index.IndexMatch[index.T]]:
        if not self._entries:
            return []
        features = tmk.decode(query)
        scores = self._level1 @ tmk.level1_vector(features, normalized=True)
        survivors = np.flatnonzero(scores >= tmk.LEVEL1_THRESHOLD)
        survivors = survivors[np.argsort(-scores[survivors], kind="stable")]
        matches = []
        for i in survivors[: tmk.LEVEL2_CANDIDATES_PER_QUERY]:
            level2 = tmk.level2_score(features, self._features[i])
            if level2 >= tmk.LEVEL2_THRESHOLD:
                matches.append(index.IndexMatch(_similarity(1.0 - level2), self._entries[i]))
        return matches

    def __len__(self) -> int:
        return len(self._entries)
