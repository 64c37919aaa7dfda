"""MD5 of a video file's bytes: finds exact copies (python-threatexchange's `video_md5`)."""
from __future__ import annotations

from pathlib import Path

from hashing.signals.base import Signal
from hashing.signals.file_digest import digest_file, parse_hex_digest

NAME = "video_md5"
MATCH_INDEX = "exact"  # served by a dict on the server (partners/match_index.py)


def parse(value: str) -> str:
    return parse_hex_digest(value, 32, NAME)


def hash_file(path: str | Path) -> list[Signal]:
    return [Signal(NAME, digest_file(path, "md5"))]


def distance(a: str, b: str) -> int:
    return 0 if a == b else 1


def matches(a: str, b: str) -> bool:
    return a == b
