"""Reference verifier for hashguard's webhooks, for partners (partner side: no server imports).

A webhook only says "the change log grew: pull now"; the cursor pull stays the source of truth.
Each POST carries `Hashguard-Timestamp` (unix seconds) and `Hashguard-Signature:
ed25519=<base64url signature>` over the bytes `<timestamp>.<body>`, made with the server's
Ed25519 key; its public key is served at `/.well-known/hashguard-webhook-key`. Verify the
signature, refuse timestamps outside the window, and refuse replays (ReplayGuard).

The signer is the server's (partners/webhooks.py), which may not import this package: the two
headers and the signed bytes are written in both, as the wire contract they are, and
tests/test_webhooks.py checks a real delivery against this verifier and the constants against
each other.
"""
from __future__ import annotations

import base64
import threading
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TIMESTAMP_HEADER = "Hashguard-Timestamp"
SIGNATURE_HEADER = "Hashguard-Signature"
DEFAULT_WINDOW_SECONDS = 300


class WebhookRejected(ValueError):
    pass


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_bytes(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode() + b"." + body


def verify(public_key: str, body: bytes, timestamp: str | None, signature: str | None,
           now: float | None = None, window: int = DEFAULT_WINDOW_SECONDS) -> None:
    """Raise WebhookRejected unless the delivery is authentic and fresh."""
    if not timestamp or not signature:
        raise WebhookRejected("missing signature headers")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise WebhookRejected("malformed timestamp")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > window:
        raise WebhookRejected(f"timestamp outside the {window} s window (replayed or clock skew)")
    scheme, _, encoded = signature.partition("=")
    if scheme != "ed25519" or not encoded:
        raise WebhookRejected("unknown signature scheme")
    try:
        key = Ed25519PublicKey.from_public_bytes(_b64decode(public_key))
        key.verify(_b64decode(encoded), signed_bytes(timestamp, body))
    except (InvalidSignature, ValueError) as bad:
        raise WebhookRejected("bad signature") from bad


class ReplayGuard:
    """Remembers signatures seen within the window: the same delivery is accepted once."""

    def __init__(self, window: int = DEFAULT_WINDOW_SECONDS) -> None:
        self.window = window
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, public_key: str, body: bytes, timestamp: str | None, signature: str | None,
              now: float | None = None) -> None:
        now = time.time() if now is None else now
        verify(public_key, body, timestamp, signature, now=now, window=self.window)
        with self._lock:
            self._seen = {s: t for s, t in self._seen.items() if now - t <= 2 * self.window}
            if signature in self._seen:
                raise WebhookRejected("replayed delivery")
            self._seen[signature] = now
