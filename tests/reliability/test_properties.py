"""Property-based tests (Hypothesis): hash parsing, pull cursors, and a model of the shared set.

- parsing: the canonical form is idempotent and case-insensitive; wrong lengths, non-hex and
  degenerate values are refused; nothing but InvalidHash ever escapes, whatever the input;
- cursors: every cursor the API hands out parses back to its position; nothing but the API's
  ServiceError (400) ever escapes, whatever the input;
- model: random submits, additions and withdrawals, interleaved with partner pulls of random
  page sizes, always leave each partner holding exactly the server's shared set (SQLite and
  PostgreSQL).
"""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from api.settings import Settings
from hashing import signals
from hashing.signals import InvalidHash
from partners import admin
from partners.errors import ServiceError
from partners.feed import format_cursor, parse_cursor
from store.models import Hash, SharedHash
from tests.helpers import bearer, replay
from tests.reliability.asgi import send_concurrently
from tests.reliability.server import random_pdq

HEX_LENGTHS = {"pdq": 64, "video_md5": 32, "video_sha256": 64}
HEX = "0123456789abcdefABCDEF"
FAST = hypothesis_settings(max_examples=300, deadline=None, database=None)


def _is_degenerate(signal_type: str, value: str) -> bool:
    value = value.lower()
    if signal_type == "pdq":
        return not 16 <= int(value, 16).bit_count() <= 240
    return len(set(value)) == 1


def hex_values(signal_type: str):
    return st.text(HEX, min_size=HEX_LENGTHS[signal_type], max_size=HEX_LENGTHS[signal_type])


signal_types = st.sampled_from(sorted(HEX_LENGTHS))


# ------------------------------------------------------------------------- hash parsing
@FAST
@given(st.data())
def test_canonical_form_is_idempotent_and_case_insensitive(data):
    signal_type = data.draw(signal_types)
    value = data.draw(hex_values(signal_type).filter(lambda v: not _is_degenerate(signal_type, v)))
    canonical = signals.parse(signal_type, value)
    assert canonical == value.lower()
    assert signals.parse(signal_type, canonical) == canonical
    assert signals.parse(signal_type, value.upper()) == canonical
    assert signals.parse(signal_type, f" {value}\n") == canonical  # surrounding blanks only


@FAST
@given(st.data())
def test_wrong_lengths_are_refused(data):
    signal_type = data.draw(signal_types)
    length = data.draw(st.integers(0, 200).filter(lambda n: n != HEX_LENGTHS[signal_type]))
    with pytest.raises(InvalidHash) as refused:
        signals.parse(signal_type, data.draw(st.text(HEX, min_size=length, max_size=length)))
    assert refused.value.code.endswith("bad_format")


@FAST
@given(st.data())
def test_a_non_hex_character_is_refused(data):
    signal_type = data.draw(signal_types)
    value = data.draw(hex_values(signal_type))
    intruder = data.draw(st.characters().filter(lambda c: c not in HEX and not c.isspace()))
    position = data.draw(st.integers(0, len(value) - 1))
    with pytest.raises(InvalidHash):
        signals.parse(signal_type, value[:position] + intruder + value[position + 1:])


@FAST
@given(st.data())
def test_degenerate_values_are_refused(data):
    signal_type = data.draw(signal_types)
    if signal_type == "pdq":  # fewer than 16 bits set, or fewer than 16 clear
        bits = data.draw(st.sets(st.integers(0, 255), max_size=15))
        number = sum(1 << b for b in bits)
        if data.draw(st.booleans()):
            number ^= (1 << 256) - 1
        value = f"{number:064x}"
    else:
        value = data.draw(st.sampled_from(HEX)) * HEX_LENGTHS[signal_type]
    assert _is_degenerate(signal_type, value)
    with pytest.raises(InvalidHash) as refused:
        signals.parse(signal_type, value)
    assert refused.value.code.endswith("degenerate")


