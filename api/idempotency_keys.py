"""Which Idempotency-Keys are accepted: random ones only (issue 21, finding 4).

Why it matters: within its replay window a key and the request's hashes together get the case's
token back (api/idempotency.py). Someone who has the image has the hashes, so the key is all
that stands between them and the token: a key a person or a lazy client could pick ("1", a
counter, a word, a timestamp) would be a guessable password to the case.

What is judged, as no string can prove it was drawn at random: the key must be long enough to
hold 128 bits, counted as 4 bits a character if it is all hex digits (32 characters) and 6 bits
(base64url) otherwise (22 characters), and must not look made by hand: too few distinct
characters, mostly runs or sequences ("aaaa", "1234", "abcd"), or mostly a short block repeated
("password1password1..."). Why only these two rates: a finer guess of the alphabet refuses random
keys that happen to miss a class (a base64url key with no capital letter, 1 in 10^5 at 22
characters; a hex key with no letter, 1 in 3 * 10^6), so it would fail real clients now and
then. The thresholds refuse fewer than one key in 10^12 drawn at random at the minimum length
(hex, base64url), and fewer than one in 10^8 of all-digit keys (tests/test_idempotency_keys.py
computes the bounds and draws keys as the clients do). A long made-up phrase passes: the
floor stops careless keys, the replay window (api/idempotency.py) bounds what any key is worth.

A canonical UUIDv4 (8-4-4-4-12 hex digits) is accepted although it holds 122 random bits, not
128: it is what most HTTP client libraries send as an Idempotency-Key, 122 bits are as far
beyond guessing as 128 (and a guess must also come inside the replay window, past the rate
limits, with the hashes), so refusing it would break those clients for nothing. Other UUID
versions are refused: v1/v6/v7 are mostly a timestamp (and a MAC address), v3/v5 a hash of a
name, so they are guessable.
"""
from __future__ import annotations

import math
import operator
import re
import string

MIN_KEY_BITS = 128
WEAK_KEY_MESSAGE = ("Idempotency-Key must be random: at least 128 bits (e.g. 32 hex digits or 22 "
                    "base64url characters from a secure random source) or a UUIDv4")

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = frozenset(string.hexdigits)
_DIGITS = frozenset(string.digits)
# A random key is made of runs/sequences, or repeats of a short block, in at most this share of
# its positions, except with the probabilities stated above.
_MAX_PATTERNED_SHARE = 0.8
_MIN_DISTINCT = 6


def is_weak(key: str) -> bool:
    """True if `key` must be refused (422 idempotency_key_weak)."""
    if _UUID.fullmatch(key):
        if key[14] != "4" or key[19] not in "89abAB":
            return True  # not a random (version 4, RFC 4122 variant) UUID
        return _patterned(key.replace("-", "").lower(), 4.0)
    bits = _bits_per_character(key)
    if len(key) * bits < MIN_KEY_BITS:
        return True
    return _patterned(key, bits)


def _bits_per_character(key: str) -> float:
    return 4.0 if set(key) <= _HEX else 6.0


def _patterned(key: str, bits: float) -> bool:
    # 6 distinct characters would refuse 1 in 10^7 random all-digit keys of 32; 5: 1 in 10^10.
    distinct = _MIN_DISTINCT - 1 if set(key) <= _DIGITS else _MIN_DISTINCT
    if len(set(key)) < distinct:
        return True
    steps = len(key) - 1
    codes = key.encode("latin-1", "replace")  # (C loops: this runs on every keyed submit)
    runs = sum(abs(a - b) <= 1 for a, b in zip(codes, codes[1:]))
    if runs > _MAX_PATTERNED_SHARE * steps:
        return True
    # A block repeated: only blocks shorter than 128 bits matter (a longer one is a strong key
    # on its own), which also bounds the work on a 255-character key.
    for period in range(2, min(len(key) // 2, math.ceil(MIN_KEY_BITS / bits)) + 1):
        same = sum(map(operator.eq, codes, codes[period:]))
        if same > _MAX_PATTERNED_SHARE * (len(key) - period):
            return True
    return False
