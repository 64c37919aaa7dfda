"""Signed webhooks: wake partners the moment entries commit, without ever blocking a submit.

A dispatcher thread per process wakes on the change notifier (and every few seconds), and — if it
is the leader (one per PostgreSQL database, a session advisory lock held by its connection) —
POSTs a small signed body to each partner whose pathways gained entries since the last
successful delivery. Failures are retried with exponential backoff; every attempt is logged in
webhook_deliveries. Bodies are signed with the server's Ed25519 key (partner_tools/webhook.py verifies).

Rotation (`hashguard webhooks rotate-key`, issue 23): the new key is kept sealed in the database
like the old one, and the old key signs the change. For the overlap both keys sign every
delivery: `Hashguard-Signature` keeps exactly one signature, by the OLDEST key still signing (the
one partners pinned), because the verifier partners already run reads that header as a single
`ed25519=<sig>` and refuses several parts; `Hashguard-Signatures` carries every signature with
its key id. After the overlap only the new key signs. Every process re-reads the signing keys
from the database before each batch of deliveries (one small query), so none needs a restart.
"""
from __future__ import annotations

import base64
import json
import logging
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import or_, select, update

from store import changelog, secret_check
from store.models import Partner, PartnerWebhook, WebhookDelivery
from store.secret_file import read_or_create
from store.secret_models import PURPOSE_WEBHOOK, SigningKey
from store.secrets import seal

log = logging.getLogger("hashguard.webhooks")
_LEADER_LOCK = 0x4847_5748  # "HGWH"
KEY_FILE = "webhook-signing-key.pem"
# The wire contract, also written in the partners' verifier (partner_tools/webhook.py), which the
# server may not import; tests/test_webhooks.py holds the two equal.
TIMESTAMP_HEADER = "Hashguard-Timestamp"
SIGNATURE_HEADER = "Hashguard-Signature"
# Every signature, `ed25519:<key id hex>=<base64url signature>`, comma-separated (newest key last).
SIGNATURES_HEADER = "Hashguard-Signatures"
# What the old key signs to endorse its successor, with the end of its own validity (also in
# partner_tools/webhook.py). Its own domain: a transparency key change cannot be replayed here.
KEY_CHANGE_DOMAIN = b"hashguard-webhook-key-change-v1\x00"
DEFAULT_OVERLAP_HOURS = 72.0


