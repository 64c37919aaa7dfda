"""Wrong case tokens, counted per case reference and per client address across every process.

The two findings this answers (issue 23): the budgets lived in each process's memory, so two
processes gave a guesser 20 wrong guesses a minute on a reference instead of 10; and they were
charged before the token was checked, so anyone who knew a reference could spend its budget and
lock the case's owner out of status and withdraw with their own correct token.

The design, and what each choice lets an attacker learn:
- The budgets live in the database (store/limits.py), so every process charges the same one.
- Only failures are charged. The token is checked first, in the same work whatever the outcome
  (api/case_tokens.py), and a token that opens the case is served even when both budgets are
  spent. Refusing it unchecked would hand the lock-out back to whoever knows the reference (an
  abuser who saw it on the owner's phone, on the owner's home network: so the per-address
  budget cannot refuse unchecked either).
- A wrong token is charged to both budgets. Spent: 429 `rate_limited`, otherwise 404. A 429
  follows only a wrong token, and an unknown reference is charged exactly like a known one, so
  a 429 says nothing a 404 did not (not whether the reference exists, nor anything about the
  token). What the attacker keeps is what no limit that spares the owner can take away: a right
  token is served. That is safe because a case token is 140 random bits (store/token_format.py;
  the first tokens, still valid, 256): at any rate this service can answer, a guess succeeds with
  probability ~2^-140 or less. The limits are not
  what keeps tokens secret; they keep the owner in, tell a misbehaving client to stop, and make
  an attack visible (every 429 is counted in /metrics by route and status).
- What bounds the work guessing costs is the per-process cap on all lookups
  (token_lookups_per_second_overall, api/app.py): load shedding, in memory, never written.
- The happy path writes nothing and reads nothing extra: a correct token never touches a budget.
  A failure costs one UPSERT per budget, in one transaction of its own, after the request's own
  transaction has ended (it must commit although the request fails, and on SQLite a second
  writer inside the first would wait for it).
"""
from __future__ import annotations

from contextlib import contextmanager

from fastapi import Request

from api.client_limits import client_address
from api.errors import ApiError
from store.limits import Budget, SharedLimits

NOT_FOUND = ApiError(404, "case_not_found", "unknown case reference or wrong token")
SPENT = ApiError(429, "rate_limited", "too many attempts; wait a minute and try again",
                 headers={"Retry-After": "60"})


class TokenFailureLimits:
    def __init__(self, limits: SharedLimits, per_case: Budget | None, per_client: Budget | None):
        self.limits, self.per_case, self.per_client = limits, per_case, per_client

    def charge(self, ref: str, address: str) -> bool:
        """Count one wrong token on `ref` from `address`; True if a budget was already spent."""
        charges = [(b, s) for b, s in ((self.per_case, ref), (self.per_client, address)) if b]
        return bool(charges) and self.limits.charge(charges)


@contextmanager
def counted_failures(request: Request, ref: str):
    """Around a route's transaction: a wrong token (NOT_FOUND raised inside) is charged once the
    transaction is over, and answered 429 if a budget was spent, else 404."""
    try:
        yield
    except ApiError as error:
        if error is not NOT_FOUND:
            raise
        failures: TokenFailureLimits = request.app.state.token_failures
        if failures.charge(ref, client_address(request)):
            raise SPENT from None
        raise
