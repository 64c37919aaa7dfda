"""Verifiers for secrets (case tokens, partner keys) and the server secret they are keyed with.

Why HMAC-SHA256 under a server secret rather than scrypt: tokens and keys are random values of 140
bits (case tokens, store/token_format.py) or 256 (partner keys, the first case tokens), so no
dictionary or brute-force attack exists that a slow hash would slow down; the keyed HMAC makes a
stolen database useless without the separately stored secret, and keeps a status lookup at
microseconds instead of the ~50 ms of scrypt, which would cap submits far below the 500 cases/s
goal and hand an attacker a cheap CPU-exhaustion lever.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_BYTES = 32  # 256 bits: >= 128 bits of entropy with room to spare


def new_secret_token() -> str:
    """A fresh partner key secret (case tokens before issue 18 too): 256 random bits, URL-safe,
    shown to its owner once. New case tokens: store/token_format.py."""
    return secrets.token_urlsafe(SECRET_BYTES)


def verifier(server_secret: bytes, purpose: str, secret_value: str) -> bytes:
    """Keyed verifier of `secret_value`; `purpose` separates tokens from keys from digests."""
    return hmac.new(server_secret, f"{purpose}\x00{secret_value}".encode(), hashlib.sha256).digest()


def verify(server_secret: bytes, purpose: str, secret_value: str, expected: bytes | None) -> bool:
    """Constant-time check; with `expected=None` (unknown owner) it does the same work and fails.
    A ServerSecret also accepts verifiers made under its earlier versions (verify_version)."""
    return verify_version(server_secret, purpose, secret_value, expected) is not None


def digest(server_secret: bytes, purpose: str, data: bytes) -> bytes:
    return hmac.new(server_secret, purpose.encode() + b"\x00" + data, hashlib.sha256).digest()


def encode_secret(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_secret(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- Versions of the server secret (issue 23) --------------------------------------------------
# After `hashguard rotate-secret` the verifiers in the database were made under earlier secrets.
# A process holds the current secret and the earlier ones it could unseal from the database
# (store/secret_check.py); a verifier made under any of them still opens, and is re-keyed to the
# current one by the code that found it (api/case_tokens.py, partners/auth.py).

CHECK_CONTEXT = b"hashguard secret check v1"
SEAL_CONTEXT = b"hashguard seal v1\x00"
NONCE_BYTES = 12


class ServerSecret(bytes):
    """The current server secret (these bytes: every new verifier and digest is keyed with them)
    and the earlier versions still accepted, newest first. A bytes subclass so that everything
    that only keys with the current secret needs no change."""

    previous: tuple[bytes, ...]

    def __new__(cls, current: bytes, previous: tuple[bytes, ...] = ()) -> ServerSecret:
        made = super().__new__(cls, current)
        made.previous = tuple(bytes(p) for p in previous)
        return made

    def ring(self) -> tuple[bytes, ...]:
        return (bytes(self), *getattr(self, "previous", ()))


def check_value(server_secret: bytes) -> bytes:
    """What the database records about the secret: tells a wrong secret from the right one, and
    (HMAC, 256-bit key) tells nothing about the secret itself."""
    return hmac.new(bytes(server_secret), CHECK_CONTEXT, hashlib.sha256).digest()


def verify_version(server_secret: bytes, purpose: str, secret_value: str,
                   expected: bytes | None) -> int | None:
    """0 when the current secret's verifier equals `expected`, k when the k-th earlier one's
    does, None when none does. Every version is computed and compared whatever matches, so the
    time tells neither whether nor under which version a verifier matched."""
    ring = server_secret.ring() if isinstance(server_secret, ServerSecret) else (server_secret,)
    against = expected if expected is not None else bytes(32)
    found = None
    for version, key in enumerate(ring):
        if hmac.compare_digest(verifier(key, purpose, secret_value), against) and found is None:
            found = version
    return found if expected is not None else None


def _seal_key(server_secret: bytes, purpose: str) -> bytes:
    return hmac.new(bytes(server_secret), SEAL_CONTEXT + purpose.encode(), hashlib.sha256).digest()


def seal(server_secret: bytes, purpose: str, plaintext: bytes) -> bytes:
    """`plaintext` encrypted and authenticated (AES-256-GCM) under a key derived from the server
    secret; `purpose` is bound in, so a sealed webhook key cannot be passed off as another."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(_seal_key(server_secret, purpose)).encrypt(
        nonce, plaintext, purpose.encode())


def unseal(server_secret: bytes, purpose: str, sealed: bytes) -> bytes:
    """The plaintext; raises cryptography's InvalidTag under any other secret or purpose."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(_seal_key(server_secret, purpose)).decrypt(
        sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], purpose.encode())
