"""Partner feedback: idempotent upserts per (partner, hash, action), and dispute quarantine.

A hash that K distinct partners report `not_violating` leaves the shared set (a `remove` entry)
until an operator reviews it: the field's answer to "anyone can submit hashes of lawful images".
"""
from __future__ import annotations

import time

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hashing import signals
from hashing.signals import InvalidHash
from store import changelog
from store.cases import hash_digest
from store.models import (
    HASH_OK,
    HASH_QUARANTINED,
    OP_ADD,
    ChangeLogEntry,
    Feedback,
    Hash,
    SharedHash,
)

DISPUTE = "not_violating"


def find_visible_hash(session: Session, signal_type: str, value: str,
                      pathways: list[str]) -> Hash | None:
    """The stored hash if it was ever shared under one of `pathways` (what the partner received)."""
    try:
        canonical = signals.parse(signal_type, value)
    except InvalidHash:
        return None
    stored = session.scalars(select(Hash).where(
        Hash.digest == hash_digest(signal_type, canonical))).first()
    if stored is None:
        return None
    was_shared = session.scalar(select(exists().where(
        ChangeLogEntry.hash_id == stored.id, ChangeLogEntry.op == OP_ADD,
        ChangeLogEntry.pathway.in_(pathways))))
    return stored if was_shared else None


def record(session: Session, partner_id: int, hash_id: int, action: str, tags: list[str]) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    tag_text = ",".join(sorted({t.strip()[:64] for t in tags if t.strip()}))[:512]
    statement = insert(Feedback).values(partner_id=partner_id, hash_id=hash_id, action=action,
                                        tags=tag_text, reported_at=int(time.time()))
    session.execute(statement.on_conflict_do_update(
        index_elements=["partner_id", "hash_id", "action"],
        set_={"tags": statement.excluded.tags, "reported_at": statement.excluded.reported_at}))


def record_batch(session: Session, partner_id: int,
                 items: list[tuple[int, str, list[str]]]) -> set[int]:
    """Record (hash id, action, tags) reports in (hash id, action) order — two concurrent batches
    writing the same rows in different orders would deadlock. Returns the disputed hash ids."""
    latest = {(hash_id, action): tags for hash_id, action, tags in items}
    for hash_id, action in sorted(latest):
        record(session, partner_id, hash_id, action, latest[(hash_id, action)])
    return {hash_id for hash_id, action in latest if action == DISPUTE}


def disputes(session: Session, hash_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Feedback).where(
        Feedback.hash_id == hash_id, Feedback.action == DISPUTE)) or 0


def quarantine_if_disputed(session: Session, hash_id: int, threshold: int) -> bool:
    """Quarantine when `threshold` partners dispute; returns True if it happened now."""
    if disputes(session, hash_id) < threshold:
        return False
    changelog.lock_hashes(session, [hash_id])
    moved = session.execute(update(Hash).where(Hash.id == hash_id, Hash.state == HASH_OK)
                            .values(state=HASH_QUARANTINED)).rowcount
    if not moved:
        return False
    pathways = session.scalars(select(SharedHash.pathway).where(SharedHash.hash_id == hash_id)
                               .order_by(SharedHash.pathway)).all()
    for pathway in pathways:
        changelog.unshare(session, hash_id, pathway)
    return True
