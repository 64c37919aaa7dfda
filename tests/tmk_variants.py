"""Distinct valid TMK+PDQF values for cost tests: the authors' chair-19 file with its
informational frame count changed, the cheapest way an abuser makes many values that all pass
validation (issue 21, finding 5: 11 of them fit in one 3.9 MB body)."""
from __future__ import annotations

import base64
import struct
from functools import lru_cache

from tests.testdata import TMK_DIR

FRAME_COUNT_AT = 28  # the header's int32 frame-feature count (hashing/signals/tmk_format.py)


@lru_cache(maxsize=1)
def _original() -> bytes:
    return (TMK_DIR / "chair-19-sd-bar.tmk").read_bytes()


def variant(i: int) -> str:
    """Wire value of the chair clip whose header claims 1000 + i frames."""
    data = bytearray(_original())
    struct.pack_into("<i", data, FRAME_COUNT_AT, 1000 + i)
    return base64.b64encode(bytes(data)).decode("ascii")


def tmk_hashes(first: int, count: int) -> list[dict]:
    return [{"signal_type": "video_tmk_pdqf", "value": variant(i)}
            for i in range(first, first + count)]
