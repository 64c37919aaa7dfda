"""The anonymous case API, on PostgreSQL and SQLite: the promises a person relies on."""
from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select

from store.db import Database
from store.models import Case, CaseHash
from tests.hashes import BRIDGE, C_PNG, MD5, Q0122, Q0291, pdq
from tests.helpers import (
    BAD_BODIES,
    auth,
    change_log,
    database_dump,
    shared_set,
    submit,
)


def test_submit_returns_reference_and_a_strong_token_once(client, database_url):
    response = submit(client, [pdq(BRIDGE), {"signal_type": "video_md5", "value": MD5}])
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"HG-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}", body["case_ref"])
    # 140 bits in 7 groups of 4 (store/token_format.py; tests/test_case_token_format.py)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){6}", body["token"])
    assert body["status"] == "active" and body["hash_count"] == 2
    assert shared_set(database_url) == {("pdq", BRIDGE, "adult"), ("video_md5", MD5, "adult")}


def test_status_shows_hashes_and_zero_reports_before_partners_act(client):
    body = submit(client, [pdq(BRIDGE)], pathway="under18_at_capture").json()
    status = client.get(f"/v1/cases/{body['case_ref']}", headers=auth(body["token"]))
    assert status.status_code == 200
    view = status.json()
    assert view["status"] == "active" and view["pathway"] == "under18_at_capture"
    assert [h["value"] for h in view["hashes"]] == [BRIDGE]
    assert view["hashes"][0]["reports"] == {"pulled": 0, "matched": 0, "removed": 0,
                                            "blocked": 0, "not_violating": 0}


def test_case_times_are_coarsened_to_the_hour(client, database_url):
    body = submit(client, [pdq(BRIDGE)]).json()
    view = client.get(f"/v1/cases/{body['case_ref']}", headers=auth(body["token"])).json()
    assert re.search(r"T\d\d:00:00", view["created"])
    db = Database(database_url)
    with db.transaction() as s:
        case = s.scalars(select(Case)).one()
        assert (case.created_at.minute, case.created_at.second, case.created_at.microsecond) == (0, 0, 0)
    db.dispose()


def test_wrong_token_and_unknown_case_are_indistinguishable(client):
    body = submit(client, [pdq(BRIDGE)]).json()
    ref, token = body["case_ref"], body["token"]
    wrong = client.get(f"/v1/cases/{ref}", headers=auth(token[:-2] + "xx"))
    other_ref = ref[:-1] + ("A" if ref[-1] != "A" else "B")
    unknown = client.get(f"/v1/cases/{other_ref}", headers=auth(token))
    malformed = client.get("/v1/cases/not-a-ref", headers=auth(token))
    assert wrong.status_code == unknown.status_code == malformed.status_code == 404
    assert wrong.json() == unknown.json() == malformed.json()
    assert client.get(f"/v1/cases/{ref}").json()["error"]["code"] == "token_required"


def test_token_is_never_stored_or_logged_in_clear(client, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    body = submit(client, [pdq(BRIDGE)]).json()
    client.get(f"/v1/cases/{body['case_ref']}", headers=auth(body["token"]))
    dump = database_dump(database_url)
    assert body["token"] not in dump and body["case_ref"] in dump  # the dump is real
    assert body["token"] not in caplog.text


def test_withdraw_removes_hashes_but_keeps_one_another_active_case_holds(client, database_url):
    first = submit(client, [pdq(BRIDGE), pdq(C_PNG)]).json()
    second = submit(client, [pdq(C_PNG)]).json()
    response = client.post(f"/v1/cases/{first['case_ref']}/withdraw", headers=auth(first["token"]))
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    assert response.json()["hashes"] == []
    assert shared_set(database_url) == {("pdq", C_PNG, "adult")}
    assert change_log(database_url) == [("add", BRIDGE), ("add", C_PNG), ("remove", BRIDGE)]
    # Withdrawing again changes nothing; the status still answers with the token.
    again = client.post(f"/v1/cases/{first['case_ref']}/withdraw", headers=auth(first["token"]))
    assert again.status_code == 200 and len(change_log(database_url)) == 3
    status = client.get(f"/v1/cases/{first['case_ref']}", headers=auth(first["token"]))
    assert status.json()["status"] == "withdrawn"
    # The last holder withdraws: now it goes too.
    client.post(f"/v1/cases/{second['case_ref']}/withdraw", headers=auth(second["token"]))
    assert shared_set(database_url) == set()
    assert change_log(database_url)[-1] == ("remove", C_PNG)


def test_withdrawal_leaves_no_link_between_case_and_hashes(client, database_url):
    body = submit(client, [pdq(BRIDGE)]).json()
    client.post(f"/v1/cases/{body['case_ref']}/withdraw", headers=auth(body["token"]))
    db = Database(database_url)
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(CaseHash)) == 0
        case = s.scalars(select(Case)).one()
        assert case.idempotency_digest is None and case.idempotency_sealed_token is None
    db.dispose()


