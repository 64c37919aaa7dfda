"""What the database knows about the server secret and the signing keys (issue 23).

Why: a process started with an empty data folder once made itself a new secret and a new log key
with only a warning, and every case owner got 404, every partner 401, and the log changed keys
unnoticed. Now the database records a check value of each version of the server secret (an HMAC
under it, never the secret) and the id of each signing key, so a process whose secret or key
does not match refuses to start (store/secret_check.py).

Signing keys are kept here, sealed (AES-GCM) under the server secret, so that every process and
host signs with the same key; a key given in the environment is recorded by its id only.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, BigId

PURPOSE_TRANSPARENCY = "transparency"
PURPOSE_WEBHOOK = "webhook"
KEY_PURPOSES = (PURPOSE_TRANSPARENCY, PURPOSE_WEBHOOK)


class SecretVersion(Base):
    """Version `version` of the server secret. The newest is current; each row also holds the
    secret before it, sealed under this one, so a process with the current secret can still open
    verifiers made under every earlier one (and nobody with only an old secret learns a new one)."""

    __tablename__ = "secret_versions"
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    check_value: Mapped[bytes] = mapped_column(LargeBinary(32))
    sealed_previous: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)  # unix seconds


class SigningKey(Base):
    """A signing key (`purpose`: transparency or webhook) and when it stopped signing. The one
    with no `retired_at` is current. A webhook key's `retired_at` may lie ahead: the end of a
    rotation's overlap, until which it signs beside its successor (partners/webhooks.py).
    `sealed_seed` is its Ed25519 seed sealed under server secret version `secret_version`; NULL
    when the key comes from the environment (only its id is kept)."""

    __tablename__ = "signing_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(32), index=True)
    key_id: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the raw public key
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    sealed_seed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    secret_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    retired_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The key it replaced signed it (txlog.head.key_change_bytes with created_at): how a partner
    # who pinned the old transparency key verifies the change. NULL for a purpose's first key.
    endorsement: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
