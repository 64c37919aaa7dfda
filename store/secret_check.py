"""At start: the server secret and the signing keys must be the ones the database knows.

The database records a check value of every version of the server secret and the signing keys
(store/secret_models.py). A fresh database records this process's at its first start; after
that a process whose secret is missing, wrong or rotated out, or whose key from the environment
is not the recorded one, refuses to start with one line (StartRefused, an exit, no traceback)
instead of issuing tokens nobody can check and signing the log with a key nobody pinned.

The signing keys themselves are kept in the database sealed under the secret, so every process
and host signs with the same ones; a key in the environment wins (only its id is recorded).
Callers hold store.migrate.startup_lock, so two fresh processes cannot record two keys.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from store.secret_models import KEY_PURPOSES, SecretVersion, SigningKey
from store.secrets import ServerSecret, check_value, seal, unseal

PREVIOUS_SECRET = "previous-server-secret"
ENV_NAMES = {"transparency": "HASHGUARD_TRANSPARENCY_KEY", "webhook": "HASHGUARD_WEBHOOK_KEY"}


class StartRefused(SystemExit):
    """Exits with one line on stderr and status 1: a SystemExit, so that no entry point (the
    CLI, a uvicorn worker's factory) prints a traceback over the one sentence that matters."""

    def __init__(self, reason: str):
        super().__init__(f"hashguard refuses to start: {reason}")
        self.reason = reason


@dataclass
class KeySource:
    """Where this process could find a signing key besides the database."""
    from_env: bytes | None = None  # a 32-byte Ed25519 seed given in the environment
    legacy_file: Path | None = None  # the per-host PEM file of earlier versions, adopted once


@dataclass
class Established:
    secret: ServerSecret  # current, with the earlier versions it unsealed
    version: int
    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)


def seed_of(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def key_id(key: Ed25519PrivateKey) -> str:
    from txlog.head import key_id as txlog_key_id

    return txlog_key_id(raw_public(key))  # the transparency log's key id, for both purposes


def establish(session, configured: bytes | None, make_secret: Callable[[], bytes],
              where: str, key_sources: dict[str, KeySource]) -> Established:
    """Check (or, on a fresh database, record) the secret and keys in `session`'s transaction.

    `configured`: the secret this process was given (environment or its file), None when it has
    none; `make_secret()` makes one (its file) and is called only for a fresh database.
    `where` names the secret's place in messages."""
    versions = session.scalars(select(SecretVersion).order_by(SecretVersion.version.desc())).all()
    if not versions:
        if configured is None:
            _refuse_if_data_without_secret(session, where)
            configured = make_secret()
        session.add(SecretVersion(version=1, check_value=check_value(configured),
                                  sealed_previous=None, created_at=int(time.time())))
        secret, version = ServerSecret(configured), 1
    else:
        secret, version = _matching(versions, configured, where)
    keys = {purpose: _signing_key(session, purpose, secret, version, key_sources.get(purpose))
            for purpose in KEY_PURPOSES}
    return Established(secret, version, keys)


def _refuse_if_data_without_secret(session, where: str) -> None:
    """A database from before check values were recorded, holding cases or partner keys, with no
    secret configured: its secret was lost or not passed on; a new one would fail them all."""
    from store.models import Case, PartnerKey

    if session.scalar(select(Case.id).limit(1)) is not None or \
            session.scalar(select(PartnerKey.id).limit(1)) is not None:
        raise StartRefused(f"the database holds cases and partner keys but this process has no "
                           f"server secret ({where} is missing); restore it: a new secret would "
                           f"make every case token and partner key fail")


def _matching(versions, configured: bytes | None, where: str) -> tuple[ServerSecret, int]:
    current = versions[0]
    if configured is None:
        raise StartRefused(f"this database was set up with a server secret (version "
                           f"{current.version}) but this process has none ({where} is missing); "
                           f"restore it from your backup, do not make a new one")
    check = check_value(configured)
    for row in versions:
        if row.check_value == check and row is not current:
            raise StartRefused(f"the server secret in {where} is version {row.version}, replaced "
                               f"by version {current.version} (hashguard rotate-secret); give "
                               f"this process the current one")
    if current.check_value != check:
        raise StartRefused(f"the server secret in {where} is not the one this database was set "
                           f"up with (its check value differs); restore the right one: with this "
                           f"one every case token and partner key would fail")
    # Unseal the chain: each version holds the one before it, sealed under itself.
    ring, key = [], configured
    for row in versions:
        if row.sealed_previous is None:
            break
        key = unseal(key, PREVIOUS_SECRET, row.sealed_previous)
        ring.append(key)
    return ServerSecret(configured, tuple(ring)), current.version


def _signing_key(session, purpose: str, secret: ServerSecret, version: int,
                 source: KeySource | None) -> Ed25519PrivateKey:
    source = source or KeySource()
    env_name = ENV_NAMES[purpose]
    row = current_key(session, purpose)
    if source.from_env is not None:
        key = Ed25519PrivateKey.from_private_bytes(source.from_env)
        if row is None:
            _record(session, purpose, key, secret, version, sealed=False)
        elif row.key_id != key_id(key):
            raise StartRefused(f"{env_name} is not the {purpose} key this database records (key "
                               f"id {key_id(key)[:16]}…, recorded {row.key_id[:16]}…); give it "
                               f"the recorded key, or rotate with hashguard rotate-signing-key")
        return key
    if row is None:
        key = _legacy(source.legacy_file) or Ed25519PrivateKey.generate()
        _record(session, purpose, key, secret, version, sealed=True)
        return key
    if row.sealed_seed is None:
        raise StartRefused(f"the {purpose} key (id {row.key_id[:16]}…) was given in the "
                           f"environment, and {env_name} is not set in this process")
    return open_key(row, secret, version)


def open_key(row: SigningKey, secret: ServerSecret, version: int) -> Ed25519PrivateKey:
    """The private key of a stored row (StartRefused when this secret cannot open it)."""
    return Ed25519PrivateKey.from_private_bytes(_unseal_seed(row, secret, version, row.purpose))


def current_key(session, purpose: str) -> SigningKey | None:
    return session.scalars(select(SigningKey).where(
        SigningKey.purpose == purpose, SigningKey.retired_at.is_(None))
        .order_by(SigningKey.id.desc()).limit(1)).first()


def _unseal_seed(row: SigningKey, secret: ServerSecret, version: int, purpose: str) -> bytes:
    ring = secret.ring()
    index = version - (row.secret_version or version)
    try:
        return unseal(ring[index], f"signing-key:{purpose}", row.sealed_seed)
    except (InvalidTag, IndexError):
        raise StartRefused(f"the {purpose} key in the database cannot be opened with this "
                           f"server secret") from None


def _record(session, purpose: str, key: Ed25519PrivateKey, secret: bytes, version: int,
            sealed: bool) -> SigningKey:
    row = SigningKey(purpose=purpose, key_id=key_id(key), public_key=raw_public(key),
                     sealed_seed=seal(secret, f"signing-key:{purpose}", seed_of(key))
                     if sealed else None,
                     secret_version=version if sealed else None, created_at=int(time.time()))
    session.add(row)
    session.flush()
    return row


def _legacy(path: Path | None) -> Ed25519PrivateKey | None:
    """The key file earlier versions made in each host's data folder: adopted once, so the
    first process after the upgrade keeps signing with the key partners already pinned."""
    if path is None or not Path(path).is_file():
        return None
    return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)