def test_same_hash_in_two_pathways_is_shared_in_each(client, database_url):
    submit(client, [pdq(BRIDGE)], pathway="adult")
    submit(client, [pdq(BRIDGE)], pathway="under18_at_capture")
    assert shared_set(database_url) == {("pdq", BRIDGE, "adult"),
                                        ("pdq", BRIDGE, "under18_at_capture")}
    assert change_log(database_url) == [("add", BRIDGE), ("add", BRIDGE)]


def test_duplicate_submit_with_same_idempotency_key_makes_one_case(client, database_url):
    key = {"Idempotency-Key": "3f1b6c1e-5d6a-4d0e-9f53-0d8b9f3b7a11"}
    first = submit(client, [pdq(BRIDGE)], **key)
    retry = submit(client, [pdq(BRIDGE)], **key)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()  # same case, same token
    reused = submit(client, [pdq(C_PNG)], **key)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    db = Database(database_url)
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1
    db.dispose()


def test_add_hashes_to_a_case(client, database_url):
    body = submit(client, [pdq(BRIDGE)]).json()
    added = client.post(f"/v1/cases/{body['case_ref']}/hashes", headers=auth(body["token"]),
                        json={"hashes": [pdq(Q0122), pdq(BRIDGE)]})
    assert added.status_code == 200 and added.json() == {
        "case_ref": body["case_ref"], "added": 1, "hash_count": 2}
    assert ("pdq", Q0122, "adult") in shared_set(database_url)
    client.post(f"/v1/cases/{body['case_ref']}/withdraw", headers=auth(body["token"]))
    late = client.post(f"/v1/cases/{body['case_ref']}/hashes", headers=auth(body["token"]),
                       json={"hashes": [pdq(Q0291)]})
    assert late.status_code == 409 and late.json()["error"]["code"] == "case_withdrawn"


@pytest.mark.parametrize("name", BAD_BODIES)
def test_malformed_input_gets_a_4xx_with_a_code_and_stores_nothing(client, database_url, name):
    body, code = BAD_BODIES[name]
    response = client.post("/v1/cases", json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["message"] and (code is None or error["code"] == code), error
    assert shared_set(database_url) == set()


def test_invalid_json_is_a_4xx(client):
    response = client.post("/v1/cases", content=b"{not json",
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(5000)


@pytest.mark.parametrize("content_type", [
    "image/jpeg", "video/mp4", "multipart/form-data; boundary=x", "application/octet-stream",
    "text/plain", "application/x-www-form-urlencoded",
])
def test_media_bodies_are_refused_before_parsing(client, content_type):
    for path in ("/v1/cases", "/v1/cases/HG-2222-2222/hashes", "/v1/cases/HG-2222-2222/withdraw"):
        response = client.post(path, content=JPEG, headers={"Content-Type": content_type})
        assert response.status_code == 415, (path, response.status_code)
        assert response.json()["error"]["code"] == "unsupported_media_type"


def test_oversized_json_body_is_refused(client, settings):
    padding = "0" * (settings.max_body_bytes + 1)
    response = client.post("/v1/cases", content=padding,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def test_token_guessing_is_rate_limited_per_case(client, settings):
    body = submit(client, [pdq(BRIDGE)]).json()
    answers = [client.get(f"/v1/cases/{body['case_ref']}", headers=auth("guess")).status_code
               for _ in range(settings.token_lookups_per_minute_per_case + 2)]
    assert answers[0] == 404 and answers[-1] == 429


def test_security_headers_on_every_response(client):
    for response in (client.get("/healthz"), client.get("/v1/cases/HG-2222-2222"),
                     client.post("/v1/cases", content=JPEG, headers={"Content-Type": "image/jpeg"})):
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
