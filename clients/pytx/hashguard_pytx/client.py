"""A small HTTP client for hashguard's native partner API (/v1/partner/...).

Only what the exchange needs: pull pages, send feedback, ask for matches. The key travels as
`Authorization: Bearer`, so it is refused over plain http except to a loopback host (a test
server, or a TLS-terminating proxy on the same machine).
"""
from __future__ import annotations

import ipaddress
import time
import typing as t
from urllib.parse import urlsplit

import requests

PARTNER_PREFIX = "/v1/partner"
# A long-poll request is held by the server for up to `wait` seconds: the read timeout must
# outlast it, or every quiet long-poll would end in a client-side timeout.
BASE_TIMEOUT_SECONDS = 60
# 429 (rate limits) and 503 (overload) say "later"; a fetch retries them a few times, honouring
# Retry-After up to this bound, rather than failing a whole HMA fetch cycle.
MAX_RETRIES = 4
MAX_RETRY_WAIT_SECONDS = 30


class HashguardAPIError(Exception):
    """An answer other than 2xx, with the service's error code (e.g. `cursor_beyond_head`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"hashguard answered {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash; refuses a plain-http URL to a non-loopback host."""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"hashguard base_url must be an http(s) URL, got {base_url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("hashguard base_url must use https (the partner key is sent with "
                         "every request); plain http is allowed to a loopback host only")
    if parts.path.endswith(PARTNER_PREFIX):
        url = url[: -len(PARTNER_PREFIX)]  # tolerate a URL copied with the API prefix
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HashguardClient:
    def __init__(self, base_url: str, api_key: str,
                 session: t.Optional[requests.Session] = None) -> None:
        self.base_url = check_base_url(base_url)
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.session.headers["User-Agent"] = "hashguard-pytx/0.1"

    def pull(self, cursor: str, limit: int, wait: float = 0) -> dict:
        """One page: {"entries": [...], "next_cursor": str, "has_more": bool, ...}.

        Every pathway's entries (`entries=per_pathway`): the exchange keeps one record per
        (pathway, value), so it needs each pathway's own add and remove. The default, one add
        and one remove per value, could name a different pathway in the remove than in the add
        (a value shared as adult, then also as under18, then withdrawn from both), and the
        record would never be deleted. For a key entitled to one pathway both are the same."""
        params: dict = {"cursor": cursor, "limit": limit, "entries": "per_pathway"}
        if wait > 0:
            params["wait"] = wait
        return self._request("GET", "/hashes", params=params,
                             timeout=BASE_TIMEOUT_SECONDS + wait)

    def feedback(self, items: t.Sequence[dict]) -> dict:
        """items: {"signal_type", "value", "action", "tags"}; returns {"accepted", "rejected"}."""
        return self._request("POST", "/feedback", json={"feedback": list(items)})

    def match(self, hashes: t.Sequence[dict]) -> dict:
        return self._request("POST", "/match", json={"hashes": list(hashes)})

    def _request(self, method: str, path: str, timeout: float = BASE_TIMEOUT_SECONDS,
                 **kwargs) -> dict:
        url = self.base_url + PARTNER_PREFIX + path
        for attempt in range(MAX_RETRIES + 1):
            response = self.session.request(method, url, timeout=timeout, **kwargs)
            if response.status_code in (429, 503) and attempt < MAX_RETRIES:
                time.sleep(_retry_after(response, attempt))
                continue
            break
        if response.status_code // 100 != 2:
            code, message = _error_of(response)
            raise HashguardAPIError(response.status_code, code, message)
        return response.json()


def _retry_after(response: requests.Response, attempt: int) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        seconds = 2.0 ** attempt
    return max(0.0, min(seconds, MAX_RETRY_WAIT_SECONDS))


def _error_of(response: requests.Response) -> t.Tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "http_error", response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code", "http_error")), str(error.get("message", ""))
    return "http_error", str(body)[:200]
