"""Partner authentication (one DB lookup per request, so a revoked key fails at once), a
per-partner rate limit, and a cap on failed attempts per client address (partners/key_failures.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update

from partners.admin import KEY_PURPOSE, split_key
from partners.errors import ServiceError
from store.models import Partner, PartnerKey
from store.secrets import verifier, verify_version

log = logging.getLogger("hashguard.partners.auth")


@dataclass(frozen=True)
class AuthenticatedPartner:
    id: int
    name: str
    pathways: list[str]


# The ways a key may be presented, declared for the OpenAPI contract (securitySchemes, and
# `security` on each operation that needs one). auto_error=False: they only document; whether
# the key is good is decided below, with this module's own error (401 `invalid_partner_key`).
PARTNER_KEY = HTTPBearer(
    scheme_name="partnerKey", bearerFormat="hgp_<id>_<secret>",
    description="A partner key (`hashguard partners keys create NAME`), sent as "
                "`Authorization: Bearer <key>`", auto_error=False)
# The StopNCII surface (partners/stopncii.py) also takes the key in the headers its clients send.
STOPNCII_SUBSCRIPTION_KEY = APIKeyHeader(
    name="Ocp-Apim-Subscription-Key", scheme_name="stopnciiSubscriptionKey",
    description="The partner key, as StopNCII clients send it (StopNCII surface only)",
    auto_error=False)
STOPNCII_FUNCTIONS_KEY = APIKeyHeader(
    name="x-functions-key", scheme_name="stopnciiFunctionsKey",
    description="The same partner key again, as StopNCII clients send it beside "
                "Ocp-Apim-Subscription-Key (StopNCII surface only; never alone, and when sent "
                "it must equal that header)", auto_error=False)

UNAUTHORIZED = ServiceError(401, "invalid_partner_key", "missing, unknown or revoked partner key",
                            headers={"WWW-Authenticate": "Bearer"})


def presented_key(request: Request) -> str | None:
    """`Authorization: Bearer <key>`, or the StopNCII client's header pair."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    subscription = request.headers.get("ocp-apim-subscription-key")
    function = request.headers.get("x-functions-key")
    if subscription and function is not None and function != subscription:
        return None  # both headers carry the same key on this surface
    return subscription


def authenticate(request: Request,
                 _declared: HTTPAuthorizationCredentials | None = Security(PARTNER_KEY)
                 ) -> AuthenticatedPartner:
    state = request.app.state
    failures = state.partner_key_failures
    key = presented_key(request)
    parts = split_key(key) if key else None
    with state.database.read() as session:
        # Before the lookup: an exhausted guesser learns nothing (partners/key_failures.py).
        failures.refuse_if_exhausted(request, session)
        row = None
        if parts is not None:
            row = session.execute(
                select(PartnerKey.verifier, Partner.id, Partner.name, Partner.pathways)
                .join(Partner, Partner.id == PartnerKey.partner_id)
                .where(PartnerKey.id == parts[0], PartnerKey.revoked_at.is_(None))
            ).first()
        # Same HMAC and comparison whether or not the key id exists.
        version = verify_version(state.server_secret, KEY_PURPOSE, parts[1] if parts else "",
                                 row.verifier if row else None)
    if version is None:
        failures.record_failure(request)  # its own transaction, after the read one ended
        raise UNAUTHORIZED
    if version > 0:
        _rekey(state, parts[0], row.verifier, parts[1])
    if not state.partner_rate_limit.allow(str(row.id)):
        raise ServiceError(429, "rate_limited", "too many requests for this partner; slow down",
                           headers={"Retry-After": "1"})
    return AuthenticatedPartner(row.id, row.name, [p for p in row.pathways.split(",") if p])


def _rekey(state, key_id: int, old_verifier: bytes, secret_part: str) -> None:
    """A key made under an earlier server secret (hashguard rotate-secret) gets a verifier under
    the current one. Best effort: the key was checked, and a database that takes no write now
    (docs/operations.md, "When the database fails") must not turn a good key into an error; the
    next request re-keys it. `verifier == old` makes a concurrent re-key or revoke win."""
    try:
        with state.database.transaction() as session:
            session.execute(update(PartnerKey).where(
                PartnerKey.id == key_id, PartnerKey.verifier == old_verifier,
                PartnerKey.revoked_at.is_(None)).values(
                verifier=verifier(state.server_secret, KEY_PURPOSE, secret_part)))
    except Exception as failed:  # noqa: BLE001 - logged by class only: no key material
        log.warning("partner key not re-keyed to the current secret (%s)", type(failed).__name__)
