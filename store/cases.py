"""Case operations, each one transaction: create, add hashes, withdraw, and the status view.

What a submit does, in words: the case row is created; each hash is stored once (best quality
kept), linked to the case and shared under the case's pathway unless disputes keep it out; each
(hash, pathway) entering the shared set is logged as an `add` for partners to pull. A withdrawal
unlinks the case's hashes and logs a `remove` for each that no other active case of the pathway
still holds. The rules are stated once, with their reasons, in store/backends/__init__.py; each
database implements them once (store/backends/sqlite.py, store/backends/postgres_functions.py).
"""
from __future__ import annotations

import asyncio
import hashlib
import time
import secrets as _random
from dataclasses import dataclass
from typing import NamedTuple
from datetime import datetime, timezone

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hashing.signals import Signal
from store import backends, changelog
from store.backends import NewHash
from store.db import Database
from store.models import CASE_ACTIVE, CASE_WITHDRAWN, Case, CaseHash, Hash

# Crockford-like alphabet without 0/O, 1/I/L, U: easy to read aloud and to type from paper.
REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REF_PATTERN = r"HG-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}"


def new_case_ref() -> str:
    # One read of the OS's random source for all 8 characters (secrets.choice reads it once per
    # character: 8 system calls on the submit path). 30**8 is 2**39.2 against 64 random bits, so
    # the modulo bias is below 1e-8.
    number = int.from_bytes(_random.token_bytes(8), "big")
    chars = []
    for _ in range(8):
        number, digit = divmod(number, len(REF_ALPHABET))
        chars.append(REF_ALPHABET[digit])
    return f"HG-{''.join(chars[:4])}-{''.join(chars[4:])}"


def coarse_now() -> datetime:
    """Now, truncated to the hour: case times must not line up with any request log."""
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def hash_digest(signal_type: str, value: str) -> bytes:
    return hashlib.sha256(f"{signal_type}:{value}".encode()).digest()


class CreatedCase(NamedTuple):
    """What a submit returns: the new case's id and public fields (a plain tuple: building an
    ORM instance cost more than the rest of the submit's bookkeeping)."""
    id: int
    ref: str
    status: str
    pathway: str


@dataclass(frozen=True)
class IdempotencyRecord:
    digest: bytes
    request: bytes
    sealed_token: bytes


def _case_values(pathway: str, token_verifier: bytes,
                 idempotency: IdempotencyRecord | None) -> dict:
    now = coarse_now()
    return {"ref": new_case_ref(), "pathway": pathway, "status": CASE_ACTIVE,
            "token_verifier": token_verifier, "created_at": now, "updated_at": now,
            "idempotency_digest": idempotency.digest if idempotency else None,
            "idempotency_request": idempotency.request if idempotency else None,
            "idempotency_sealed_token": idempotency.sealed_token if idempotency else None}


def _digest_rows(signals: list[Signal]) -> list[NewHash]:
    """(signal_type, value, quality, digest) per signal, in digest order; the backend keeps one
    row per digest with the best quality (store/backends, rule 1)."""
    return sorted(((s.signal_type, s.value, s.quality, hash_digest(s.signal_type, s.value))
                   for s in signals), key=lambda row: row[3])


def create_case(session: Session, pathway: str, signals: list[Signal], token_verifier: bytes,
                idempotency: IdempotencyRecord | None = None) -> Case:
    """Create a case inside the caller's transaction."""
    values = _case_values(pathway, token_verifier, idempotency)
    [case_id] = backends.for_session(session).create_cases(
        session, [(values, _digest_rows(signals))], int(time.time()))
    return Case(id=case_id, **values)


def _enqueue(db: Database, pathway: str, signals: list[Signal], token_verifier: bytes,
             idempotency: IdempotencyRecord | None):
    """PostgreSQL: queue the case for the next batch; (its column values, the future of its id)."""
    values = _case_values(pathway, token_verifier, idempotency)
    return values, db.submit_batcher.enqueue(values, _digest_rows(signals))


def _created(case_id: int, values: dict) -> CreatedCase:
    return CreatedCase(case_id, values["ref"], values["status"], values["pathway"])


async def submit_async(db: Database, pathway: str, signals: list[Signal], token_verifier: bytes,
                       idempotency: IdempotencyRecord | None = None) -> CreatedCase:
    """`submit` for async callers: on PostgreSQL it awaits the batch's commit without holding a
    thread; on SQLite it runs `submit` on a worker thread."""
    if db.is_postgres:
        values, case_id = _enqueue(db, pathway, signals, token_verifier, idempotency)
        return _created(await asyncio.wrap_future(case_id), values)
    return await asyncio.to_thread(submit, db, pathway, signals, token_verifier, idempotency)