def signed_bytes(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode() + b"." + body


def key_change_bytes(old_public: bytes, new_public: bytes, timestamp: int, not_after: int) -> bytes:
    return KEY_CHANGE_DOMAIN + old_public + new_public + struct.pack(">QQ", timestamp, not_after)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class _SigningKey:
    key_id: str
    key: Ed25519PrivateKey
    not_after: int | None  # unix seconds after which it no longer signs; None: current


class WebhookSigner:
    """The server's Ed25519 webhook keys: the current one, and during a rotation's overlap the
    one it replaces."""

    def __init__(self, data_dir: Path, key: Ed25519PrivateKey | None = None, database=None,
                 secret=None, secret_version: int = 0) -> None:
        # The service passes the key shared by every host (kept in the database sealed under the
        # server secret, or HASHGUARD_WEBHOOK_KEY: api/startup.py): a key file per host made
        # two hosts sign with different keys. Without one, the data dir's file as before.
        if key is None:
            # Workers starting together keep one key, and none reads a half-written file.
            pem, _ = read_or_create(Path(data_dir) / KEY_FILE, lambda: Ed25519PrivateKey.generate()
                                    .private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            key = serialization.load_pem_private_key(pem, password=None)
        self._key = key
        # With the database that records the keys (version 0: it records none), rotations are
        # followed without a restart: refresh() re-reads which keys sign.
        self._database = database if secret_version else None
        self._secret, self._secret_version = secret, secret_version
        self._opened = {secret_check.key_id(key): key}  # key id -> private key, opened once
        self._keys = [_SigningKey(secret_check.key_id(key), key, None)]  # oldest first

    def refresh(self, session) -> None:
        """Re-read the keys that sign (the current one and any still in its overlap)."""
        if self._database is None:
            return
        now = int(time.time())
        keys = []
        for row in session.scalars(select(SigningKey).where(
                SigningKey.purpose == PURPOSE_WEBHOOK,
                or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now))
                .order_by(SigningKey.id)):
            key = self._opened.get(row.key_id)
            if key is None and row.sealed_seed is not None:
                try:
                    key = secret_check.open_key(row, self._secret, self._secret_version)
                except secret_check.StartRefused as refused:  # a SystemExit: not in a thread
                    log.warning("webhook key %s… not usable here: %s", row.key_id[:16],
                                refused.reason)
                    continue
                self._opened[row.key_id] = key
            if key is not None:
                keys.append(_SigningKey(row.key_id, key, row.retired_at))
        if keys:
            self._keys = keys

    def _signing(self, now: int) -> list[_SigningKey]:
        keys = [k for k in self._keys if k.not_after is None or now <= k.not_after]
        return keys or self._keys[-1:]

    def public_key(self) -> str:
        """The key of `Hashguard-Signature` now (during an overlap: the one being replaced)."""
        return b64url(secret_check.raw_public(self._signing(int(time.time()))[0].key))

    def headers(self, body: bytes, now: int | None = None) -> dict:
        timestamp = str(int(time.time()) if now is None else now)
        signatures = [(k.key_id, b64url(k.key.sign(signed_bytes(timestamp, body))))
                      for k in self._signing(int(timestamp))]
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: f"ed25519={signatures[0][1]}",
                SIGNATURES_HEADER: ", ".join(f"ed25519:{kid}={sig}" for kid, sig in signatures),
                "Content-Type": "application/json"}

    def published(self) -> dict:
        """What /.well-known/hashguard-webhook-key serves: `public_key` as before (the key of
        `Hashguard-Signature`), every key with its validity, and each change signed by the key it
        replaced, so a partner's verifier that trusts the old key can follow (TrustedKeys)."""
        if self._database is None:
            return {"algorithm": "ed25519", "public_key": self.public_key()}
        with self._database.read() as session:
            history = secret_check.key_history(session, PURPOSE_WEBHOOK)
        if not history:
            return {"algorithm": "ed25519", "public_key": self.public_key()}
        now = int(time.time())
        signing = [r for r in history if r.retired_at is None or now <= r.retired_at]
        keys = [{"public_key": b64url(bytes(r.public_key)), "key_id": r.key_id,
                 "not_before": r.created_at, "not_after": r.retired_at} for r in history]
        changes = [{"old_public_key": b64url(bytes(old.public_key)),
                    "new_public_key": b64url(bytes(new.public_key)), "timestamp": new.created_at,
                    "not_after": old.retired_at, "signature": b64url(new.endorsement)}
                   for old, new in zip(history, history[1:])
                   if new.endorsement is not None and old.retired_at is not None]
        return {"algorithm": "ed25519",
                "public_key": b64url(bytes((signing or history[-1:])[0].public_key)),
                "keys": keys, "key_changes": changes}


def rotate_key(session, established, overlap_seconds: int,
               new_key: Ed25519PrivateKey | None = None) -> tuple[SigningKey, SigningKey]:
    """Make a new webhook key (sealed like the current one); the current one keeps signing
    beside it for `overlap_seconds` and signs the change. Returns (old row, new row)."""
    old = secret_check.current_key(session, PURPOSE_WEBHOOK)
    if old is None or old.sealed_seed is None:
        raise secret_check.StartRefused(
            "the webhook key is not kept in the database (it comes from HASHGUARD_WEBHOOK_KEY): "
            "change that variable instead, and tell partners the new key")
    old_key = secret_check.open_key(old, established.secret, established.version)
    now = int(time.time())
    old.retired_at = now + max(0, int(overlap_seconds))
    new_key = new_key or Ed25519PrivateKey.generate()
    new = SigningKey(purpose=PURPOSE_WEBHOOK, key_id=secret_check.key_id(new_key),
                     public_key=secret_check.raw_public(new_key),
                     sealed_seed=seal(established.secret, f"signing-key:{PURPOSE_WEBHOOK}",
                                      secret_check.seed_of(new_key)),
                     secret_version=established.version, created_at=now,
                     endorsement=old_key.sign(key_change_bytes(
                         bytes(old.public_key), secret_check.raw_public(new_key), now,
                         old.retired_at)))
    session.add(new)
    session.flush()
    return old, new


@dataclass
class _Backoff:
    attempt: int = 0
    not_before: float = 0.0


