"""vPDQ, the video hash of the PDQ authors (Meta): the PDQ of one frame a second, each with its
quality and time, matched by the share of frames that have a PDQ match in the other video.

Name and wire form are python-threatexchange's vPDQ extension's (its `VPDQSignal`, named `vpdq`),
so HMA and pytx read the values unchanged: a JSON array of strings, one per hashed frame, in
frame order, each "<64 lower-case hex PDQ>,<quality 0-100>,<seconds>", the seconds written as
Python's format(t, ".3") does (three significant digits: "0.0", "12.0", "0.968", "1.23e+02"), the
array written by json.dumps with its default separators:
    ["f8f8...0f0f,100,0.0", "f8f8...0f0e,98,1.0"]
`parse` returns that canonical text for any JSON array of such strings (hex case, spacing and
number spelling are normalised; the frames, their order and duplicates are kept).

Hashing: the frames the authors' hasher (`vpdq` package) picks, decoded by ffmpeg
(hashing/video_frames.py) and hashed by `pdqhash`, equal to theirs bit for bit.

Matching (the reference's rule): frames below quality 50 are dropped, then repeated hashes; a
query frame matches when some frame of the other video is within PDQ distance 31. The query
match percentage is the share of the query's frames that match, the compared match percentage
the share of the other video's frames that match a query frame; a pair matches when the first is
>= 80 and the second >= 0 (the reference's defaults).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pdqhash

from hashing.signals.base import InvalidHash, Signal, UnusableMedia
from hashing.signals.pdq import bits_to_hex
from hashing.signals.pdq import distance as pdq_distance

NAME = "vpdq"
# Served by a PDQ multi-index over the frames of every shared video (partners/vpdq_index.py).
MATCH_INDEX = "vpdq_frames"
SECONDS_PER_HASH = 1.0
DISTANCE_THRESHOLD = 31
QUALITY_THRESHOLD = 50
QUERY_MATCH_PERCENT = 80.0
COMPARED_MATCH_PERCENT = 0.0
# 80 minutes at one frame a second: a canonical frame is at most 81 characters, so the longest
# value (~390 KB) stays under the API's 400,000-character limit on one value.
MAX_FRAMES = 4800
MAX_VALUE_CHARS = 400_000
MAX_SECONDS = 48 * 3600.0
# A frame's PDQ is matched by a PDQ index and a query's cost grows with its frames: a match
# request answers at most this many vPDQ queries (more get the error `match_query_limit`).
MAX_MATCH_QUERIES_PER_REQUEST = 8

_FRAME = re.compile(r"([0-9a-fA-F]{64}),([0-9]{1,3}),([0-9.eE+-]{1,32})")


@dataclass(frozen=True)
class Frame:
    pdq_hex: str
    quality: int
    timestamp: float

    def __str__(self) -> str:
        return f"{self.pdq_hex},{self.quality},{format_seconds(self.timestamp)}"


def format_seconds(seconds: float) -> str:
    """The reference's spelling of a frame's time (f"{t:.3}")."""
    return f"{float(seconds):.3}"


def encode(frames: list[Frame]) -> str:
    return json.dumps([str(f) for f in frames])


def _frame(text, position: int) -> Frame:
    found = _FRAME.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise InvalidHash("vpdq_bad_frame", f"vPDQ frame {position} is not "
                                            "\"<64 hex PDQ>,<quality>,<seconds>\"")
    hex_value, quality, seconds = found.groups()
    try:
        timestamp = float(seconds)
    except ValueError:
        timestamp = math.nan
    if int(quality) > 100 or not 0.0 <= timestamp <= MAX_SECONDS:
        raise InvalidHash("vpdq_bad_frame", f"vPDQ frame {position}: quality is 0-100 and "
                                            f"seconds 0-{MAX_SECONDS:.0f}")
    return Frame(hex_value.lower(), int(quality), timestamp)


def decode(value: str) -> list[Frame]:
    """Wire value -> its frames, or InvalidHash."""
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
        raise InvalidHash("vpdq_bad_format", "a vPDQ value is a JSON array of frame strings of "
                                             f"at most {MAX_VALUE_CHARS} characters")
    try:
        items = json.loads(value)
    except (ValueError, RecursionError):
        items = None
    if not isinstance(items, list):
        raise InvalidHash("vpdq_bad_format", "a vPDQ value is a JSON array of frame strings")
    if not 1 <= len(items) <= MAX_FRAMES:
        raise InvalidHash("vpdq_bad_length", f"a vPDQ value holds 1 to {MAX_FRAMES} frames "
                                             f"(got {len(items)})")
    frames = [_frame(item, i) for i, item in enumerate(items)]
    if not usable(frames):
        # Nothing of it could ever match (pytx's index refuses to hold such a value).
        raise InvalidHash("vpdq_low_quality", f"no frame of this vPDQ value has quality >= "
                                              f"{QUALITY_THRESHOLD}: a blank or flat video")
    return frames


def parse(value: str) -> str:
    """Canonical form of a vPDQ value, or InvalidHash."""
    return encode(decode(value))


# ---------------------------------------------------------------- hashing

def hash_file(path: str | Path, seconds_per_hash: float = SECONDS_PER_HASH) -> list[Signal]:
    """vPDQ of a video file (ffmpeg on PATH). UnusableMedia when no frame reaches quality 50."""
    from hashing.video_frames import sampled_frames  # ffmpeg subprocesses: only when hashing

    frames = []
    for _, seconds, rgb in sampled_frames(path, seconds_per_hash, MAX_FRAMES):
        bits, quality = pdqhash.compute(rgb)
        frames.append(Frame(bits_to_hex(bits), int(quality), seconds))
    if not usable(frames):
        raise UnusableMedia("vpdq_low_quality", f"no frame of this video reaches PDQ quality "
                                                f"{QUALITY_THRESHOLD}: too small, blank or flat")
    return [Signal(NAME, encode(frames), None)]


# ---------------------------------------------------------------- comparison

def usable(frames: list[Frame]) -> list[Frame]:
    """The frames matching looks at: quality >= 50, then each hash once (first kept), the order
    of pytx's index (its brute-force compare dedupes first; they differ only when one hash
    occurs with qualities on both sides of 50)."""
    seen: set[str] = set()
    kept = []
    for frame in frames:
        if frame.quality >= QUALITY_THRESHOLD and frame.pdq_hex not in seen:
            seen.add(frame.pdq_hex)
            kept.append(frame)
    return kept


def _frames(x: str | list[Frame]) -> list[Frame]:
    return usable(decode(x) if isinstance(x, str) else x)


def match_percentages(query: str | list[Frame], compared: str | list[Frame]) -> tuple[float, float]:
    """(query match %, compared match %) by brute force: the reference's definition, which the
    server's index (partners/vpdq_index.py) computes with a PDQ index instead."""
    q, c = _frames(query), _frames(compared)
    if not q or not c:
        return 0.0, 0.0
    close = [[pdq_distance(a.pdq_hex, b.pdq_hex) <= DISTANCE_THRESHOLD for b in c] for a in q]
    query_hits = sum(any(row) for row in close)
    compared_hits = sum(any(row[j] for row in close) for j in range(len(c)))
    return query_hits * 100 / len(q), compared_hits * 100 / len(c)


def passes(query_percent: float, compared_percent: float) -> bool:
    return query_percent >= QUERY_MATCH_PERCENT and compared_percent >= COMPARED_MATCH_PERCENT


def matches(a: str | list[Frame], b: str | list[Frame]) -> bool:
    return passes(*match_percentages(a, b))


def distance(a: str | list[Frame], b: str | list[Frame]) -> float:
    """1 - the query match share: 0 when every usable frame of `a` has a match in `b`."""
    return round(1.0 - match_percentages(a, b)[0] / 100, 6)
