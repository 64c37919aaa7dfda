"""POST /v1/cases answers the same through api/submit_shortcut.py as through FastAPI's router.

(tests/test_submit_equivalence.py compares the two on hundreds of generated requests.)
"""
from __future__ import annotations

import asyncio
import json
import logging

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import error_response
from api.submit_shortcut import SubmitShortcut
from tests.asgi_direct import call
from tests.hashes import BRIDGE, Q0122
from tests.helpers import BAD_BODIES, pdq

KEY = "9f3c1b7e5a2d48c6b0e4a7d1c3f5e829"  # random (api/idempotency_keys.py)

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
    ("key too long, body valid", b'{"pathway": "adult", "hashes": [{"signal_type": "pdq", "value": '
     b'"' + BRIDGE.encode() + b'", "quality": 100}]}', {**JSON, "Idempotency-Key": "k" * 256}),
    ("utf-16", '{"pathway": "adult", "hashes": []}'.encode("utf-16"), JSON),
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


def _answer(response):
    return response.status_code, response.headers.get("content-type"), response.json()


@pytest.mark.parametrize("name", BAD_BODIES)
def test_malformed_bodies_get_the_same_answer_with_and_without_the_shortcut(client, routed, name):
    body, _ = BAD_BODIES[name]
    fast, slow = client.post("/v1/cases", json=body), routed.post("/v1/cases", json=body)
    assert 400 <= fast.status_code < 500
    assert _answer(fast) == _answer(slow)  # word for word: the router answers both


@pytest.mark.parametrize("name, content, headers", RAW_REQUESTS, ids=[r[0] for r in RAW_REQUESTS])
def test_raw_requests_get_the_same_answer_with_and_without_the_shortcut(
        client, routed, name, content, headers):
    fast = client.post("/v1/cases", content=content, headers=headers)
    slow = routed.post("/v1/cases", content=content, headers=headers)
    assert 400 <= fast.status_code < 500
    assert _answer(fast) == _answer(slow)


def test_only_well_formed_submits_take_the_shortcut(client, app):
    """Behind the shortcut, the router is swapped for an app that answers 418: well-formed
    submits still create cases (the shortcut answered), anything else reaches the router."""
    client.get("/healthz")  # builds the middleware stack
    layer = app.middleware_stack
    while not isinstance(layer, SubmitShortcut):
        layer = layer.app

    async def router_stand_in(scope, receive, send):
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    layer.app = router_stand_in
    body = {"pathway": "adult", "hashes": [pdq(BRIDGE)]}
    assert client.post("/v1/cases", json=body).status_code == 201
    for broken in ({"pathway": "adult"}, [], {**body, "email": "a@b.c"}):
        assert client.post("/v1/cases", json=broken).status_code == 418
    assert client.post("/v1/cases", json=body,
                       headers={"Idempotency-Key": "k" * 256}).status_code == 418
    utf16 = {"Content-Type": "application/json; charset=utf-16"}
    assert client.post("/v1/cases", content=json.dumps(body).encode("utf-16"),
                       headers=utf16).status_code == 418
    assert client.post("/v1/cases", content=b"", headers=JSON).status_code == 418


@pytest.mark.parametrize("shortcut", [True, False])
def test_handlers_registered_by_status_code_apply_with_and_without_the_shortcut(settings, shortcut):
    """A client gone mid-body is FastAPI's 400; a handler for status 400 answers it either way."""
    application = create_app(settings, run_migrations=False)
    if not shortcut:
        application.user_middleware = [m for m in application.user_middleware
                                       if m.cls is not SubmitShortcut]

    @application.exception_handler(400)
    async def on_bad_request(_request, _exc):
        return error_response(400, "client_left", "the body did not arrive")

    answer = asyncio.run(call(application, "POST", "/v1/cases",
                              [(b"content-type", b"application/json")], [b'{"pathway": '],
                              leaves=True))
    assert (answer.status, answer.body) == (
        400, b'{"error":{"code":"client_left","message":"the body did not arrive"}}')
    application.state.database.dispose()


def test_a_submit_answers_the_same_and_is_logged_under_its_route(client, routed, caplog):
    body = {"pathway": "adult", "hashes": [pdq(BRIDGE), pdq(Q0122)]}
    with caplog.at_level(logging.INFO, logger="hashguard.request"):
        fast = client.post("/v1/cases", json=body, headers={"Idempotency-Key": KEY})
    slow = routed.post("/v1/cases", json=body)
    assert fast.status_code == slow.status_code == 201
    assert fast.json().keys() == slow.json().keys()
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    assert fast.headers["x-content-type-options"] == "nosniff"
    logged = [r.fields for r in caplog.records if r.name == "hashguard.request"]
    assert [(f["route"], f["status"]) for f in logged] == [("/v1/cases", 201)] * 2
    again = client.post("/v1/cases", json=body, headers={"Idempotency-Key": KEY})
    assert again.json()["case_ref"] == fast.json()["case_ref"]  # the header reached the endpoint


def test_other_routes_pass_through(client):
    refused = client.post("/v1/cases/HG-2222-2222/withdraw")
    assert refused.json()["error"]["code"] == "token_required"
    assert client.get("/healthz").json() == {"status": "ok"}
