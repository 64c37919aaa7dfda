"""Feedback tags are words from a fixed vocabulary, never free text (issue: hostile partners).

A red team sent a NUL byte and a lone surrogate as tags (500 on PostgreSQL), and right-to-left
override characters and emoji (stored beside a victim's hash, shown in the operator's terminal). Sent over
real HTTP to the app under uvicorn (tests/conftest.py, served_over_http): a server error is the 500
the red team saw, not an exception raised into the test.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from store.models import Feedback
from tests.hashes import BRIDGE
from tests.helpers import bearer, new_case

ODD_TAGS = ["nul\x00byte", "\ud800", "\u202eevil", "\U0001f600", "a" * 64, "free text here"]


def _native(http_client, key, tags):
    # Sent as raw JSON: a lone surrogate cannot be encoded by the client's own encoder.
    body = ('{"feedback": [{"signal_type": "pdq", "value": "%s", "action": "removed", '
            '"tags": %s}]}' % (BRIDGE, "[" + ",".join(_json_string(t) for t in tags) + "]"))
    return http_client.post("/v1/partner/feedback", content=body.encode(),
                       headers={**bearer(key), "Content-Type": "application/json"})


def _json_string(text: str) -> str:
    return '"' + "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else f"\\u{ord(c):04x}"
                         if ord(c) < 0x10000 else
                         "\\u%04x\\u%04x" % (0xD800 + ((ord(c) - 0x10000) >> 10),
                                            0xDC00 + ((ord(c) - 0x10000) & 0x3FF))
                         for c in text) + '"'


@pytest.mark.parametrize("tag", ODD_TAGS, ids=["nul", "lone-surrogate", "rtl-override", "emoji",
                                                "long", "free-text"])
def test_a_tag_outside_the_vocabulary_is_a_clear_422_and_stores_nothing(http_client, app,
                                                                        make_partner, tag):
    key = make_partner("platform", "adult")
    new_case(http_client, [BRIDGE])
    response = _native(http_client, key, [tag])
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    with app.state.database.read() as session:
        assert session.scalars(select(Feedback)).all() == []


def test_vocabulary_tags_are_stored(http_client, app, make_partner):
    key = make_partner("platform", "adult")
    new_case(http_client, [BRIDGE])
    assert _native(http_client, key, ["ncii", "sextortion"]).status_code == 200
    with app.state.database.read() as session:
        assert [f.tags for f in session.scalars(select(Feedback))] == ["ncii,sextortion"]


def test_the_stopncii_surface_keeps_only_vocabulary_tags(http_client, app, make_partner):
    key = make_partner("platform", "adult")
    new_case(http_client, [BRIDGE])
    body = ('{"hashFeedbacks": [{"hashValue": "%s", "feedbackValue": "Blocked", "tags": [%s]}]}'
            % (BRIDGE, ",".join(_json_string(t) for t in ODD_TAGS + ["ncii"])))
    response = http_client.post("/stopncii/v1/SubmitFeedback", content=body.encode(), headers={
        "Ocp-Apim-Subscription-Key": key, "x-functions-key": key,
        "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    with app.state.database.read() as session:
        assert [f.tags for f in session.scalars(select(Feedback))] == ["ncii"]