anything = st.one_of(
    st.text(), st.text(HEX + " \t\n\u00a0\u2003", max_size=80), st.none(), st.integers(),
    st.binary(max_size=80), st.lists(st.text(max_size=3), max_size=3), st.floats())


@FAST
@given(signal_type=st.one_of(st.sampled_from(sorted(signals.SIGNAL_TYPES)), st.text(max_size=20)),
       value=anything)
def test_parsing_never_raises_anything_but_invalid_hash(signal_type, value):
    try:
        canonical = signals.parse(signal_type, value)
    except InvalidHash as refused:
        assert refused.code and refused.message
    else:
        assert isinstance(canonical, str) and signals.parse(signal_type, canonical) == canonical


# ----------------------------------------------------------------------------- cursors
@FAST
@given(st.integers(0, 10**18 - 1))
def test_every_cursor_the_api_hands_out_parses_back(position):
    for pathways in (["adult"], ["adult", "under18_at_capture"]):
        parsed = parse_cursor(format_cursor(position, pathways))
        assert parsed.value == position
        assert parsed.in_pathway_numbering == (len(pathways) == 1)
    assert parse_cursor("").value == 0 and parse_cursor(None).value == 0


@FAST
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_an_ascii_cursor_is_a_position_or_a_400(cursor):
    try:
        position = parse_cursor(cursor)
    except ServiceError as refused:
        assert refused.status == 400 and refused.code == "invalid_cursor"
        digits = cursor.removeprefix("p")
        assert not (digits.isdigit() and len(digits) <= 18)
    else:
        digits = cursor.removeprefix("p")
        assert position.value == (int(digits) if digits else 0)
        assert position.in_pathway_numbering == cursor.startswith("p")



@FAST
@given(st.one_of(st.text(max_size=40), st.none()))
@example("²")
def test_parse_cursor_never_raises_anything_but_a_400(cursor):
    try:
        parse_cursor(cursor)
    except ServiceError as refused:
        assert refused.status == 400


@FAST
@given(st.text(max_size=40))
@example("hgp_²_secret")
def test_split_key_never_raises(presented):
    parts = admin.split_key(presented)
    assert parts is None or (parts[0] >= 0 and parts[1])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("request_", [
    ("/v1/partner/hashes", {"cursor": "²"}, True),
    ("/v1/partner/hashes/export", {"cursor": "²"}, True),
    ("/stopncii/v1/FetchHashes", {"nextPageToken": "²"}, True),
    ("/v1/partner/hashes", {}, False),  # no valid key at all: the key id is the '²'
], ids=["pull-cursor", "export-cursor", "stopncii-token", "unauthenticated-key-id"])
def test_unicode_digits_get_a_4xx_not_a_500(app, make_partner, request_):
    path, params, with_key = request_
    key = make_partner("digits")
    # Raw header bytes: the byte 0xB2 reaches the app as '²' (headers are latin-1).
    headers = bearer(key) if with_key else {"Authorization": b"Bearer hgp_\xb2_secret"}
    [response] = send_concurrently(app, [("GET", path, {"params": params, "headers": headers})])
    assert response.status_code in (400, 401), response.status_code


# ------------------------------------------------------------------------- the model
@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    # Many token lookups and pulls in a few seconds, from one address: limits opened (they have
    # their own tests); a 429 here would only desynchronise the model.
    return Settings(database_url=database_url, data_dir=tmp_path,
                    case_writes_per_hour_per_client=0, token_lookups_per_minute_per_client=0,
                    token_lookups_per_minute_per_case=10**6, token_lookups_per_second_overall=10**6,
                    partner_requests_per_second=10**6,
                    partner_key_failures_per_minute_per_client=0)


POOL = [random_pdq(random.Random(n)) for n in range(6)]  # few values: cases overlap a lot
PATHWAYS = ["adult", "under18_at_capture"]
PARTNERS = {"both": PATHWAYS, "adult": ["adult"]}
values_from_pool = st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True)
operations = st.lists(st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(PATHWAYS), values_from_pool),
    st.tuples(st.just("add"), st.integers(0, 50), values_from_pool),
    st.tuples(st.just("withdraw"), st.integers(0, 50)),
    st.tuples(st.just("pull"), st.sampled_from(sorted(PARTNERS)), st.integers(1, 6)),
), max_size=25)


