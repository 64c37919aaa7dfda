"""Reference verifier for hashguard's webhooks, for partners (partner side: no server imports).

A webhook only says "the change log grew: pull now"; the cursor pull stays the source of truth.
Each POST carries `Hashguard-Timestamp` (unix seconds) and `Hashguard-Signature:
ed25519=<base64url signature>` over the bytes `<timestamp>.<body>`, made with the server's
Ed25519 key; its public key is served at `/.well-known/hashguard-webhook-key`. Verify the
signature, refuse timestamps outside the window, and refuse replays (ReplayGuard).

Key rotation (`hashguard webhooks rotate-key`): `Hashguard-Signatures` carries every signature,
`ed25519:<key id>=<sig>`, comma-separated; during a rotation's overlap there are two (the old
key's is also the one in `Hashguard-Signature`, so a verifier that reads only that header and
pinned the old key keeps working until the overlap ends). The well-known document lists each
change of key signed by the key it replaced, with the end of the old key's validity:
TrustedKeys.follow() trusts a new key only through such a change from a key it already trusts,
and refuses the old key's signatures after its end.

The signer is the server's (partners/webhooks.py), which may not import this package: the
headers, the signed bytes and the key-change bytes are written in both, as the wire contract
they are, and tests/test_webhooks.py and tests/test_webhook_key_rotation.py check real
deliveries against this verifier and the constants against each other.
"""
from __future__ import annotations

import base64
import hashlib
import struct
import threading
import time
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TIMESTAMP_HEADER = "Hashguard-Timestamp"
SIGNATURE_HEADER = "Hashguard-Signature"
SIGNATURES_HEADER = "Hashguard-Signatures"
KEY_CHANGE_DOMAIN = b"hashguard-webhook-key-change-v1\x00"
DEFAULT_WINDOW_SECONDS = 300


class WebhookRejected(ValueError):
    pass


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_bytes(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode() + b"." + body


def key_change_bytes(old_public: bytes, new_public: bytes, timestamp: int, not_after: int) -> bytes:
    return KEY_CHANGE_DOMAIN + old_public + new_public + struct.pack(">QQ", timestamp, not_after)


def _ed25519_signatures(signature: str | None, signatures: str | None) -> list[str]:
    """The base64url Ed25519 signatures of both headers (other schemes are skipped)."""
    found = []
    for part in [signature or "", *(signatures or "").split(",")]:
        scheme, _, encoded = part.strip().partition("=")
        if scheme.partition(":")[0] == "ed25519" and encoded:
            found.append(encoded)
    return found


def verify(public_key: str | Iterable[str] | TrustedKeys, body: bytes, timestamp: str | None,
           signature: str | None, now: float | None = None,
           window: int = DEFAULT_WINDOW_SECONDS, signatures: str | None = None) -> str:
    """Raise WebhookRejected unless the delivery is authentic and fresh; return the public key
    that verified it. `public_key`: one key, several, or TrustedKeys (each key only within its
    validity); `signatures`: the `Hashguard-Signatures` header, when the delivery has one."""
    if not timestamp or not (signature or signatures):
        raise WebhookRejected("missing signature headers")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise WebhookRejected("malformed timestamp")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > window:
        raise WebhookRejected(f"timestamp outside the {window} s window (replayed or clock skew)")
    candidates = _ed25519_signatures(signature, signatures)
    if not candidates:
        raise WebhookRejected("unknown signature scheme")
    if isinstance(public_key, TrustedKeys):
        keys = public_key.valid_at(int(timestamp))
    else:
        keys = [public_key] if isinstance(public_key, str) else list(public_key)
    message = signed_bytes(timestamp, body)
    for key in keys:
        for encoded in candidates:
            try:
                Ed25519PublicKey.from_public_bytes(_b64decode(key)).verify(_b64decode(encoded),
                                                                           message)
                return key
            except (InvalidSignature, ValueError):
                continue
    raise WebhookRejected("bad signature (none by a key trusted at that time)")


class TrustedKeys:
    """The webhook keys a partner trusts, each with the end of its validity (None: open).

    Start from the key you pinned; call follow() with the service's well-known document (from its
    HTTPS address) when a rotation is announced, or when a delivery fails verification. State to
    keep between runs: as_dict() / from_dict()."""

    def __init__(self, pinned: str | Iterable[str]) -> None:
        pinned = [pinned] if isinstance(pinned, str) else list(pinned)
        self.not_after: dict[str, int | None] = {key: None for key in pinned}

    def valid_at(self, timestamp: int) -> list[str]:
        return [key for key, end in self.not_after.items() if end is None or timestamp <= end]

    def follow(self, published: dict) -> list[str]:
        """Trust each new key that a change signed by a trusted key leads to (oldest change
        first), and end the old key's validity where that change says. Changes not signed by a
        trusted key are ignored; a validity is only ever shortened. Returns the keys added."""
        added = []
        for change in published.get("key_changes", []):
            old, new = change.get("old_public_key"), change.get("new_public_key")
            if old not in self.not_after:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(_b64decode(old)).verify(
                    _b64decode(change["signature"]),
                    key_change_bytes(_b64decode(old), _b64decode(new), int(change["timestamp"]),
                                     int(change["not_after"])))
            except (InvalidSignature, ValueError, KeyError, TypeError):
                continue
            end, ends = int(change["not_after"]), self.not_after[old]
            self.not_after[old] = end if ends is None else min(ends, end)
            if new not in self.not_after:
                self.not_after[new] = None
                added.append(new)
        return added

    def as_dict(self) -> dict:
        return dict(self.not_after)

    @classmethod
    def from_dict(cls, state: dict) -> TrustedKeys:
        keys = cls([])
        keys.not_after = {k: (None if v is None else int(v)) for k, v in state.items()}
        return keys


class ReplayGuard:
    """Remembers deliveries seen within the window: the same delivery is accepted once."""

    def __init__(self, window: int = DEFAULT_WINDOW_SECONDS) -> None:
        self.window = window
        self._seen: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def check(self, public_key: str | Iterable[str] | TrustedKeys, body: bytes,
              timestamp: str | None, signature: str | None, now: float | None = None,
              signatures: str | None = None) -> str:
        now = time.time() if now is None else now
        key = verify(public_key, body, timestamp, signature, now=now, window=self.window,
                     signatures=signatures)
        # Keyed by what was signed, not by a header: a delivery replayed with its signatures
        # rearranged is the same delivery.
        seen = hashlib.sha256(signed_bytes(timestamp, body)).digest()
        with self._lock:
            self._seen = {s: t for s, t in self._seen.items() if now - t <= 2 * self.window}
            if seen in self._seen:
                raise WebhookRejected("replayed delivery")
            self._seen[seen] = now
        return key
