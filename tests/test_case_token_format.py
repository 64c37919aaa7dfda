"""A token a person can keep (issue 18): at least 128 bits, grouped, from an alphabet with no
look-alikes, accepted however it is typed; tokens issued in the old form keep working. On
PostgreSQL and SQLite, through the real API."""
from __future__ import annotations

import math
import re
import secrets

import pytest

from hashing.signals import Signal
from store import cases as store_cases
from store.secrets import verifier
from store.token_format import ALPHABET, canonical_case_token
from tests.hashes import BRIDGE, Q0122, pdq
from tests.helpers import auth, submit

GROUPED = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){6}")


def _opens(client, ref: str, token: str) -> bool:
    answer = client.get(f"/v1/cases/{ref}", headers=auth(token))
    assert answer.status_code in (200, 404), answer.text
    return answer.status_code == 200


def test_new_tokens_are_grouped_without_look_alikes_and_strong(client):
    tokens = [submit(client, [pdq(BRIDGE)]).json()["token"] for _ in range(3)]
    for token in tokens:
        assert GROUPED.fullmatch(token), token
        assert not set(token) & set("ILOUilou_")
    assert len(set(tokens)) == 3
    assert not set(ALPHABET) & set("ILOU") and len(ALPHABET) == 32
    assert len(tokens[0].replace("-", "")) * math.log2(len(ALPHABET)) >= 128


def _typings(token: str) -> list[str]:
    bare = token.replace("-", "")
    spaced = " ".join(token.split("-"))
    misread = bare.replace("0", "O").replace("1", "l")  # 0 read as O, 1 as l
    return [token, token.lower(), bare, bare.lower(), spaced, f"  {spaced.lower()}\t",
            misread, " - ".join(token.split("-"))]


def test_a_new_token_opens_the_case_however_it_is_typed(client):
    case = submit(client, [pdq(BRIDGE)]).json()
    ref = case["case_ref"]
    for typed in _typings(case["token"]):
        assert _opens(client, ref, typed), f"{typed!r} did not open the case"
    added = client.post(f"/v1/cases/{ref}/hashes", json={"hashes": [pdq(Q0122)]},
                        headers=auth(case["token"].lower().replace("-", " ")))
    assert added.status_code == 200, added.text


def test_a_token_one_character_off_opens_nothing(client):
    case = submit(client, [pdq(BRIDGE)]).json()
    token = case["token"]
    other = "2" if token[0] != "2" else "3"
    for wrong in (other + token[1:], token[:-1], token + "2", token.replace("-", "") + "-2",
                  "wrong-" + token):
        assert not _opens(client, case["case_ref"], wrong), wrong


def _legacy_case(app) -> tuple[str, str]:
    """A case made the way the old code made one: a 43-character base64url token (one with a
    '-' and both cases in it, the characters normalisation would otherwise touch), its verifier
    of the token exactly as shown."""
    while True:
        token = secrets.token_urlsafe(32)
        if "-" in token and token != token.upper() and token != token.lower():
            break
    state = app.state
    created = store_cases.submit(state.database, "adult", [Signal("pdq", BRIDGE, 100)],
                                 verifier(state.server_secret, "case-token", token))
    return created.ref, token


def test_tokens_issued_in_the_old_form_keep_working(app, client):
    ref, token = _legacy_case(app)
    assert _opens(client, ref, token)
    assert _opens(client, ref, f"  {token} ")  # surrounding spaces, as before
    # still exact: the old form was case-sensitive, and its '-' is part of it
    assert not _opens(client, ref, token.swapcase())
    assert not _opens(client, ref, token.replace("-", ""))
    added = client.post(f"/v1/cases/{ref}/hashes", json={"hashes": [pdq(Q0122)]},
                        headers=auth(token))
    assert added.status_code == 200, added.text
    withdrawn = client.post(f"/v1/cases/{ref}/withdraw", headers=auth(token))
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"


@pytest.mark.parametrize("text", ["", "   ", "x" * 5000, "\u0000", "🙂" * 30, "-" * 60,
                                  "HG-AAAA-AAAA", "é" * 28, "Ｏ" * 28])
def test_any_text_is_checked_and_refused_calmly(client, text):
    case = submit(client, [pdq(BRIDGE)]).json()
    header = b"Bearer " + text.encode()  # UTF-8 bytes, as a careless client would send them
    answer = client.get(f"/v1/cases/{case['case_ref']}", headers={"Authorization": header})
    assert answer.status_code in (401, 404), answer.text  # 401: no token at all


def test_canonical_form_is_idempotent_and_leaves_legacy_tokens_alone():
    legacy = "mKZ_H2PpEIzG8vG-abcdefghijklmnopqrstuvwxyz0"
    assert len(legacy) == 43 and canonical_case_token(legacy) == legacy
    grouped = "7KQ2-M9XD-0000-1111-ABCD-EFGH-JKMN"
    bare = grouped.replace("-", "")
    assert canonical_case_token(grouped) == bare == canonical_case_token(bare)
    assert canonical_case_token("7kq2 m9xd oooo iiii abcd efgh jkmn") == bare
