"""The change log: appending entries so that their order is their commit order, and reading it.

The failure this prevents: with a plain sequence, transaction A takes seq 41, transaction B takes
seq 42 and commits first; a partner pulling now receives 42 and moves its cursor past 41, and when
A commits, entry 41 is never delivered (a hash silently never blocked, or a withdrawal never
applied). The fix here is "assign order at commit": every transaction that appends to the log
takes one transaction-scoped lock (PostgreSQL advisory lock; SQLite's single writer lock is the
same thing) immediately before it draws its sequence numbers, and holds it until it commits. So
any entry with a higher seq belongs to a transaction that started appending after every lower-seq
entry was already committed and visible, and `seq > cursor` can never skip. The lock is taken as
late as possible (after validation and hash upserts), so it serialises only the final few
milliseconds of each write.
"""
from __future__ import annotations

import time

from sqlalchemy import literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import (
    HASH_OK,
    OP_ADD,
    OP_REMOVE,
    PATHWAYS,
    ChangeLogEntry,
    Hash,
    SharedHash,
)

# An arbitrary, fixed advisory-lock key ("hashguard change log").
_CHANGE_LOG_LOCK = 0x4847_434C


def lock_for_append(session: Session) -> None:
    """Take the append lock (held until this transaction ends). Idempotent within a transaction."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already holds the only write lock
    transaction = session.get_transaction()
    if session.info.get("append_lock") is transaction:
        return
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHANGE_LOG_LOCK})
    session.info["append_lock"] = transaction


def share(session: Session, hash_id: int, pathway: str) -> bool:
    """Put (hash, pathway) into the shared set; logs an `add` only if it was not there."""
    return bool(share_many(session, [hash_id], pathway))


def unshare(session: Session, hash_id: int, pathway: str) -> bool:
    """Take (hash, pathway) out of the shared set; logs a `remove` only if it was there."""
    return bool(unshare_many(session, [hash_id], pathway))


def share_many(session: Session, hash_ids: list[int], pathway: str) -> list[int]:
    """Share the hashes under `pathway`; returns the ids that were new to it (each logged `add`).

    A quarantined or rejected hash is not shared: disputes outrank new submissions until an
    operator has looked (partners/review.py shares it again on restore).
    """
    if not hash_ids:
        return []
    lock_for_append(session)
    eligible = select(Hash.id, literal(pathway)).where(
        Hash.id.in_(hash_ids), Hash.state == HASH_OK).order_by(Hash.id)
    added = session.scalars(
        _insert(session)(SharedHash).from_select(["hash_id", "pathway"], eligible)
        .on_conflict_do_nothing().returning(SharedHash.hash_id)).all()
    _append(session, OP_ADD, sorted(added), pathway)
    return sorted(added)


def unshare_many(session: Session, hash_ids: list[int], pathway: str) -> list[int]:
    """Unshare the hashes from `pathway`; returns the ids that were shared (each logged `remove`)."""
    if not hash_ids:
        return []
    lock_for_append(session)
    removed = session.scalars(
        SharedHash.__table__.delete()
        .where(SharedHash.hash_id.in_(hash_ids), SharedHash.pathway == pathway)
        .returning(SharedHash.hash_id)).all()
    _append(session, OP_REMOVE, sorted(removed), pathway)
    return sorted(removed)


def _insert(session: Session):
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _append(session: Session, op: str, hash_ids: list[int], pathway: str) -> None:
    """One change-log entry per hash, in id order, under the append lock.

    logged_at is taken under the lock too, so it never decreases along seq: a timestamp
    checkpoint (the StopNCII surface's) with ">=" semantics can repeat entries but never skip.
    """
    if not hash_ids:
        return
    elsewhere = set(session.scalars(select(SharedHash.hash_id).where(
        SharedHash.hash_id.in_(hash_ids), SharedHash.pathway != pathway)))
    now = int(time.time())
    session.execute(ChangeLogEntry.__table__.insert().values([
        {"op": op, "hash_id": h, "pathway": pathway, "logged_at": now,
         "also_shared": h in elsewhere} for h in hash_ids]))


def visible_to(pathways: list[str]):
    """The SQL condition for entries a partner entitled to `pathways` receives.

    One pathway: all its entries. Both: skip entries made while the hash was also shared under
    the other pathway (see ChangeLogEntry.also_shared), so each value is added and removed once.
    """
    condition = ChangeLogEntry.pathway.in_(pathways)
    if set(pathways) >= set(PATHWAYS):
        condition = condition & ChangeLogEntry.also_shared.is_(False)
    return condition


def read_after(session: Session, cursor: int, pathways: list[str], limit: int):
    """Entries with seq > cursor visible to `pathways`, in order, with their hash values."""
    return session.execute(
        select(ChangeLogEntry.seq, ChangeLogEntry.op, ChangeLogEntry.pathway,
               ChangeLogEntry.logged_at, Hash.signal_type, Hash.value, Hash.quality)
        .join(Hash, Hash.id == ChangeLogEntry.hash_id)
        .where(ChangeLogEntry.seq > cursor, visible_to(pathways))
        .order_by(ChangeLogEntry.seq)
        .limit(limit)
    ).all()


def first_seq_at_or_after(session: Session, unix_time: int) -> int:
    """The cursor that starts just before the first entry logged at or after `unix_time`."""
    first = session.scalar(select(ChangeLogEntry.seq).where(ChangeLogEntry.logged_at >= unix_time)
                           .order_by(ChangeLogEntry.seq).limit(1))
    return (first - 1) if first is not None else last_seq(session)


def last_seq(session: Session) -> int:
    return session.scalar(select(ChangeLogEntry.seq).order_by(ChangeLogEntry.seq.desc()).limit(1)) or 0
