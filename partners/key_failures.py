"""A cap on failed partner-key attempts per client address, shared by every process (issue 21:
1,600 wrong keys in a row were all answered 401, never 429; issue 23: each process kept its own
cap in memory, so N processes gave a guesser N caps).

Only failures are charged, so a partner that authenticates never uses it up; an address that has
used it up is refused before the key is even looked up, so guessing gets no answers and costs the
database no key lookup. The budget is per address: a partner calling from elsewhere is never
refused because someone else guessed wrong (one sharing the guesser's address is, until it
refills). Unlike a case token's owner (api/token_failures.py), a partner is a service with its
own egress address and an operator to call, and refusing unchecked is what keeps an exhausted
guesser from learning anything at all, so here the refusal comes first.

The budget is a row in the database (store/limits.py), keyed by an HMAC of the address under a
key derived from the server secret: every process charges the same one, and no address is
written in clear. Checking it is one read by primary key in the authentication's own read
transaction; a failure adds one UPSERT after that transaction. How the address is read,
including X-Forwarded-For behind a trusted proxy, is api/client_limits.py's, handed in by the
composition root (api/app.py), as partners/ does not import api/.
"""
from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from sqlalchemy.orm import Session

from partners.errors import ServiceError
from store.limits import Budget, SharedLimits

TOO_MANY_FAILURES = ServiceError(
    429, "too_many_failed_keys",
    "too many failed partner-key attempts from this network; check the key and try again later",
    headers={"Retry-After": "60"})


class KeyFailureLimit:
    def __init__(self, limits: SharedLimits, spent: Budget | None,
                 address_of: Callable[[Request], str]):
        # spent: the per-address budget, or None when the limit is off.
        self._limits, self._budget, self._address_of = limits, spent, address_of

    def refuse_if_exhausted(self, request: Request, session: Session) -> None:
        """Before any lookup, in the caller's read transaction: 429 if this address has no
        failed attempt left."""
        if self._budget is not None and self._limits.exhausted(
                session, self._budget, self._address_of(request)):
            raise TOO_MANY_FAILURES

    def record_failure(self, request: Request) -> None:
        """After the caller's transaction: count one failure (its own transaction)."""
        if self._budget is not None:
            self._limits.charge([(self._budget, self._address_of(request))])
