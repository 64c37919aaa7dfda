"""Idempotent submits: a retried POST /v1/cases with the same Idempotency-Key gets the same case
and token instead of a second case. The token is kept only sealed (AES-GCM) under a key derived
from the server secret and the Idempotency-Key, which only the submitting client knows."""
from __future__ import annotations

import hashlib
import hmac
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hashing.signals import Signal
from store.cases import IdempotencyRecord
from store.secrets import digest

MAX_KEY_LENGTH = 255


def _sealing_key(server_secret: bytes, key: str) -> bytes:
    return hmac.new(server_secret, b"idempotency-seal\x00" + key.encode(), hashlib.sha256).digest()


def key_digest(server_secret: bytes, key: str) -> bytes:
    return digest(server_secret, "idempotency-key", key.encode())


def request_digest(server_secret: bytes, pathway: str, signals: list[Signal]) -> bytes:
    canonical = json.dumps([pathway, sorted((s.signal_type, s.value) for s in signals)])
    return digest(server_secret, "idempotency-request", canonical.encode())


def record(server_secret: bytes, key: str, pathway: str, signals: list[Signal],
           token: str) -> IdempotencyRecord:
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(_sealing_key(server_secret, key)).encrypt(nonce, token.encode(), None)
    return IdempotencyRecord(key_digest(server_secret, key),
                             request_digest(server_secret, pathway, signals), sealed)


def unseal_token(server_secret: bytes, key: str, sealed: bytes) -> str | None:
    try:
        return AESGCM(_sealing_key(server_secret, key)).decrypt(sealed[:12], sealed[12:], None).decode()
    except InvalidTag:
        return None
