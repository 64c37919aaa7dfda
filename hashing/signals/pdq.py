"""PDQ, the perceptual image hash of the PDQ authors (Meta), computed by the `pdqhash` package.

Values are 64 lower-case hex characters, the form python-threatexchange and HMA use for `pdq`.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pdqhash

from hashing.media import load_canonical_image
from hashing.signals.base import InvalidHash, Signal, UnusableMedia

NAME = "pdq"
# The server-side index that serves this type (a name: hashing/ imports nothing server-side;
# partners/match_index.py maps it to a class).
MATCH_INDEX = "pdq_multi_index"
# The PDQ authors' recommended match threshold and quality gate.
MATCH_THRESHOLD = 31
MIN_QUALITY = 50
# A hash with almost all bits equal carries no information (blank or single-colour image); such
# values would match each other and nothing real, so they are refused.
MIN_BITS_SET = 16
_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse(value: str) -> str:
    """Canonical form of a PDQ hash string, or InvalidHash."""
    if not isinstance(value, str):
        raise InvalidHash("pdq_bad_format", "a PDQ hash is a string of 64 hex characters")
    canonical = value.strip().lower()
    if not _HEX64.fullmatch(canonical):
        raise InvalidHash("pdq_bad_format", "a PDQ hash is 64 hex characters (256 bits)")
    bits_set = int(canonical, 16).bit_count()
    if bits_set < MIN_BITS_SET or bits_set > 256 - MIN_BITS_SET:
        raise InvalidHash(
            "pdq_degenerate", "this PDQ hash is (nearly) all zeros or ones: a blank or flat image"
        )
    return canonical


def check_quality(quality: int) -> None:
    if quality < MIN_QUALITY:
        raise UnusableMedia(
            "pdq_low_quality",
            f"PDQ quality {quality} is below {MIN_QUALITY}: the image has too little detail "
            "for a reliable hash (too small, blurry or flat)",
        )


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256-bit vector (first bit most significant) to the 64-hex wire form."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def hash_array(rgb: np.ndarray) -> Signal:
    """Hash an HxWx3 uint8 array that already went through the canonical pipeline."""
    bits, quality = pdqhash.compute(rgb)
    return Signal(NAME, bits_to_hex(bits), int(quality))


def hash_array_dihedral(rgb: np.ndarray) -> list[Signal]:
    """The 8 hashes of the image's rotations and mirrors, in pdqhash's order (original first)."""
    all_bits, quality = pdqhash.compute_dihedral(rgb)
    return [Signal(NAME, bits_to_hex(bits), int(quality)) for bits in all_bits]


def hash_file(path: str | Path, dihedral: bool = False) -> list[Signal]:
    """PDQ of an image file through the canonical pipeline; UnusableMedia below the quality gate."""
    rgb = np.asarray(load_canonical_image(path))
    signals = hash_array_dihedral(rgb) if dihedral else [hash_array(rgb)]
    check_quality(signals[0].quality)
    return signals


def distance(a: str, b: str) -> int:
    """Hamming distance between two PDQ hex strings."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def matches(a: str, b: str) -> bool:
    return distance(a, b) <= MATCH_THRESHOLD
