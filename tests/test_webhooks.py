"""Signed webhooks: delivered at commit, verifiable by the reference verifier, retried, never
blocking a submit; forged, stale and replayed deliveries are rejected by that verifier."""
from __future__ import annotations

import time

import pytest

from partner_tools.webhook import ReplayGuard, WebhookRejected, verify
from partners.webhooks import WebhookSigner
from tests.hashes import BRIDGE, C_PNG
from tests.helpers import Receiver, new_case, register_webhook


def test_the_signer_and_the_partners_verifier_share_one_wire_contract():
    """Written twice on purpose (the server may not import partner_tools/): held equal here."""
    from partner_tools import webhook as partner_side
    from partners import webhooks as server_side

    assert server_side.TIMESTAMP_HEADER == partner_side.TIMESTAMP_HEADER
    assert server_side.SIGNATURE_HEADER == partner_side.SIGNATURE_HEADER
    assert server_side.signed_bytes("1700000000", b'{"a": 1}') \
        == partner_side.signed_bytes("1700000000", b'{"a": 1}')


def test_submit_wakes_the_partner_with_a_verifiable_signed_webhook(client, make_partner, settings):
    receiver = Receiver()
    make_partner("hooked", "adult")
    register_webhook(settings, "hooked", receiver.url)
    public_key = client.get("/.well-known/hashguard-webhook-key").json()["public_key"]
    new_case(client, [BRIDGE])
    submitted = time.monotonic()
    [(arrived, headers, body)] = receiver.wait_for(1)
    assert arrived - submitted < 1.0
    verify(public_key, body, headers["Hashguard-Timestamp"], headers["Hashguard-Signature"])
    assert b'"latest_seq"' in body and BRIDGE.encode() not in body  # a wake-up, not the data


def test_failed_deliveries_are_retried_and_logged(client, make_partner, settings, app):
    from sqlalchemy import select

    from store.models import WebhookDelivery

    receiver = Receiver(answers=(500, 200))
    make_partner("flaky", "adult")
    register_webhook(settings, "flaky", receiver.url)
    new_case(client, [C_PNG])
    receiver.wait_for(2, timeout=15)
    time.sleep(0.2)
    with app.state.database.read() as session:
        attempts = session.execute(select(WebhookDelivery.attempt, WebhookDelivery.status_code)
                                   .order_by(WebhookDelivery.id)).all()
    assert [tuple(a) for a in attempts][:2] == [(1, 500), (2, 200)]


def test_a_hanging_webhook_never_slows_a_submit(client, make_partner, settings):
    receiver = Receiver(delay=3.0)
    make_partner("slow", "adult")
    register_webhook(settings, "slow", receiver.url)
    new_case(client, [BRIDGE])
    receiver.wait_for(1)
    started = time.monotonic()
    new_case(client, [C_PNG])
    assert time.monotonic() - started < 1.0


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return WebhookSigner(tmp_path_factory.mktemp("keys"))


def test_reference_verifier_accepts_a_fresh_genuine_delivery_once(signer):
    body = b'{"latest_seq":5}'
    headers = signer.headers(body)
    guard = ReplayGuard()
    guard.check(signer.public_key(), body, headers["Hashguard-Timestamp"], headers["Hashguard-Signature"])
    with pytest.raises(WebhookRejected, match="replayed"):
        guard.check(signer.public_key(), body, headers["Hashguard-Timestamp"],
                    headers["Hashguard-Signature"])


@pytest.mark.parametrize("tamper", ["body", "signature", "old", "future", "other key", "scheme", "missing"])
def test_reference_verifier_rejects_forged_or_stale_deliveries(signer, tmp_path, tamper):
    body = b'{"latest_seq":5}'
    now = int(time.time())
    headers = signer.headers(body, now=now - 3600 if tamper == "old" else
                             now + 3600 if tamper == "future" else now)
    key, timestamp, signature = signer.public_key(), headers["Hashguard-Timestamp"], headers["Hashguard-Signature"]
    if tamper == "body":
        body = b'{"latest_seq":6}'
    elif tamper == "signature":
        signature = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    elif tamper == "other key":
        key = WebhookSigner(tmp_path).public_key()
    elif tamper == "scheme":
        signature = "hmac=" + signature.partition("=")[2]
    elif tamper == "missing":
        signature = None
    with pytest.raises(WebhookRejected):
        verify(key, body, timestamp, signature)
