"""The body guard's refusals are the same answer on every POST route, however the body arrives.

Every route, the routed ones included: a chunked body over the cap used to reach FastAPI's body
reading as an exception, which FastAPI turns into a 400 (rendered `422 invalid_request`), so
only the submit shortcut answered 413.
"""
from __future__ import annotations

import asyncio
import json

import pytest

from api.app import create_app
from api.submit_shortcut import SubmitShortcut
from tests.asgi_direct import call, chunked

LIMIT = 2048
JSON = (b"content-type", b"application/json")
POST_ROUTES = ["/v1/cases", "/v1/cases/HG-2222-2222/hashes", "/v1/cases/HG-2222-2222/withdraw",
               "/v1/partner/feedback", "/v1/partner/match", "/stopncii/v1/SubmitFeedback"]
READING_ROUTES = [path for path in POST_ROUTES if not path.endswith("/withdraw")]  # have bodies
TOO_LARGE = {"error": {"code": "body_too_large",
                       "message": f"request bodies are limited to {LIMIT} bytes"}}


def _app(settings, shortcut: bool):
    application = create_app(settings.model_copy(update={"max_body_bytes": LIMIT}),
                             run_migrations=False)
    if not shortcut:
        application.user_middleware = [m for m in application.user_middleware
                                       if m.cls is not SubmitShortcut]
    return application


@pytest.fixture(params=["shortcut", "router"])
def guarded(request, settings):
    application = _app(settings, request.param == "shortcut")
    yield lambda *args, **kwargs: asyncio.run(call(application, *args, **kwargs))
    application.state.database.dispose()


def _body(answer):
    assert answer.header(b"content-type") == [b"application/json"], answer.headers
    return json.loads(answer.body)


def _oversized() -> bytes:
    return json.dumps({"pathway": "adult", "hashes": [{"signal_type": "pdq",
                                                       "value": "a" * (2 * LIMIT)}]}).encode()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", READING_ROUTES)
def test_a_chunked_body_over_the_limit_gets_413_on_every_post_route(guarded, path):
    body = _oversized()
    streamed = guarded("POST", path, [JSON, (b"transfer-encoding", b"chunked")],
                       chunked(body, 512))
    declared = guarded("POST", path, [JSON, (b"content-length", str(len(body)).encode())],
                       [body])
    assert (streamed.status, _body(streamed)) == (413, TOO_LARGE)
    assert (declared.status, _body(declared)) == (413, TOO_LARGE)
    assert streamed.header(b"x-content-type-options") == [b"nosniff"]  # still inside the headers
    # In one piece, without a length, the same.
    whole = guarded("POST", path, [JSON], [body])
    assert (whole.status, _body(whole)) == (413, TOO_LARGE)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize("types", [(b"image/jpeg", b"application/json"),
                                   (b"application/json", b"image/jpeg"),
                                   (b"application/json", b"multipart/form-data; boundary=x")])
def test_every_content_type_header_must_be_json(guarded, path, types):
    body = b"\xff\xd8\xff\xe0" + bytes(100)
    answer = guarded("POST", path, [(b"content-type", kind) for kind in types]
                     + [(b"content-length", str(len(body)).encode())], [body])
    assert answer.status == 415 and _body(answer)["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", READING_ROUTES)
def test_a_body_without_content_type_is_refused_whichever_way_it_arrives(guarded, path):
    body = json.dumps({"pathway": "adult", "hashes": []}).encode()
    declared = guarded("POST", path, [(b"content-length", str(len(body)).encode())], [body])
    streamed = guarded("POST", path, [(b"transfer-encoding", b"chunked")], chunked(body, 7))
    for answer in (declared, streamed):
        assert answer.status == 415, answer
        assert _body(answer) == {"error": {"code": "unsupported_media_type",
                                           "message": "send the body as application/json"}}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_empty_post_needs_no_content_type(guarded):
    for headers in ([], [(b"content-length", b"0")]):
        answer = guarded("POST", "/v1/cases/HG-2222-2222/withdraw", headers, [b""])
        assert answer.status == 401 and _body(answer)["error"]["code"] == "token_required"
