"""Signed webhooks: wake partners the moment entries commit, without ever blocking a submit.

A dispatcher thread per process wakes on the change notifier (and every few seconds), and — if it
is the leader (one per PostgreSQL database, a session advisory lock held by its connection) —
POSTs a small signed body to each partner whose pathways gained entries since the last
successful delivery. Failures are retried with exponential backoff; every attempt is logged in
webhook_deliveries. Bodies are signed with the server's Ed25519 key (partner_tools/webhook.py verifies).
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from store import changelog
from store.models import Partner, PartnerWebhook, WebhookDelivery
from store.secret_file import read_or_create

log = logging.getLogger("hashguard.webhooks")
_LEADER_LOCK = 0x4847_5748  # "HGWH"
KEY_FILE = "webhook-signing-key.pem"
# The wire contract, also written in the partners' verifier (partner_tools/webhook.py), which the
# server may not import; tests/test_webhooks.py holds the two equal.
TIMESTAMP_HEADER = "Hashguard-Timestamp"
SIGNATURE_HEADER = "Hashguard-Signature"


def signed_bytes(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode() + b"." + body


class WebhookSigner:
    """The server's Ed25519 webhook key."""

    def __init__(self, data_dir: Path, key: Ed25519PrivateKey | None = None) -> None:
        # The service passes the key shared by every host (kept in the database sealed under the
        # server secret, or HASHGUARD_WEBHOOK_KEY: api/startup.py): a key file per host made
        # two hosts sign with different keys. Without one, the data dir's file as before.
        if key is not None:
            self._key = key
            return
        # Workers starting together keep one key, and none reads a half-written file.
        pem, _ = read_or_create(Path(data_dir) / KEY_FILE, lambda: Ed25519PrivateKey.generate()
                                .private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self._key = serialization.load_pem_private_key(pem, password=None)

    def public_key(self) -> str:
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw,
                                                  serialization.PublicFormat.Raw)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def headers(self, body: bytes, now: int | None = None) -> dict:
        timestamp = str(int(time.time()) if now is None else now)
        signature = self._key.sign(signed_bytes(timestamp, body))
        encoded = base64.urlsafe_b64encode(signature).decode().rstrip("=")
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: f"ed25519={encoded}",
                "Content-Type": "application/json"}


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
