"""The contract says how to authenticate (issue 19): security schemes in the OpenAPI document the
app serves, declared on exactly the operations that refuse a request without credentials, and
every declared way of presenting a key works."""
from __future__ import annotations

import re

import pytest

from tests.hashes import BRIDGE
from tests.helpers import bearer, new_case

SCHEMES = {
    "partnerKey": {"type": "http", "scheme": "bearer"},
    "caseToken": {"type": "http", "scheme": "bearer"},
    "stopnciiSubscriptionKey": {"type": "apiKey", "in": "header",
                                "name": "Ocp-Apim-Subscription-Key"},
    "stopnciiFunctionsKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
}


@pytest.fixture
def schema(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_served_contract_declares_the_security_schemes(schema):
    declared = schema["components"]["securitySchemes"]
    assert {name: {k: declared[name].get(k) for k in fields}
            for name, fields in SCHEMES.items()} == SCHEMES
    for path, method, operation in _operations(schema):
        for alternative in operation.get("security", []):
            assert set(alternative) <= set(declared), (method, path)


def test_security_is_declared_on_exactly_the_operations_that_need_credentials(client, schema):
    for path, method, operation in _operations(schema):
        url = re.sub(r"\{[^}]+\}", "HG-AAAA-AAAA-AAAA", path)  # any path parameter
        body = {"json": {}} if method in ("post", "put", "patch") else {}
        status = client.request(method.upper(), url, **body).status_code
        declared = bool(operation.get("security"))
        assert (status == 401) == declared, (method, path, status, operation.get("security"))


def test_partner_operations_declare_the_partner_key_and_case_operations_the_case_token(schema):
    for path, method, operation in _operations(schema):
        names = {name for alternative in operation.get("security", []) for name in alternative}
        if path.startswith("/v1/cases/"):
            assert names == {"caseToken"}, (method, path)
        elif path.startswith(("/v1/partner/", "/v1/transparency/")):
            assert names == {"partnerKey"}, (method, path)
        elif path.startswith("/stopncii/"):
            assert operation["security"] == [
                {"stopnciiSubscriptionKey": []}, {"partnerKey": []},
                {"stopnciiSubscriptionKey": [], "stopnciiFunctionsKey": []}], path


def test_every_declared_way_of_presenting_a_key_works(client, schema, make_partner):
    key = make_partner("examplenet", "adult")
    new_case(client, [BRIDGE])
    headers_of = {"partnerKey": bearer(key),
                  "stopnciiSubscriptionKey": {"Ocp-Apim-Subscription-Key": key},
                  "stopnciiFunctionsKey": {"x-functions-key": key}}
    for path in ("/stopncii/v1/FetchHashes", "/v1/partner/hashes"):
        for alternative in schema["paths"][path]["get"]["security"]:
            headers = {}
            for name in alternative:
                headers |= headers_of[name]
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, alternative, response.text)
    # The one way not declared on its own: x-functions-key alone is refused.
    refused = client.get("/stopncii/v1/FetchHashes", headers=headers_of["stopnciiFunctionsKey"])
    assert refused.status_code == 401


def test_the_case_token_scheme_opens_the_case(client):
    case = new_case(client, [BRIDGE])
    response = client.get(f"/v1/cases/{case['case_ref']}", headers=bearer(case["token"]))
    assert response.status_code == 200
    assert client.get(f"/v1/cases/{case['case_ref']}").json()["error"]["code"] == "token_required"
