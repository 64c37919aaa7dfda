"""Issue 21, finding 4: an Idempotency-Key must not be a second, everlasting credential.

Whoever has the image has its hashes; with the key as well, a replay used to return the case's
token from any process, at any time, and with it the power to withdraw the case. Now weak keys
are refused on both submit paths, a replay returns the token only within the replay window, and
the record (key digest, request digest, sealed token) is deleted when the window ends: at the
replay that finds it expired, and by the sweep without any request. On PostgreSQL and SQLite,
over real HTTP to the app under uvicorn (tests/conftest.py, served_over_http).
"""
from __future__ import annotations

import os
import secrets
import time
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from api import idempotency
from api.app import create_app
from api.submit_shortcut import SubmitShortcut
from hashing.signals import Signal
from store import cases as store_cases
from store.db import Database
from store.models import Case
from store.secrets import new_secret_token, verifier
from tests.hashes import BRIDGE, Q0122, pdq
from tests.helpers import auth, shared_set, submit


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(32)  # as the CLI makes them (hashing/client.py)


WINDOW = 1.5  # seconds: the replay window of these apps (the default is 10 minutes)
WEAK_KEYS = ["1", "a" * 64, "12345678901234567890123456789012", "short-key",
             "0123456789abcdef0123456789abcdef", "deadbeef" * 4, "password1" * 4,
             "00000000-0000-4000-8000-000000000000",
             pytest.param(str(uuid.uuid1()), id="uuid1"), str(uuid.uuid5(uuid.NAMESPACE_DNS, "hashguard")),
             pytest.param(str(int(time.time() * 1000)), id="unix-milliseconds"), "k" * 255]


def _app(settings, shortcut: bool = True):
    application = create_app(settings.model_copy(update={"idempotency_window_seconds": WINDOW}),
                             run_migrations=False)
    if not shortcut:
        application.user_middleware = [m for m in application.user_middleware
                                       if m.cls is not SubmitShortcut]
    return application


@pytest.fixture
def windowed(settings, serve_over_http):
    """An app with a short replay window, and its sweeper stopped (the tests run it by hand),
    spoken to over real HTTP (tests/conftest.py, served_over_http)."""
    application = _app(settings)
    with serve_over_http(application, wait_for_match_index=False) as client:
        sweeper = getattr(application.state, "idempotency_sweeper", None)  # (before the fix)
        if sweeper is not None:
            sweeper.stop()
        client.app_state = application.state
        yield client
    application.state.database.dispose()


@pytest.fixture
def windowed_routed(settings, serve_over_http):
    application = _app(settings, shortcut=False)
    with serve_over_http(application, wait_for_match_index=False) as client:
        yield client
    application.state.database.dispose()


def _records(database_url) -> list[tuple]:
    """Every case's (ref, idempotency digest, request digest, sealed token), read directly."""
    db = Database(database_url)
    with db.read() as s:
        rows = s.execute(select(Case.ref, Case.idempotency_digest, Case.idempotency_request,
                                Case.idempotency_sealed_token).order_by(Case.id)).all()
    db.dispose()
    return [tuple(r) for r in rows]


def _record_of(database_url, ref: str) -> tuple:
    [record] = [r[1:] for r in _records(database_url) if r[0] == ref]
    return record


def _after_the_window():
    time.sleep(WINDOW + 0.1)


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_weak_keys_are_refused_on_both_paths(windowed, windowed_routed, database_url, key):
    body = {"pathway": "adult", "hashes": [pdq(BRIDGE)]}
    fast = windowed.post("/v1/cases", json=body, headers={"Idempotency-Key": key})
    slow = windowed_routed.post("/v1/cases", json=body, headers={"Idempotency-Key": key})
    assert fast.status_code == slow.status_code == 422, (fast.text, slow.text)
    assert fast.json() == slow.json()
    assert fast.json()["error"]["code"] == "idempotency_key_weak"
    assert _records(database_url) == []  # no case made


@pytest.mark.parametrize("key", [secrets.token_urlsafe(32), secrets.token_hex(16),
                                 str(uuid.uuid4()), str(uuid.uuid4()).upper(), uuid.uuid4().hex,
                                 secrets.token_urlsafe(16)],
                         ids=["cli", "page", "uuid4", "UUID4", "uuid4-hex", "base64url-128"])
def test_random_keys_replay_within_the_window(windowed, database_url, key):
    first = submit(windowed, [pdq(BRIDGE)], **{"Idempotency-Key": key})
    retry = submit(windowed, [pdq(BRIDGE)], **{"Idempotency-Key": key})
    assert first.status_code == retry.status_code == 201, first.text
    assert retry.json() == first.json()  # same case, same token: a lost answer is recovered
    assert len(_records(database_url)) == 1


