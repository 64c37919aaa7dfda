"""POST /v1/cases gives the very same answers through the submit shortcut as through the router.

Hundreds of generated requests (valid and broken JSON, other encodings, wrong, missing and
duplicated Content-Type and Idempotency-Key headers, bad fields, chunked, oversized and
abandoned bodies) go to two apps that differ only in the shortcut: one with it, one without.
Each app has its own database and both get the same requests in the same order, so their
idempotency state stays the same; answers are compared whole (status, every header but the
length, body), with each case reference and token replaced by its order of first appearance in
that app (a replay must name the same case in both).
"""
from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from api.app import create_app
from api.submit_shortcut import SubmitShortcut
from store import migrate
from tests.asgi_direct import Answer, call, chunked
from tests.hashes import BRIDGE, Q0122, Q0291

LIMIT = 4096
EXAMPLES = 520
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# --- what the generated requests are made of ---------------------------------------------------

_pdq = st.fixed_dictionaries({"signal_type": st.just("pdq"),
                              "value": st.sampled_from([BRIDGE, Q0122, Q0291]),
                              "quality": st.sampled_from([100, 90, 100.0, "95"])})
_odd_hash = st.fixed_dictionaries(
    {"signal_type": st.sampled_from(["pdq", "video_md5", "sha1", "", "x" * 40]),
     "value": st.one_of(st.sampled_from([BRIDGE, "0" * 64, "zz", "AAAA", "d41d8cd98f00b204e98"
                                         "00998ecf8427e", ""]), st.text(max_size=8))},
    optional={"quality": st.one_of(st.integers(-2, 102), st.floats(allow_nan=True),
                                   st.booleans(), st.none(), st.sampled_from(["100", "1_0", " 7"])),
              "email": st.just("a@b.c")})
_pathway = st.one_of(st.sampled_from(["adult", "under18_at_capture"]),
                     st.sampled_from(["martian", "", "ADULT"]), st.integers(), st.none())
_valid = st.fixed_dictionaries({"pathway": st.sampled_from(["adult", "under18_at_capture"]),
                                "hashes": st.lists(_pdq, min_size=1, max_size=3)})
_refused_hash = st.fixed_dictionaries(  # well-formed, but validate_hashes refuses it
    {"signal_type": st.sampled_from(["pdq", "video_md5", "sha1"]),
     "value": st.sampled_from(["0" * 64, "f" * 64, "zz", "AAAA", BRIDGE]),
     "quality": st.sampled_from([100, 10])})
_checked = st.fixed_dictionaries({"pathway": st.just("adult"),
                                  "hashes": st.lists(st.one_of(_pdq, _refused_hash), min_size=1,
                                                     max_size=3)})
_odd = st.fixed_dictionaries({}, optional={"pathway": _pathway,
                                           "hashes": st.one_of(st.lists(st.one_of(_pdq, _odd_hash),
                                                                        max_size=3),
                                                               st.text(max_size=3), st.none()),
                                           "extra": st.integers()})
_other = st.one_of(st.lists(st.integers(), max_size=2), st.none(), st.text(max_size=5),
                   st.integers())


def _weighted(draw, *choices):
    """One of (weight, value) pairs (one_of draws its branches about evenly, whatever they are)."""
    pick = draw(st.integers(0, sum(weight for weight, _ in choices) - 1))
    for weight, value in choices:
        if pick < weight:
            return value
        pick -= weight


