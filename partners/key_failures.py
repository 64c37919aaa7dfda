"""A cap on failed partner-key attempts per client address (issue 21: 1,600 wrong keys in a row
were all answered 401, never 429).

Only failures are charged, so a partner that authenticates never uses it up; an address that has
used it up is refused before the key is even looked up, so guessing gets no answers and costs the
database nothing. The bucket is per address: a partner calling from elsewhere is never refused
because someone else guessed wrong (one sharing the guesser's address is, until it refills).

The address is kept only as a keyed hash in memory (the limiter is api/ratelimit.py's, and how
the address is read, including X-Forwarded-For behind a trusted proxy, is api/client_limits.py's;
both are handed in by the composition root, api/app.py, as partners/ does not import api/).
"""
from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from partners.errors import ServiceError

TOO_MANY_FAILURES = ServiceError(
    429, "too_many_failed_keys",
    "too many failed partner-key attempts from this network; check the key and try again later",
    headers={"Retry-After": "60"})


class KeyFailureLimit:
    def __init__(self, limiter, address_of: Callable[[Request], str]):
        # limiter: api.ratelimit.RateLimiter (allow/peek), or None when the limit is off.
        self._limiter, self._address_of = limiter, address_of

    def refuse_if_exhausted(self, request: Request) -> None:
        """Before any lookup: 429 if this address has no failed attempt left."""
        if self._limiter is not None and not self._limiter.peek(self._address_of(request)):
            raise TOO_MANY_FAILURES

    def record_failure(self, request: Request) -> None:
        if self._limiter is not None:
            self._limiter.allow(self._address_of(request))