def test_after_the_window_a_replay_gets_no_token_and_deletes_the_record(windowed, database_url):
    key = {"Idempotency-Key": new_idempotency_key()}
    first = submit(windowed, [pdq(BRIDGE)], **key).json()
    assert all(_record_of(database_url, first["case_ref"]))  # held during the window
    _after_the_window()
    late = submit(windowed, [pdq(BRIDGE)], **key)  # the sweep is stopped: the replay decides
    assert late.status_code == 201
    assert late.json()["case_ref"] != first["case_ref"]
    assert late.json()["token"] != first["token"]
    # The expired record is gone from the row, not just ignored; the new case holds its own.
    assert _record_of(database_url, first["case_ref"]) == (None, None, None)
    assert all(_record_of(database_url, late.json()["case_ref"]))


def test_a_key_past_its_window_may_come_with_another_request(windowed):
    key = {"Idempotency-Key": new_idempotency_key()}
    submit(windowed, [pdq(BRIDGE)], **key)
    assert submit(windowed, [pdq(Q0122)], **key).json()["error"]["code"] == \
        "idempotency_key_reused"
    _after_the_window()
    assert submit(windowed, [pdq(Q0122)], **key).status_code == 201  # the key was forgotten


def test_the_attacker_with_key_and_hashes_after_the_window_cannot_reach_the_case(
        windowed, database_url):
    """The attack: someone who has the image (so its hashes) learns the victim's key."""
    key = {"Idempotency-Key": new_idempotency_key()}
    victim = submit(windowed, [pdq(BRIDGE), pdq(Q0122)], **key).json()
    _after_the_window()
    stolen = submit(windowed, [pdq(BRIDGE), pdq(Q0122)], **key).json()
    assert stolen["token"] != victim["token"] and stolen["case_ref"] != victim["case_ref"]
    # Neither the new token nor anything else in the answer opens the victim's case.
    for token in (stolen["token"], key["Idempotency-Key"]):
        withdraw = windowed.post(f"/v1/cases/{victim['case_ref']}/withdraw", headers=auth(token))
        assert withdraw.status_code == 404
        assert windowed.get(f"/v1/cases/{victim['case_ref']}",
                            headers=auth(token)).status_code == 404
    status = windowed.get(f"/v1/cases/{victim['case_ref']}", headers=auth(victim["token"]))
    assert status.json()["status"] == "active"
    assert ("pdq", BRIDGE, "adult") in shared_set(database_url)


def test_the_sweep_deletes_records_a_window_old_and_no_younger(windowed, database_url):
    sweeper = windowed.app_state.idempotency_sweeper
    old = submit(windowed, [pdq(BRIDGE)], **{"Idempotency-Key": new_idempotency_key()}).json()
    assert sweeper.sweep() == 0  # marks the cases so far; nothing is a window old yet
    young = submit(windowed, [pdq(Q0122)], **{"Idempotency-Key": new_idempotency_key()}).json()
    _after_the_window()
    assert sweeper.sweep() == 1
    # No request came: the old record is deleted, the one made after the mark stays for now.
    assert _record_of(database_url, old["case_ref"]) == (None, None, None)
    assert all(_record_of(database_url, young["case_ref"]))
    _after_the_window()
    assert sweeper.sweep() == 1
    assert _record_of(database_url, young["case_ref"]) == (None, None, None)


def test_the_running_app_sweeps_by_itself(settings, database_url, serve_over_http):
    application = _app(settings)
    with serve_over_http(application, wait_for_match_index=False) as client:
        case = submit(client, [pdq(BRIDGE)], **{"Idempotency-Key": new_idempotency_key()}).json()
        deadline = time.monotonic() + 3 * WINDOW + 5
        while any(_record_of(database_url, case["case_ref"])):
            assert time.monotonic() < deadline, "the sweeper did not delete the record"
            time.sleep(0.1)
    application.state.database.dispose()


def test_records_sealed_before_the_window_existed_count_as_expired(windowed, database_url):
    """Tokens sealed by the previous version (no time inside) never answer a replay again."""
    state = windowed.app_state
    key, token = new_idempotency_key(), new_secret_token()
    signals = [Signal("pdq", BRIDGE, 100)]
    nonce = os.urandom(12)
    sealing_key = idempotency._sealing_key(state.server_secret, key)
    legacy = nonce + AESGCM(sealing_key).encrypt(nonce, token.encode(), None)
    record = store_cases.IdempotencyRecord(
        idempotency.key_digest(state.server_secret, key),
        idempotency.request_digest(state.server_secret, "adult", signals), legacy)
    old = store_cases.submit(state.database, "adult", signals,
                             verifier(state.server_secret, "case-token", token), record)
    replay = submit(windowed, [pdq(BRIDGE)], **{"Idempotency-Key": key}).json()
    assert replay["token"] != token and replay["case_ref"] != old.ref
    assert _record_of(database_url, old.ref) == (None, None, None)