@st.composite
def _encoded(draw) -> bytes:
    document = draw(_weighted(draw, (6, _valid), (2, _checked), (3, _odd), (1, _other)))
    text = json.dumps(document, ensure_ascii=draw(st.booleans()),
                      indent=draw(st.sampled_from([None, None, 1])))
    how = _weighted(draw, (12, "utf-8"), (1, "utf-16"), (1, "utf-8-sig"), (1, "truncated"),
                    (1, "mangled"), (1, "surrogate"), (5, "padded"), (1, "oversized"))
    if how == "truncated":
        return text.encode()[:draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "mangled":
        raw = bytearray(text.encode())
        raw.insert(draw(st.integers(0, len(raw))), draw(st.sampled_from(b"{}[],:\"\\\x00\x01 x")))
        return bytes(raw)
    if how == "surrogate":  # an escaped lone surrogate: Python's json reads it, pydantic's not
        return text.replace('"pdq"', '"pdq\\ud800"').encode()
    if how == "padded":  # to just under or just over the limit, with whitespace
        return text.encode() + b" " * (LIMIT - len(text.encode()) + draw(st.integers(-3, 3)))
    if how == "oversized":  # well past the limit: the body guard's 413 on every path
        return text.encode() + b" " * (LIMIT - len(text.encode()) + draw(st.integers(1, LIMIT)))
    return text.encode(how)


@st.composite
def _body(draw) -> bytes:
    return draw(_weighted(draw, (12, _encoded()), (1, st.binary(max_size=40)), (1, st.just(b"")),
                          (1, st.sampled_from([b"{not json", b'{"pathway": "\xff\xfe"}']))))


_JSON = [b"application/json"]
_some_types = (
    st.lists(st.sampled_from([b"application/json", b"application/json; charset=utf-8",
                              b"Application/JSON", b"application/json; charset=utf-16",
                              b"image/jpeg", b"text/plain", b"application/x+json", b""]), max_size=2))
# The first three are random (so retries replay); the others are empty, weak (refused with
# idempotency_key_weak inside the shared endpoint), at the length limit or past it.
_key_pool = [b"5d0e9f53c1b74a2e8b6d3f7a0c4e9b21", b"0b3e6c1f-9a47-4d25-b8e2-7f1c5a9d3e60",
             b"Xq7pL2vN9sR4tW8yB3mK6h", b"", b"retry-1", b"k" * 255, b"k" * 256, b"\xe9t\xe9",
             b"x" * 300]


@st.composite
def requests(draw):
    body = draw(_body())
    types = draw(_weighted(draw, (3, st.just(_JSON)), (1, _some_types)))
    keys = draw(_weighted(draw, (2, st.just([])), (2, st.lists(st.sampled_from(_key_pool[:3]),
                                                                 min_size=1, max_size=1)),
                          (2, st.lists(st.sampled_from(_key_pool[4:6] + _key_pool[7:8]),
                                       min_size=1, max_size=1)),
                          (1, st.lists(st.sampled_from(_key_pool), max_size=2))))
    headers = [(b"content-type", kind) for kind in types]
    headers += [(b"idempotency-key", key) for key in keys]
    framing = _weighted(draw, (4, "length"), (2, "chunked"), (1, "unframed"), (1, "leaves"))
    leaves = framing == "leaves"
    if framing == "length":
        headers.append((b"content-length", str(len(body)).encode()))
    elif framing == "chunked":
        headers.append((b"transfer-encoding", b"chunked"))
    headers = draw(st.permutations(headers))
    chunks = chunked(body, draw(st.sampled_from([1, 7, 512, 1 << 20])))
    if leaves:
        chunks = chunks[:draw(st.integers(0, len(chunks)))]
    return headers, chunks, leaves


def _framing(request) -> list[str]:
    """What kinds of request this is, for the counts the test asserts (chunked, oversized...)."""
    headers, chunks, leaves = request
    names = [name for name, _ in headers]
    framing = ("chunked" if b"transfer-encoding" in names
               else "length" if b"content-length" in names else "unframed")
    kinds = [framing]
    if sum(len(chunk) for chunk in chunks) > LIMIT:
        kinds += ["oversized", f"{framing}+oversized"]
    types = names.count(b"content-type")
    kinds += ["missing content-type"] if types == 0 else ["duplicated content-type"] * (types > 1)
    return kinds + ["abandoned"] * leaves


# --- the two apps ----------------------------------------------------------------------------

class Pair:
    """The app with the shortcut and the same app without it, each on its own database."""

    def __init__(self, settings, tmp_path):
        routed_url = f"sqlite:///{tmp_path / 'routed.db'}"
        migrate.upgrade(routed_url)
        limited = settings.model_copy(update={"max_body_bytes": LIMIT})
        self.fast = create_app(limited, run_migrations=False)
        self.routed = create_app(limited.model_copy(update={"database_url": routed_url}),
                                 run_migrations=False)
        self.routed.user_middleware = [m for m in self.routed.user_middleware
                                       if m.cls is not SubmitShortcut]
        self.names = {id(self.fast): {}, id(self.routed): {}}  # secret value -> its order
        self.runner = asyncio.Runner()
        self.compared = 0
        self.outcomes: dict[tuple, int] = {}  # (status, error code): how many
        self.framings: dict[str, int] = {}  # chunked / oversized / ...: how many compared

    def answer(self, app, request) -> tuple:
        headers, chunks, leaves = request
        answer = self.runner.run(call(app, "POST", "/v1/cases", headers, chunks, leaves=leaves))
        return self._normalised(app, answer)

    def _normalised(self, app, answer: Answer) -> tuple:
        lengths = answer.header(b"content-length")
        assert lengths in ([], [str(len(answer.body)).encode()]), answer
        body = answer.body
        if answer.header(b"content-type") == [b"application/json"] and body:
            document = json.loads(body)
            if isinstance(document, dict):
                names = self.names[id(app)]
                for field in ("case_ref", "token"):
                    if field in document:
                        document[field] = f"{field}#{names.setdefault(document[field], len(names))}"
            body = document
        return (answer.status, sorted(h for h in answer.headers if h[0] != b"content-length"),
                body, answer.raised)

    def close(self):
        self.runner.close()
        self.fast.state.database.dispose()
        self.routed.state.database.dispose()


@pytest.fixture
def pair(settings, tmp_path):
    apps = Pair(settings, tmp_path)
    yield apps
    apps.close()


def _oversized_grid() -> list[tuple]:
    """Bodies past the limit in every framing and with each Content-Type shape, so the body
    guard's 413 is compared on every path whatever hypothesis happens to draw (it draws few
    chunked bodies over the limit: 1 of 520 in one run)."""
    valid = json.dumps({"pathway": "adult", "hashes": [{"signal_type": "pdq", "value": BRIDGE,
                                                        "quality": 100}]}).encode()
    bodies = [valid + b" " * (LIMIT + 1 - len(valid)), valid + b" " * (2 * LIMIT),
              b"\xff" * (LIMIT + 1)]
    grid = []
    for body in bodies:
        for framing, size in [("length", 1 << 20), ("chunked", 7), ("chunked", 512),
                              ("chunked", 1 << 20), ("unframed", 512)]:
            for types in ([b"application/json"], [], [b"application/json"] * 2):
                headers = [(b"content-type", kind) for kind in types]
                if framing == "length":
                    headers.append((b"content-length", str(len(body)).encode()))
                elif framing == "chunked":
                    headers.append((b"transfer-encoding", b"chunked"))
                grid.append((headers, chunked(body, size), False))
    return grid


def test_generated_submits_get_identical_answers_with_and_without_the_shortcut(pair):
    def compare(request):
        fast, routed = pair.answer(pair.fast, request), pair.answer(pair.routed, request)
        assert fast == routed, request
        pair.compared += 1
        outcome = fast[0], fast[2]["error"]["code"] if fast[0] >= 400 else None
        pair.outcomes[outcome] = pair.outcomes.get(outcome, 0) + 1
        for kind in _framing(request):
            pair.framings[kind] = pair.framings.get(kind, 0) + 1

    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    @given(requests())
    def same_answer(request):
        compare(request)

    same_answer()
    assert pair.compared >= 500
    print(f"generated: {pair.compared} requests, framings:", sorted(pair.framings.items()))
    for request in _oversized_grid():
        compare(request)
    # The generator reaches every kind of answer (else the comparison would prove little).
    print(f"compared {pair.compared} requests:", sorted(pair.outcomes.items(), key=str))
    print("framings:", sorted(pair.framings.items()))
    # ... and every framing the issue names, oversized ones both chunked and with a length.
    for kind in ("chunked", "oversized", "chunked+oversized", "length+oversized",
                 "duplicated content-type", "missing content-type", "abandoned"):
        assert pair.framings.get(kind, 0) >= 5, (kind, pair.framings)
    for outcome in [(201, None), (413, "body_too_large"), (415, "unsupported_media_type"),
                    (422, "invalid_request"), (422, "idempotency_key_reused"),
                    (422, "idempotency_key_weak")]:
        assert pair.outcomes.get(outcome, 0) >= 3, (outcome, pair.outcomes)
    assert pair.outcomes[(201, None)] >= 100, pair.outcomes
    ours = ("invalid_request", "idempotency_key_reused", "idempotency_key_weak")
    hash_checks = sum(count for (status, code), count in pair.outcomes.items()
                      if status == 422 and code not in ours)
    assert hash_checks >= 3, pair.outcomes  # refused by validate_hashes, past the body parsing
