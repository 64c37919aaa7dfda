"""Per-client limits that never store who the client is.

The client's address is only ever passed through RateLimiter, which keys its buckets by an HMAC
under a per-process random key and keeps them in memory: no address reaches the database, the
logs, or a file. Behind a reverse proxy, set HASHGUARD_TRUST_FORWARDED_FOR so the proxy's
X-Forwarded-For names the client (otherwise every request would share the proxy's bucket).
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


async def limit_token_lookups(request: Request) -> None:
    """Dependency: cap on token checks per client (guessing across many case references)."""
    _limit(request, "token_lookups")


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