class Partner:
    """A partner as its job would run: a cursor, pages of a random size, a replayed set."""

    def __init__(self, client, key: str):
        self.client, self.key = client, key
        self.cursor, self.entries = "", []

    def pull(self, limit: int) -> bool:
        response = self.client.get("/v1/partner/hashes", headers=bearer(self.key),
                                   params={"cursor": self.cursor, "limit": limit})
        assert response.status_code == 200, response.text
        page = response.json()
        if page["entries"]:
            assert int(self.cursor.removeprefix("p") or 0) < page["entries"][0]["seq"]
        self.entries += page["entries"]
        self.cursor = page["next_cursor"]
        return page["has_more"]

    def drain(self) -> set:
        while self.pull(1000):
            pass
        seqs = [e["seq"] for e in self.entries]
        assert seqs == sorted(set(seqs)), "an entry came twice or out of order"
        return {v for _, v in replay(self.entries)}


def _server_shared(app, pathways) -> set:
    with app.state.database.read() as session:
        return set(session.scalars(select(Hash.value).join(SharedHash, SharedHash.hash_id == Hash.id)
                                   .where(SharedHash.pathway.in_(pathways))))


@pytest.fixture
def partner_keys(make_partner):
    return {name: make_partner(f"model-{name}", ",".join(p)) for name, p in PARTNERS.items()}


@hypothesis_settings(max_examples=15, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
@given(ops=operations)
def test_partners_always_end_with_the_servers_shared_set(client, app, partner_keys, ops):
    # Each example starts from an empty shared set (the previous one withdrew everything) and
    # its partners sync from the beginning of the log, through every earlier example's entries.
    partners = {name: Partner(client, key) for name, key in partner_keys.items()}
    cases: list[dict] = []

    def expected(pathways) -> set:
        return {v for c in cases if c["active"] and c["pathway"] in pathways for v in c["values"]}

    for op in ops:
        if op[0] == "submit":
            _, pathway, values = op
            response = client.post("/v1/cases", json={"pathway": pathway, "hashes": [
                {"signal_type": "pdq", "value": v, "quality": 100} for v in values]})
            assert response.status_code == 201, response.text
            created = response.json()
            cases.append({"ref": created["case_ref"], "token": created["token"],
                          "pathway": pathway, "values": set(values), "active": True})
        elif op[0] == "add" and cases:
            case = cases[op[1] % len(cases)]
            response = client.post(f"/v1/cases/{case['ref']}/hashes", headers=bearer(case["token"]),
                                   json={"hashes": [{"signal_type": "pdq", "value": v, "quality": 100}
                                                    for v in op[2]]})
            if case["active"]:
                assert response.status_code == 200, response.text
                case["values"] |= set(op[2])
                assert response.json()["hash_count"] == len(case["values"])
            else:
                assert response.status_code == 409, response.text
        elif op[0] == "withdraw" and cases:
            case = cases[op[1] % len(cases)]
            response = client.post(f"/v1/cases/{case['ref']}/withdraw", headers=bearer(case["token"]))
            assert response.status_code == 200 and response.json()["hashes"] == [], response.text
            case["active"] = False
        elif op[0] == "pull":
            partners[op[1]].pull(op[2])

    for name, partner in partners.items():
        held = partner.drain()
        assert held == expected(PARTNERS[name]) == _server_shared(app, PARTNERS[name]), name

    for case in cases:  # leave an empty shared set for the next example
        if case["active"]:
            client.post(f"/v1/cases/{case['ref']}/withdraw", headers=bearer(case["token"]))
            case["active"] = False
    for name, partner in partners.items():
        assert partner.drain() == set() == _server_shared(app, PARTNERS[name]), name
