"""Exact-match digests of a file's bytes (shared by video_md5 and video_sha256)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from hashing.signals.base import InvalidHash

_CHUNK = 1 << 20  # stream: videos can be larger than memory


def digest_file(path: str | Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_hex_digest(value: str, hex_length: int, signal_name: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(
        rf"[0-9a-f]{{{hex_length}}}", value.strip().lower()
    ):
        raise InvalidHash(
            f"{signal_name}_bad_format", f"a {signal_name} value is {hex_length} hex characters"
        )
    canonical = value.strip().lower()
    if len(set(canonical)) == 1:
        raise InvalidHash(f"{signal_name}_degenerate", f"this {signal_name} value is degenerate")
    return canonical
