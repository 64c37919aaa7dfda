"""Per-client limits that never store who the client is, and how the client's address is read.

Behind a reverse proxy, set HASHGUARD_TRUST_FORWARDED_FOR so the proxy's X-Forwarded-For names
the client (otherwise every request would share the proxy's budget).

Two kinds of per-client limit (docs/operations.md, "Limits"):
- Failure budgets (wrong case tokens: api/token_failures.py; wrong partner keys:
  partners/key_failures.py) are shared by every process through the database (store/limits.py),
  keyed by an HMAC of the address under a key derived from the server secret: guessing is what
  an attacker would spread over processes, and only failures are written.
- The budgets here (case writes, bytes of hash values) count successful work and stay in each
  process's memory (api/ratelimit.py, keyed under a per-process random key): sharing them would
  add a database write to every submit, the service's hot path. With N processes behind a
  balancer an address gets up to N times these budgets; they bound how fast one address grows
  the database, and the operator sizes them for the number of processes.
No address reaches the database in clear, the logs, or a file.
"""
from __future__ import annotations

from fastapi import Request

from api.errors import ApiError


def client_address(request: Request) -> str:
    if request.app.state.settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


def _limit(request: Request, limiter_name: str) -> None:
    limiter = getattr(request.app.state.client_limits, limiter_name)
    if limiter is not None and not limiter.allow(client_address(request)):
        raise ApiError(429, "rate_limited", "too many requests from this network; try again later",
                       headers={"Retry-After": "60"})


def limit_case_writes_now(request: Request) -> None:
    """Cap on case submissions and additions per client and hour (called by the submit route
    itself, which takes no dependencies)."""
    _limit(request, "case_writes")


async def limit_case_writes(request: Request) -> None:
    """Dependency: limit_case_writes_now (async: it never blocks, and a sync dependency would
    cost a thread-pool hop per request)."""
    limit_case_writes_now(request)


def charge_value_bytes(request: Request, size: int) -> None:
    """Take `size` bytes of hash values from the client's hourly budget (429 when it is spent).
    Charged for every value sent, stored before or not: resubmitting one value still appends
    a full copy of it to the change log."""
    limiter = request.app.state.client_limits.value_bytes
    if limiter is None or size == 0:
        return
    if not limiter.allow(client_address(request), size):
        wait = min(3600, int(size / limiter.refill) + 1)
        raise ApiError(429, "rate_limited",
                       f"this network sent too many bytes of hash values this hour; try again "
                       f"in {wait} seconds", headers={"Retry-After": str(wait)})