# --- Rotation ----------------------------------------------------------------------------------

def rotate_secret(session, established: Established, new_secret: bytes) -> int:
    """Record `new_secret` as the next version, holding the current one sealed under it, and
    re-seal every stored signing key under it. Returns the new version."""
    version = established.version + 1
    session.add(SecretVersion(version=version, check_value=check_value(new_secret),
                              sealed_previous=seal(new_secret, PREVIOUS_SECRET,
                                                   bytes(established.secret)),
                              created_at=int(time.time())))
    ring = established.secret.ring()
    for row in session.scalars(select(SigningKey).where(SigningKey.sealed_seed.is_not(None))):
        old = ring[established.version - row.secret_version]
        seed = unseal(old, f"signing-key:{row.purpose}", row.sealed_seed)
        row.sealed_seed = seal(new_secret, f"signing-key:{row.purpose}", seed)
        row.secret_version = version
    return version


def rotate_signing_key(session, established: Established, purpose: str,
                       new_key: Ed25519PrivateKey | None = None) -> tuple[SigningKey, SigningKey]:
    """Retire the current `purpose` key and record a new one (sealed), endorsed by the old one:
    it signs txlog.head.key_change_bytes(old, new, time), which partners' verifiers check.
    Returns (old row, new row)."""
    from txlog.head import key_change_bytes

    old = current_key(session, purpose)
    if old is None or old.sealed_seed is None:
        raise StartRefused(f"the {purpose} key is not kept in the database (it comes from "
                           f"{ENV_NAMES[purpose]}): change that variable instead")
    old_key = open_key(old, established.secret, established.version)
    now = int(time.time())
    session.execute(update(SigningKey).where(SigningKey.purpose == purpose,
                                             SigningKey.retired_at.is_(None))
                    .values(retired_at=now))
    new_key = new_key or Ed25519PrivateKey.generate()
    new = _record(session, purpose, new_key, established.secret, established.version, sealed=True)
    new.created_at = now
    new.endorsement = old_key.sign(key_change_bytes(bytes(old.public_key), raw_public(new_key),
                                                    now))
    return old, new


def key_history(session, purpose: str) -> list[SigningKey]:
    """Every `purpose` key, oldest first (for the published key changes)."""
    return list(session.scalars(select(SigningKey).where(SigningKey.purpose == purpose)
                                .order_by(SigningKey.id)))