def submit(db: Database, pathway: str, signals: list[Signal], token_verifier: bytes,
           idempotency: IdempotencyRecord | None = None) -> CreatedCase:
    """Create a case in a transaction of its own. On PostgreSQL it joins concurrent submits in
    one statement and one commit (store/submit_batcher.py): the hot path of the service."""
    if db.is_postgres:
        values, case_id = _enqueue(db, pathway, signals, token_verifier, idempotency)
        return _created(case_id.result(), values)
    with db.transaction() as session:
        case = create_case(session, pathway, signals, token_verifier, idempotency)
        return CreatedCase(case.id, case.ref, case.status, case.pathway)


def find_case(session: Session, ref: str) -> Case | None:
    return session.scalars(select(Case).where(Case.ref == ref)).first()


def find_by_idempotency(session: Session, digest: bytes) -> Case | None:
    return session.scalars(select(Case).where(Case.idempotency_digest == digest)).first()


_FORGOTTEN = {"idempotency_digest": None, "idempotency_request": None,
              "idempotency_sealed_token": None}


def forget_idempotency(case_row: Case) -> None:
    """Delete the case's replay record: its Idempotency-Key no longer returns the token."""
    for column, value in _FORGOTTEN.items():
        setattr(case_row, column, value)


def last_case_id(session: Session) -> int:
    return session.scalar(select(func.max(Case.id))) or 0


def forget_idempotency_through(session: Session, last_id: int) -> int:
    """Delete the replay records of the cases with ids up to `last_id`; returns how many."""
    # The unique index on idempotency_digest finds the few rows that still hold one.
    return session.execute(update(Case).where(Case.idempotency_digest.is_not(None),
                                              Case.id <= last_id).values(_FORGOTTEN)
                           .execution_options(synchronize_session=False)).rowcount


def add_hashes(session: Session, case_row: Case, signals: list[Signal]) -> int:
    """Add hashes to an active case; returns how many were new to it."""
    case_row.updated_at = coarse_now()
    session.flush()  # before the change-log append, which must be the last statement
    return backends.for_session(session).link_and_share(
        session, case_row.id, case_row.pathway, _digest_rows(signals))


def count_hashes(session: Session, case: Case) -> int:
    return len(session.scalars(select(CaseHash.hash_id).where(CaseHash.case_id == case.id)).all())


def value_bytes(session: Session, case: Case) -> int:
    """Total length of the case's hash values (api/value_budget.py), summed by the database so
    that up to 12 MB of values are not loaded to be measured. Values are ASCII; PostgreSQL's
    octet_length reads a TOASTed value's size without fetching it (SQLite's length() is the
    same count)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    size = (func.octet_length if postgres else func.length)(Hash.value)
    return session.scalar(select(func.coalesce(func.sum(size), 0))
                          .join(CaseHash, CaseHash.hash_id == Hash.id)
                          .where(CaseHash.case_id == case.id)) or 0


def withdraw(session: Session, case_row: Case) -> None:
    """Unlink every hash; those no other active case of the pathway holds leave the shared set.

    Idempotent: a withdrawn case has no links left, so a second call changes nothing.
    """
    hash_ids = session.scalars(select(CaseHash.hash_id).where(CaseHash.case_id == case_row.id)
                               .order_by(CaseHash.hash_id)).all()
    # Decide under the hashes' row locks: a concurrent submit of the same hash either committed
    # its link before we look (we keep the hash) or shares it again after we commit.
    rows = changelog.lock_hashes(session, hash_ids)
    session.execute(delete(CaseHash).where(CaseHash.case_id == case_row.id))
    still_held = set(session.scalars(
        select(CaseHash.hash_id).join(Case, Case.id == CaseHash.case_id)
        .where(CaseHash.hash_id.in_(hash_ids), Case.status == CASE_ACTIVE,
               Case.pathway == case_row.pathway))) if hash_ids else set()
    case_row.status = CASE_WITHDRAWN
    case_row.updated_at = coarse_now()
    forget_idempotency(case_row)
    session.flush()  # before the change-log append, which must be the last statement
    backends.for_session(session).unshare(
        session, [r for r in rows if r.id not in still_held], case_row.pathway)


def case_hashes(session: Session, case: Case) -> list[tuple[Hash, int | None]]:
    """The case's hashes, each with the quality this case reported (not the stored best)."""
    return [tuple(row) for row in session.execute(
        select(Hash, CaseHash.quality).join(CaseHash, CaseHash.hash_id == Hash.id)
        .where(CaseHash.case_id == case.id).order_by(Hash.id))]
