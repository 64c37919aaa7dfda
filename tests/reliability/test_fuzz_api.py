"""Schemathesis against `openapi.yaml` (the contract file; tests/test_openapi.py keeps it equal to
what the app serves), on every operation it lists, over real HTTP (uvicorn on loopback).

Each generated request is sent as generated, or (a choice Hypothesis makes, and shrinks) with a
valid partner key / case token and a real case reference, so that the fuzzer gets past
authentication into the handlers. Every answer must be: not a 5xx, a documented status code
and content type, and a body and headers that match the schema.

SQLite: this is about input handling, not concurrency (the crash and load tests use PostgreSQL).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.settings import Settings
from store import migrate
from tests.helpers import bearer, new_case
from tests.reliability.server import random_pdq

CONTRACT = Path(__file__).resolve().parents[2] / "openapi.yaml"
# 413 is a rejection too: a value over its maxLength can also push the body over the size cap,
# which the body guard refuses before parsing (schemathesis' default list omits 413).
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]}}})
schema = schemathesis.openapi.from_path(CONTRACT, config=CONFIG)
MAX_EXAMPLES = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance, negative_data_rejection]
# Long-poll parameters are capped so that a generated `wait=60` does not hold the run.
MAX_WAIT_S = 0.2
SENT: Counter = Counter()


@pytest.fixture
def database_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    # Hundreds of requests from one address on one case and one partner: limits opened (they
    # have their own tests); a 429 would only hide the handlers from the fuzzer.
    return Settings(database_url=database_url, data_dir=tmp_path,
                    case_writes_per_hour_per_client=0, token_lookups_per_minute_per_client=0,
                    token_lookups_per_minute_per_case=10**6, token_lookups_per_second_overall=10**6,
                    partner_requests_per_second=10**6,
                    partner_key_failures_per_minute_per_client=0)


@pytest.fixture
def real(client, make_partner, live_server):
    """A partner key, a case with its token (its hashes visible to the partner), the base URL."""
    import random

    rng = random.Random(5)
    key = make_partner("fuzzer")
    case = new_case(client, [random_pdq(rng) for _ in range(3)])
    return {"key": key, "ref": case["case_ref"], "token": case["token"], "base_url": live_server}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if SENT:
        print(f"\n[fuzz] {sum(SENT.values())} generated requests over {len(SENT)} operations "
              f"(max {MAX_EXAMPLES} examples each): " + ", ".join(f"{k} {v}" for k, v in SENT.items()))


def _cap_waits(case) -> None:
    for name, value in list((case.query or {}).items()):
        if name == "wait" and isinstance(value, (int, float)) and value > MAX_WAIT_S:
            case.query[name] = MAX_WAIT_S


def _headers_fuzzed(case) -> bool:
    """Whether schemathesis made this case's headers invalid on purpose. The contract declares
    its security schemes, so the fuzzer generates the key headers itself, and a negative case
    may leave a required one out: a real key added here would make that invalid request valid
    (then accepted, and reported as accepting invalid data)."""
    return case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)


@schema.parametrize()
@schema.given(data=st.data())
@hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                     phases=[Phase.generate, Phase.shrink],  # no `explicit`: see schema.given
                     suppress_health_check=list(HealthCheck))
def test_every_operation_of_the_contract(case, data, real):
    path = case.path
    headers = {}
    keep_headers = _headers_fuzzed(case)
    if path.startswith(("/v1/partner", "/stopncii")):
        if not keep_headers and data.draw(st.booleans(), label="valid partner key"):
            headers = bearer(real["key"])
    elif path.startswith("/v1/cases/"):
        if data.draw(st.booleans(), label="real case"):
            case.path_parameters = {**(case.path_parameters or {}), "case_ref": real["ref"]}
            if not keep_headers and data.draw(st.booleans(), label="its token"):
                headers = bearer(real["token"])
    _cap_waits(case)
    SENT[f"{case.method.upper()} {path}"] += 1
    response = case.call(base_url=real["base_url"], headers=headers, timeout=30)
    case.validate_response(response, checks=CHECKS, headers=headers)


BODY_ROUTES = [(method.upper(), path) for path, item in schema.raw_schema["paths"].items()
               for method, operation in item.items() if "requestBody" in operation]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_a_body_that_is_not_utf8_gets_a_documented_answer(client, make_partner, method, path):
    documented = schema.raw_schema["paths"][path][method.lower()]["responses"]
    headers = {"Content-Type": "application/json",
               **bearer(make_partner("p") if path.startswith(("/v1/partner", "/stopncii")) else "x")}
    response = client.request(method, path.replace("{case_ref}", "HG-2222-2222"),
                              content=b"\xff", headers=headers)
    assert str(response.status_code) in documented, (response.status_code, response.text)


def test_the_contract_lists_every_api_route(app):
    """The fuzz above covers what openapi.yaml lists; make sure that is every API route."""
    listed = set(schema.raw_schema["paths"])
    served = {route.path for route in app.routes
              if getattr(route, "include_in_schema", False) and re.match(r"^/", route.path)}
    assert served <= listed, served - listed
