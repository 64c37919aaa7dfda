"""Verifiers for secrets (case tokens, partner keys) and the server secret they are keyed with.

Why HMAC-SHA256 under a server secret rather than scrypt: tokens and keys are 256-bit random
values, so no dictionary or brute-force attack exists that a slow hash would slow down; the keyed
HMAC makes a stolen database useless without the separately stored secret, and keeps a status
lookup at microseconds instead of the ~50 ms of scrypt, which would cap submits far below the
500 cases/s goal and hand an attacker a cheap CPU-exhaustion lever.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_BYTES = 32  # 256 bits: >= 128 bits of entropy with room to spare


def new_secret_token() -> str:
    """A fresh case token or partner key: 256 random bits, URL-safe, shown to its owner once."""
    return secrets.token_urlsafe(SECRET_BYTES)


def verifier(server_secret: bytes, purpose: str, secret_value: str) -> bytes:
    """Keyed verifier of `secret_value`; `purpose` separates tokens from keys from digests."""
    return hmac.new(server_secret, f"{purpose}\x00{secret_value}".encode(), hashlib.sha256).digest()


def verify(server_secret: bytes, purpose: str, secret_value: str, expected: bytes | None) -> bool:
    """Constant-time check; with `expected=None` (unknown owner) it does the same work and fails."""
    candidate = verifier(server_secret, purpose, secret_value)
    return hmac.compare_digest(candidate, expected if expected is not None else bytes(32)) and (
        expected is not None
    )


def digest(server_secret: bytes, purpose: str, data: bytes) -> bytes:
    return hmac.new(server_secret, purpose.encode() + b"\x00" + data, hashlib.sha256).digest()


def encode_secret(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_secret(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
