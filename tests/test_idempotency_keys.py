"""api/idempotency_keys.py: careless keys are refused, random ones (as clients make them) never.

The thresholds' false-refusal rates are computed here from the module's own constants, so that
tightening a threshold past what its docstring promises fails a test.
"""
from __future__ import annotations

import math
import secrets
import time
import uuid

import pytest

from api import idempotency_keys
from api.idempotency_keys import is_weak
from hashing.client import new_idempotency_key

CARELESS = ["1", "", "retry-1", "a" * 64, "k" * 255, "12345678901234567890123456789012",
            "1234567890" * 4, "0123456789abcdef" * 2, "abcdefghijklmnopqrstuvwxyzabcdef",
            "deadbeef" * 4, "password1" * 4, "ab" * 20, "short-key-123", "a" * 21 + "b",
            pytest.param(str(int(time.time() * 1000)), id="unix-milliseconds"), "00000000-0000-4000-8000-000000000000",
            pytest.param(str(uuid.uuid1()), id="uuid1"), str(uuid.uuid3(uuid.NAMESPACE_URL, "x")),
            str(uuid.uuid5(uuid.NAMESPACE_DNS, "hashguard"))]


@pytest.mark.parametrize("key", CARELESS)
def test_careless_keys_are_weak(key):
    assert is_weak(key)


# How clients make keys: ours (CLI: hashing/client.py; page: web/js/api.js randomKey, 16 bytes
# as hex) and the usual third-party ones.
GENERATORS = {"cli": new_idempotency_key, "page": lambda: secrets.token_hex(16),
              "uuid4": lambda: str(uuid.uuid4()), "UUID4": lambda: str(uuid.uuid4()).upper(),
              "uuid4-hex": lambda: uuid.uuid4().hex,
              "base64url-128": lambda: secrets.token_urlsafe(16),
              "digits-128": lambda: "".join(secrets.choice("0123456789") for _ in range(39))}


@pytest.mark.parametrize("kind", GENERATORS)
def test_random_keys_are_never_refused(kind):
    make = GENERATORS[kind]
    refused = [key for key in (make() for _ in range(20_000)) if is_weak(key)]
    assert refused == []


def test_our_clients_send_at_least_128_bits():
    assert len(new_idempotency_key()) * 6 >= 256  # the CLI: 256 bits, as the case token
    assert len(secrets.token_hex(16)) * 4 == idempotency_keys.MIN_KEY_BITS  # what the page sends


def _binomial_tail(n: int, p: float, k: int) -> float:
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def _at_most_distinct(n: int, alphabet: int, distinct: int) -> float:
    """P(n uniform draws from `alphabet` symbols show at most `distinct` different ones)."""
    def onto(j):
        return sum((-1) ** i * math.comb(j, i) * (j - i) ** n for i in range(j + 1))
    return sum(math.comb(alphabet, j) * onto(j) for j in range(1, distinct + 1)) / alphabet ** n


@pytest.mark.parametrize("alphabet, length, bits, bound", [
    (16, 32, 4.0, 1e-12), (64, 22, 6.0, 1e-12), (10, 32, 4.0, 1e-8)],
    ids=["hex", "base64url", "digits"])
def test_random_keys_at_the_minimum_length_are_refused_at_most_as_often_as_documented(
        alphabet, length, bits, bound):
    share = idempotency_keys._MAX_PATTERNED_SHARE
    distinct = idempotency_keys._MIN_DISTINCT - (1 if alphabet == 10 else 0)
    too_few = _at_most_distinct(length, alphabet, distinct - 1)
    # A neighbour in code point (or the same character): at most 3 of `alphabet` choices.
    neighbour = (alphabet + 2 * (alphabet - 1)) / alphabet ** 2
    runs = _binomial_tail(length - 1, neighbour, math.floor(share * (length - 1)) + 1)
    periods = range(2, min(length // 2, math.ceil(idempotency_keys.MIN_KEY_BITS / bits)) + 1)
    repeats = sum(_binomial_tail(length - p, 1 / alphabet, math.floor(share * (length - p)) + 1)
                  for p in periods)
    assert too_few + runs + repeats < bound
