"""Idempotent submits: a retried POST /v1/cases with the same Idempotency-Key gets the same case
and token instead of a second case. The token is kept only sealed (AES-GCM) under a key derived
from the server secret and the Idempotency-Key, which only the submitting client knows.

The key and the request's hashes together give the token back, so the key is a credential to
the case while the record lasts (issue 21, finding 4). It lasts only a replay window
(settings.idempotency_window_seconds, 10 minutes by default): that comfortably covers the
clients' retries (the CLI's three attempts take at most ~92 s: 30 s timeouts, 0.5 + 1 s backoff;
the page keeps its key until the person presses Send again after a failure, which is minutes
at most), and beyond it a retry creates a second case instead. Its time is sealed with the token,
so it exists in the database only encrypted and only while the record does (case times are
otherwise kept to the hour, store/models.py): a replay past it is refused even before the sweep
(api/idempotency_sweeper.py) deletes the record.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import time
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hashing.signals import Signal
from store.cases import IdempotencyRecord
from store.secrets import digest

MAX_KEY_LENGTH = 255
# Sealed plaintext: this version byte, the sealing time (unix ms, 8 bytes), the token. Records
# sealed before it held the bare token (URL-safe text: never this byte); they count as expired.
_TIMED = b"\x01"
_TIME = struct.Struct("!Q")


class Sealed(NamedTuple):
    token: str
    sealed_at_ms: int


def _sealing_key(server_secret: bytes, key: str) -> bytes:
    return hmac.new(server_secret, b"idempotency-seal\x00" + key.encode(), hashlib.sha256).digest()


def key_digest(server_secret: bytes, key: str) -> bytes:
    return digest(server_secret, "idempotency-key", key.encode())


def request_digest(server_secret: bytes, pathway: str, signals: list[Signal]) -> bytes:
    canonical = json.dumps([pathway, sorted((s.signal_type, s.value) for s in signals)])
    return digest(server_secret, "idempotency-request", canonical.encode())


def record(server_secret: bytes, key: str, pathway: str, signals: list[Signal],
           token: str, now_ms: int | None = None) -> IdempotencyRecord:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    plaintext = _TIMED + _TIME.pack(now_ms) + token.encode()
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(_sealing_key(server_secret, key)).encrypt(nonce, plaintext, None)
    return IdempotencyRecord(key_digest(server_secret, key),
                             request_digest(server_secret, pathway, signals), sealed)


def unseal(server_secret: bytes, key: str, sealed: bytes | None) -> Sealed | None:
    """The token and when it was sealed; None if it cannot be opened."""
    if not sealed:
        return None
    try:
        plaintext = AESGCM(_sealing_key(server_secret, key)).decrypt(sealed[:12], sealed[12:], None)
    except InvalidTag:
        return None
    if not plaintext.startswith(_TIMED):
        return Sealed(plaintext.decode(), 0)  # sealed before windows existed: long expired
    [sealed_at_ms] = _TIME.unpack_from(plaintext, 1)
    return Sealed(plaintext[1 + _TIME.size:].decode(), sealed_at_ms)


def expired(sealed: Sealed, window_seconds: float, now_ms: int | None = None) -> bool:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return now_ms - sealed.sealed_at_ms >= window_seconds * 1000
