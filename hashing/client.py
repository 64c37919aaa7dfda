"""A thin client for the hashguard case API: what `hashguard submit/status/withdraw` talk through.

It only ever sends what it is given (hash records and the pathway); it never reads files. Requests
that fail in transport or with 502/503/504 are retried (3 attempts in all, with backoff); a POST
carries an `Idempotency-Key` that stays the same across its retries, so a retried case creation
cannot create a second case.
"""
from __future__ import annotations

import json
import secrets
import time
from urllib.parse import quote

import httpx

# The server's limits per request: 500 hashes, and a body size cap (4 MiB by default) that ~11
# TMK+PDQF values (~350 kB of base64 each) already reach; requests stay well under it.
MAX_HASHES_PER_REQUEST = 500
MAX_BODY_BYTES = 3 * 1024 * 1024
RETRY_STATUSES = frozenset({502, 503, 504})


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key: 256 random bits, base64url. Within the server's replay window the
    key and the hashes return the case's token, so it must be as unguessable as the token (the
    server refuses keys under 128 bits: api/idempotency_keys.py)."""
    return secrets.token_urlsafe(32)


class ApiError(Exception):
    """The server answered with an error; `code` and `message` come from its error body."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Unreachable(Exception):
    """No answer from the server (connection refused, DNS failure, timeout, ...)."""


class CaseClient:
    def __init__(self, server: str, token: str | None = None, *, attempts: int = 3,
                 backoff: float = 0.5, timeout: float = 30.0):
        self.server = server.rstrip("/")
        self.token = token
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._http = httpx.Client(base_url=self.server, timeout=timeout,
                                  headers={"Accept": "application/json"})

    def __enter__(self) -> "CaseClient":
        return self

    def __exit__(self, *exc) -> None:
        self._http.close()

    # The API ---------------------------------------------------------------------------------

    def create_case(self, pathway: str, hashes: list[dict],
                    idempotency_key: str | None = None) -> dict:
        """POST /v1/cases; the answer holds `case_ref` and `token` (shown to the user once)."""
        return self._request("POST", "/v1/cases", payload={"pathway": pathway, "hashes": hashes},
                             idempotency_key=idempotency_key or new_idempotency_key())

    def add_hashes(self, ref: str, hashes: list[dict],
                   idempotency_key: str | None = None) -> dict:
        return self._request("POST", f"{_case_path(ref)}/hashes", payload={"hashes": hashes},
                             idempotency_key=idempotency_key or new_idempotency_key())

    def get_case(self, ref: str) -> dict:
        return self._request("GET", _case_path(ref))

    def withdraw(self, ref: str) -> dict:
        return self._request("POST", f"{_case_path(ref)}/withdraw",
                             idempotency_key=new_idempotency_key())

    # Transport -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, payload: dict | None = None,
                 idempotency_key: str | None = None) -> dict:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                response = self._http.request(method, path, json=payload, headers=headers)
            except httpx.TransportError as failure:
                if last:
                    raise Unreachable(_describe(failure, self.server)) from failure
            else:
                if response.status_code not in RETRY_STATUSES or last:
                    return _decode(response)
            time.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover


def chunks(hashes: list[dict], max_count: int = MAX_HASHES_PER_REQUEST,
           max_bytes: int = MAX_BODY_BYTES) -> list[list[dict]]:
    """Split hash records, in order, into requests of at most `max_count` hashes and about
    `max_bytes` of JSON each (a single record larger than that still gets a request of its own)."""
    batches: list[list[dict]] = []
    current: list[dict] = []
    size = 0
    for item in hashes:
        item_size = len(json.dumps(item)) + 2
        if current and (len(current) >= max_count or size + item_size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        batches.append(current)
    return batches


def _case_path(ref: str) -> str:
    return "/v1/cases/" + quote(ref, safe="")


def _decode(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success:
        if not isinstance(body, dict):
            raise ApiError(response.status_code, "bad_response",
                           "the server's answer is not a JSON object")
        return body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" in error:
        raise ApiError(response.status_code, str(error["code"]), str(error.get("message", "")))
    text = response.text.strip().replace("\n", " ")
    raise ApiError(response.status_code, f"http_{response.status_code}",
                   text[:200] or response.reason_phrase)


def _describe(failure: httpx.TransportError, server: str) -> str:
    if isinstance(failure, httpx.TimeoutException):
        return f"the server at {server} did not answer in time"
    return f"cannot connect to the server at {server} ({failure.__class__.__name__}: {failure})"
