"""POST /v1/cases answers the same through api/submit_shortcut.py as through FastAPI's router."""
from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.submit_shortcut import SubmitShortcut
from tests.hashes import BRIDGE, Q0122
from tests.test_cases_api import BAD_BODIES, pdq

JSON = {"Content-Type": "application/json"}
# (name, body bytes, headers): what a confused or hostile client sends besides BAD_BODIES.
RAW_REQUESTS = [
    ("invalid json", b"{not json", JSON),
    ("empty body", b"", JSON),
    ("not utf-8", b'{"pathway": "\xff\xfe"}', JSON),
    ("a string", b'"adult"', JSON),
    ("null", b"null", JSON),
    ("no content type", b'{"pathway": "adult", "hashes": []}', {}),
    ("json with charset", b'{"pathway": "adult"}',
     {"Content-Type": "application/json; charset=utf-8"}),
    ("key too long", b'{"pathway": "adult"}', {**JSON, "Idempotency-Key": "k" * 256}),
    ("media", b"\xff\xd8\xff\xe0" + bytes(100), {"Content-Type": "image/jpeg"}),
]


@pytest.fixture
def routed(settings):
    """The same app with the shortcut taken out: every submit goes through FastAPI's router."""
    application = create_app(settings, run_migrations=False)
    application.user_middleware = [m for m in application.user_middleware
                                   if m.cls is not SubmitShortcut]
    with TestClient(application) as client:
        yield client
    application.state.database.dispose()


def _error(response):
    return response.status_code, response.json()["error"]["code"]


@pytest.mark.parametrize("name", BAD_BODIES)
def test_malformed_bodies_get_the_same_answer_with_and_without_the_shortcut(client, routed, name):
    body, _ = BAD_BODIES[name]
    fast, slow = client.post("/v1/cases", json=body), routed.post("/v1/cases", json=body)
    assert _error(fast) == _error(slow)
    if _error(fast)[1] != "invalid_request":  # our own checks: the very same answer
        assert fast.json() == slow.json()
    # (pydantic words a few type errors differently when it parses the JSON itself, e.g. "Input
    # should be an object" for a list: same code, same field.)


@pytest.mark.parametrize("name, content, headers", RAW_REQUESTS, ids=[r[0] for r in RAW_REQUESTS])
def test_raw_requests_get_the_same_status_and_code_with_and_without_the_shortcut(
        client, routed, name, content, headers):
    fast = client.post("/v1/cases", content=content, headers=headers)
    slow = routed.post("/v1/cases", content=content, headers=headers)
    assert 400 <= fast.status_code < 500
    assert _error(fast) == _error(slow)


def test_a_submit_answers_the_same_and_is_logged_under_its_route(client, routed, caplog):
    body = {"pathway": "adult", "hashes": [pdq(BRIDGE), pdq(Q0122)]}
    with caplog.at_level(logging.INFO, logger="hashguard.request"):
        fast = client.post("/v1/cases", json=body, headers={"Idempotency-Key": "retry-1"})
    slow = routed.post("/v1/cases", json=body)
    assert fast.status_code == slow.status_code == 201
    assert fast.json().keys() == slow.json().keys()
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    assert fast.headers["x-content-type-options"] == "nosniff"
    logged = [r.fields for r in caplog.records if r.name == "hashguard.request"]
    assert [(f["route"], f["status"]) for f in logged] == [("/v1/cases", 201)] * 2
    again = client.post("/v1/cases", json=body, headers={"Idempotency-Key": "retry-1"})
    assert again.json()["case_ref"] == fast.json()["case_ref"]  # the header reached the endpoint


def test_other_routes_pass_through(client):
    refused = client.post("/v1/cases/HG-2222-2222/withdraw")
    assert refused.json()["error"]["code"] == "token_required"
    assert client.get("/healthz").json() == {"status": "ok"}
