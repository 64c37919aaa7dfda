"""The operator's review queue for quarantined (disputed) hashes: restore or reject."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from partners.feedback import DISPUTE
from store import changelog
from store.models import (
    CASE_ACTIVE,
    HASH_OK,
    HASH_QUARANTINED,
    HASH_REJECTED,
    Case,
    CaseHash,
    Feedback,
    Hash,
    SharedHash,
)


@dataclass(frozen=True)
class QueueItem:
    hash_id: int
    signal_type: str
    value: str
    disputes: int


def queue(session: Session) -> list[QueueItem]:
    disputes = (select(Feedback.hash_id, func.count().label("n"))
                .where(Feedback.action == DISPUTE).group_by(Feedback.hash_id).subquery())
    rows = session.execute(
        select(Hash.id, Hash.signal_type, Hash.value, func.coalesce(disputes.c.n, 0))
        .outerjoin(disputes, disputes.c.hash_id == Hash.id)
        .where(Hash.state == HASH_QUARANTINED).order_by(Hash.id)).all()
    return [QueueItem(*row) for row in rows]


def restore(session: Session, hash_id: int) -> bool:
    changelog.lock_hashes(session, [hash_id])
    if not session.execute(update(Hash).where(Hash.id == hash_id, Hash.state == HASH_QUARANTINED)
                           .values(state=HASH_OK)).rowcount:
        return False
    pathways = session.scalars(
        select(Case.pathway).join(CaseHash, CaseHash.case_id == Case.id)
        .where(CaseHash.hash_id == hash_id, Case.status == CASE_ACTIVE).distinct()
        .order_by(Case.pathway)).all()
    for pathway in pathways:
        changelog.share(session, hash_id, pathway)  # appends: the last statements
    return True


def reject(session: Session, hash_id: int) -> bool:
    return bool(session.execute(update(Hash).where(Hash.id == hash_id, Hash.state == HASH_QUARANTINED)
                                .values(state=HASH_REJECTED)).rowcount)


def deny(session: Session, signal_type: str, value: str) -> int:
    """Operator allowlist of known-benign content: keep this value out of the shared set for
    good, whoever submits it (now or later). Returns the hash id."""
    from hashing.signals import parse

    from store.cases import hash_digest

    canonical = parse(signal_type, value)
    digest = hash_digest(signal_type, canonical)
    stored = session.scalars(select(Hash).where(Hash.digest == digest)).first()
    if stored is None:
        stored = Hash(signal_type=signal_type, value=canonical, quality=None, digest=digest,
                      state=HASH_REJECTED)
        session.add(stored)
        session.flush()
        return stored.id
    changelog.lock_hashes(session, [stored.id])
    session.execute(update(Hash).where(Hash.id == stored.id).values(state=HASH_REJECTED))
    pathways = session.scalars(select(SharedHash.pathway).where(SharedHash.hash_id == stored.id)
                               .order_by(SharedHash.pathway)).all()
    for pathway in pathways:
        changelog.unshare(session, stored.id, pathway)  # appends: the last statements
    return stored.id
