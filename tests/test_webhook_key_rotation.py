"""Rotating the webhook signing key (issue 23): `hashguard webhooks rotate-key` while the service
runs. Before the rotation one key signs; during the overlap real deliveries carry both keys'
signatures, and a partner still running the verifier as it was before rotations existed (frozen
below) and pinned to the old key accepts them; after the overlap only the new key signs, and a
delivery signed with the old key (as by someone who stole it) is refused by a verifier that
followed the signed change. Two server processes sign with the same keys, without a restart."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from typer.testing import CliRunner

from partner_tools import webhook as partner_side
from partner_tools.webhook import ReplayGuard, TrustedKeys, WebhookRejected, verify
from partners import webhooks as server_side
from store.secret_check import raw_public
from tests.hashes import BRIDGE, C_PNG, Q0122
from tests.helpers import Receiver, cli_app, new_case, register_webhook

KEY_PATH = "/.well-known/hashguard-webhook-key"


def _verify_as_on_main(public_key, body, timestamp, signature, now=None, window=300):
    """partner_tools/webhook.verify as partners copied it before rotations (main at ec855bb),
    verbatim but for names: what a partner who never updated runs."""
    if not timestamp or not signature:
        raise ValueError("missing signature headers")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise ValueError("malformed timestamp")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > window:
        raise ValueError(f"timestamp outside the {window} s window (replayed or clock skew)")
    scheme, _, encoded = signature.partition("=")
    if scheme != "ed25519" or not encoded:
        raise ValueError("unknown signature scheme")

    def b64decode(text):
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    try:
        key = Ed25519PublicKey.from_public_bytes(b64decode(public_key))
        key.verify(b64decode(encoded), partner_side.signed_bytes(timestamp, body))
    except (InvalidSignature, ValueError) as bad:
        raise ValueError("bad signature") from bad


def _rotate(settings, overlap_hours: float) -> str:
    result = CliRunner().invoke(cli_app(), ["webhooks", "rotate-key", "--yes", "--overlap-hours",
                                            str(overlap_hours)], env={
        "HASHGUARD_DATABASE_URL": settings.database_url,
        "HASHGUARD_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def _check(keys, delivery, **kwargs):
    _, headers, body = delivery
    return verify(keys, body, headers["Hashguard-Timestamp"], headers["Hashguard-Signature"],
                  signatures=headers.get("Hashguard-Signatures"), **kwargs)


def _key_ids(delivery) -> list[str]:
    return [part.strip().partition("=")[0].partition(":")[2]
            for part in delivery[1]["Hashguard-Signatures"].split(",")]


def test_the_key_change_contract_is_the_same_on_both_sides():
    assert server_side.SIGNATURES_HEADER == partner_side.SIGNATURES_HEADER
    assert server_side.key_change_bytes(b"o" * 32, b"n" * 32, 5, 9) \
        == partner_side.key_change_bytes(b"o" * 32, b"n" * 32, 5, 9)


def test_rotation_before_during_and_after_the_overlap(client, app, make_partner, settings):
    receiver = Receiver()
    make_partner("hooked", "adult")
    register_webhook(settings, "hooked", receiver.url)
    old = client.get(KEY_PATH).json()["public_key"]
    trusted = TrustedKeys(old)  # a partner on the new verifier, pinned to the key of before

    # Before: one key signs.
    new_case(client, [BRIDGE])
    [before] = receiver.wait_for(1)
    _verify_as_on_main(old, before[2], before[1]["Hashguard-Timestamp"],
                       before[1]["Hashguard-Signature"])
    assert _check(trusted, before) == old and len(_key_ids(before)) == 1

    # During: the running service signs with both keys from its next delivery, no restart.
    overlap = 0.004  # hours: 14 s, so that the test can see the end of it
    new = _rotate(settings, overlap)
    published = client.get(KEY_PATH).json()
    assert published["public_key"] == old  # still the key of Hashguard-Signature
    [old_entry, new_entry] = published["keys"]
    assert (old_entry["public_key"], new_entry["public_key"]) == (old, new)
    ends = old_entry["not_after"]
    assert new_entry["not_after"] is None and ends >= time.time() + 10
    new_case(client, [C_PNG])
    during = receiver.wait_for(2)[1]
    assert int(during[1]["Hashguard-Timestamp"]) <= ends, "too slow to deliver within the overlap"
    assert len(_key_ids(during)) == 2
    # The partner who never updated anything still accepts it...
    _verify_as_on_main(old, during[2], during[1]["Hashguard-Timestamp"],
                       during[1]["Hashguard-Signature"])
    # ...and so does one who already knows only the new key.
    assert _check(new, during) == new
    assert trusted.follow(published) == [new]
    assert trusted.not_after == {old: ends, new: None}

    # After: only the new key signs.
    time.sleep(max(0.0, ends + 1.1 - time.time()))
    assert client.get(KEY_PATH).json()["public_key"] == new
    new_case(client, [Q0122])
    after = receiver.wait_for(3)[2]
    assert len(_key_ids(after)) == 1 and _check(trusted, after) == new
    guard = ReplayGuard()  # as docs/partners.md shows it: accepted once, then a replay
    _, headers, body = after
    assert guard.check(trusted, body, headers["Hashguard-Timestamp"],
                       headers["Hashguard-Signature"],
                       signatures=headers["Hashguard-Signatures"]) == new
    with pytest.raises(WebhookRejected, match="replayed"):
        guard.check(trusted, body, headers["Hashguard-Timestamp"], None,
                    signatures=headers["Hashguard-Signatures"])
    with pytest.raises(ValueError, match="bad signature"):  # the old pin no longer verifies
        _verify_as_on_main(old, after[2], after[1]["Hashguard-Timestamp"],
                           after[1]["Hashguard-Signature"])
    # Someone holding the old private key signs a fresh delivery with it: the verifier that
    # followed the rotation refuses it, since the old key's validity ended.
    thief = server_side.WebhookSigner(settings.data_dir, app.state.signing_keys["webhook"])
    assert thief.public_key() == old
    body = b'{"type":"hashguard.change_log","partner":"hooked","latest_seq":99}'
    forged = (0, thief.headers(body), body)
    with pytest.raises(WebhookRejected, match="none by a key trusted"):
        _check(trusted, forged)


def test_a_key_change_not_signed_by_a_trusted_key_is_not_followed(client, settings):
    old = client.get(KEY_PATH).json()["public_key"]
    new = _rotate(settings, 72)
    published = client.get(KEY_PATH).json()
    # Whoever serves the document swaps in its own key, "endorsed" by that same key.
    impostor = Ed25519PrivateKey.generate()
    evil = server_side.b64url(raw_public(impostor))
    change = dict(published["key_changes"][0], new_public_key=evil)
    change["signature"] = server_side.b64url(impostor.sign(partner_side.key_change_bytes(
        partner_side._b64decode(old), raw_public(impostor), change["timestamp"],
        change["not_after"])))
    trusted = TrustedKeys(old)
    assert trusted.follow({"key_changes": [change]}) == []
    # Nor may the served document extend the old key's validity past what the old key signed.
    stretched = dict(published["key_changes"][0], not_after=published["key_changes"][0]
                     ["not_after"] + 10 ** 6)
    assert trusted.follow({"key_changes": [stretched]}) == []
    assert trusted.follow(published) == [new] and trusted.not_after[old] < time.time() + 73 * 3600


def test_a_key_from_the_environment_is_not_rotated_here(database_url, tmp_path):
    seed = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    env = {"HASHGUARD_DATABASE_URL": database_url, "HASHGUARD_DATA_DIR": str(tmp_path),
           "HASHGUARD_WEBHOOK_KEY": seed}
    result = CliRunner().invoke(cli_app(), ["webhooks", "rotate-key", "--yes"], env=env)
    assert result.exit_code == 1 and "HASHGUARD_WEBHOOK_KEY" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow  # two server processes: 30-50 s at load 5-9
def test_two_server_processes_sign_with_the_same_keys(database_url, tmp_path):
    """Two `hashguard serve` processes (separate data dirs, as on two hosts) on one PostgreSQL,
    both started before the rotation: the leader delivers with both keys; when it stops, the
    other takes over and signs with the same two keys, neither restarted."""
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes on one database: PostgreSQL (SQLite is one host)")
    exe = str(Path(sys.executable).with_name("hashguard"))
    base = {**os.environ, "HASHGUARD_DATABASE_URL": database_url, "HASHGUARD_SECRET": "B" * 43,
            "HASHGUARD_LOG_LEVEL": "WARNING"}

    def env(name):
        (tmp_path / name).mkdir(exist_ok=True)
        return {**base, "HASHGUARD_DATA_DIR": str(tmp_path / name)}

    def run(*args):
        return subprocess.run([exe, *args], env=env("cli"), check=True, capture_output=True,
                              text=True).stdout.strip().splitlines()[-1]

    run("partners", "add", "p", "--pathways", "adult")
    receiver = Receiver()
    run("partners", "webhook", "p", receiver.url)
    ports, servers = [], []
    for name in ("a", "b"):  # a first: it takes the delivery lead
        ports.append(_free_port())
        servers.append(subprocess.Popen([exe, "serve", "--port", str(ports[-1])], env=env(name),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_ready(f"http://127.0.0.1:{ports[-1]}")
    a, b = (f"http://127.0.0.1:{p}" for p in ports)
    try:
        old = httpx.get(a + KEY_PATH).json()["public_key"]
        new = run("webhooks", "rotate-key", "--yes")
        assert httpx.get(a + KEY_PATH).json() == httpx.get(b + KEY_PATH).json()
        _submit(a, BRIDGE)
        [from_a] = receiver.wait_for(1)
        servers[0].terminate()
        servers[0].wait(10)
        _submit(b, C_PNG)
        deliveries = receiver.wait_for(2, timeout=30)  # b retries the lead every 5 s
        assert len(deliveries) == 2, "the second process never delivered"
        from_b = deliveries[1]
        assert _key_ids(from_a) == _key_ids(from_b) and len(_key_ids(from_b)) == 2
        for delivery in (from_a, from_b):
            _verify_as_on_main(old, delivery[2], delivery[1]["Hashguard-Timestamp"],
                               delivery[1]["Hashguard-Signature"])
            assert _check(new, delivery) == new
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.wait(10)


def _submit(url, value):
    response = httpx.post(url + "/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "pdq", "value": value, "quality": 100}]})
    assert response.status_code in (200, 201), response.text


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url):
    for _ in range(300):
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready")
