"""Opening a case with its token, in the same work whether the reference exists or not.

The design promises that an unknown reference and a wrong token give the same answer in the same
time: otherwise timing tells an attacker which references are live. Loading the case and then
checking the token did not keep it: a known reference made the database return a row and the ORM
build a Case object (and the rollback expire it), 25-90 µs that showed over a few thousand tries.

So a failure does exactly this, whatever the reference: one statement that always returns one
row holding one 32-byte value (the case's verifier, or a decoy when there is no such case), one
HMAC, one constant-time comparison. The case itself is loaded only after the token opened it.
"""
from __future__ import annotations

import os
import re

from sqlalchemy import LargeBinary, func, literal, select
from sqlalchemy.orm import Session

from store import cases as store_cases
from store.models import Case
from store.secrets import verifier, verify_version
from store.token_format import canonical_case_token

TOKEN_PURPOSE = "case-token"
_REF = re.compile(store_cases.REF_PATTERN)
# No token's HMAC can be expected to equal a random value never shown to anyone (2^-256), and
# being random per process it is no fixed value a token could be crafted against.
_DECOY_VERIFIER = os.urandom(32)
# A malformed reference names no case; it is looked up as this (which matches no row) so that
# it, too, costs one statement, and no arbitrary text from the path reaches the database.
_NO_REF = ""


def _verifier_or_decoy(session: Session, ref: str) -> bytes:
    """One row whatever `ref` is: the case's verifier, else the decoy."""
    stored = select(Case.token_verifier).where(Case.ref == ref).scalar_subquery()
    decoy = literal(_DECOY_VERIFIER, LargeBinary)
    return session.execute(select(func.coalesce(stored, decoy))).scalar_one()


def opened_case(session: Session, server_secret: bytes, ref: str, token: str) -> Case | None:
    """The case if `token` opens it, else None after the same work for every failure."""
    looked_up = ref if _REF.fullmatch(ref) else _NO_REF
    # However the person typed it (case, dashes, spaces); a legacy token passes unchanged. Pure
    # string work that does not depend on the reference, so it adds nothing an attacker can time.
    token = canonical_case_token(token)
    version = verify_version(server_secret, TOKEN_PURPOSE, token,
                             _verifier_or_decoy(session, looked_up))
    if version is None:
        return None
    # Only the token's owner gets this far: what it costs reveals nothing new to them.
    case = store_cases.find_case(session, ref)
    if version > 0 and case is not None:
        # Made under an earlier server secret (hashguard rotate-secret): re-keyed to the current
        # one now, in this transaction, so the old secret can be retired once all are used.
        case.token_verifier = verifier(server_secret, TOKEN_PURPOSE, token)
    return case