@dataclass
class WebhookDispatcher:
    database: object
    signer: WebhookSigner
    notifier: object
    conninfo: str | None = None  # PostgreSQL: leader election; None: this process delivers
    timeout_seconds: float = 5.0
    idle_recheck_seconds: float = 5.0
    coalesce_seconds: float = 0.05
    max_backoff_seconds: float = 300.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _backoff: dict = field(default_factory=dict)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hashguard-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_seconds, follow_redirects=False) as http:
            while not self._stop.is_set():
                leader = self._lead()
                try:
                    seen = self.notifier.version
                    checked = time.monotonic()
                    while not self._stop.is_set():
                        self.deliver_due(http)
                        self.notifier.wait_blocking(seen, self._next_wait())
                        # Coalesce a burst of commits into one pass (and one query), instead
                        # of a database round trip per submit on the serving process.
                        self._stop.wait(self.coalesce_seconds)
                        seen = self.notifier.version
                        # Still the leader? A round trip on the leader's connection, so at most
                        # every idle_recheck_seconds, not per pass (measured: under submit load
                        # these checks were most of the dispatcher's 3 % of a worker's CPU).
                        if leader is not None and time.monotonic() - checked >= self.idle_recheck_seconds:
                            if not _still_leader(leader):
                                break
                            checked = time.monotonic()
                except Exception:  # noqa: BLE001 - the dispatcher must outlive any one failure
                    log.exception("webhook dispatcher failed; restarting")
                    self._stop.wait(1.0)
                finally:
                    if leader is not None:
                        leader.close()

    def _lead(self):
        """PostgreSQL: hold the leader lock on a dedicated connection (released if we die)."""
        if self.conninfo is None:
            return None
        while not self._stop.is_set():
            try:
                conn = psycopg.connect(self.conninfo, autocommit=True)
                if conn.execute("SELECT pg_try_advisory_lock(%s)", (_LEADER_LOCK,)).fetchone()[0]:
                    return conn
                conn.close()
            except psycopg.Error:
                pass
            self._stop.wait(self.idle_recheck_seconds)
        return None

    def _next_wait(self) -> float:
        pending = [b.not_before - time.monotonic() for b in self._backoff.values() if b.attempt]
        return max(0.05, min([self.idle_recheck_seconds, *pending]))

    def deliver_due(self, http: httpx.Client) -> int:
        """One pass: POST to every partner whose pathways gained entries. Returns deliveries made."""
        with self.database.read() as session:
            hooks = session.execute(select(PartnerWebhook, Partner)
                                    .join(Partner, Partner.id == PartnerWebhook.partner_id)).all()
            due = []
            for hook, partner in hooks:
                # In the partner's own numbering (store/changelog.py): a global position would
                # count the other pathway's entries for a partner entitled to one.
                latest = changelog.last_position(session, partner.pathway_list())
                if latest > hook.delivered_seq:
                    due.append((partner.id, partner.name, hook.url, latest))
            if due:  # a rotation made by any process or host applies from the next delivery
                self.signer.refresh(session)
        made = 0
        for partner_id, name, url, latest in due:
            backoff = self._backoff.setdefault(partner_id, _Backoff())
            if time.monotonic() < backoff.not_before:
                continue
            made += self._deliver(http, partner_id, name, url, latest, backoff)
        return made

    def _deliver(self, http, partner_id, name, url, latest, backoff: _Backoff) -> int:
        body = json.dumps({"type": "hashguard.change_log", "partner": name, "latest_seq": latest,
                           "pull": "/v1/partner/hashes"}, separators=(",", ":")).encode()
        backoff.attempt += 1
        status, error = None, None
        try:
            response = http.post(url, content=body, headers=self.signer.headers(body))
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as failure:
            error = type(failure).__name__
        with self.database.transaction() as session:
            session.add(WebhookDelivery(partner_id=partner_id, latest_seq=latest,
                                        attempt=backoff.attempt, status_code=status, error=error,
                                        attempted_at=int(time.time())))
            if error is None:
                session.execute(update(PartnerWebhook)
                                .where(PartnerWebhook.partner_id == partner_id,
                                       PartnerWebhook.delivered_seq < latest)
                                .values(delivered_seq=latest))
        if error is None:
            backoff.attempt, backoff.not_before = 0, 0.0
            return 1
        delay = min(self.max_backoff_seconds, 0.5 * 2 ** (backoff.attempt - 1))
        backoff.not_before = time.monotonic() + delay
        return 0


def _still_leader(conn) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def set_webhook(session, partner_id: int, url: str | None) -> None:
    """Register (or with None, remove) a partner's webhook URL; deliveries start from now."""
    existing = session.get(PartnerWebhook, partner_id)
    if url is None:
        if existing is not None:
            session.delete(existing)
        return
    pathways = session.get(Partner, partner_id).pathway_list()
    latest = changelog.last_position(session, pathways)
    if existing is None:
        session.add(PartnerWebhook(partner_id=partner_id, url=url, delivered_seq=latest))
    else:
        existing.url = url
