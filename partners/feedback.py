"""Partner feedback: idempotent upserts per (partner, hash, action).

What a `not_violating` report (a dispute) may change is partners/disputes.py's business.
"""
from __future__ import annotations

import time

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from hashing import signals
from hashing.signals import InvalidHash
from store import backends
from store.cases import hash_digest
from store.models import (
    OP_ADD,
    ChangeLogEntry,
    Feedback,
    Hash,
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


def record(session: Session, partner_id: int, hash_id: int, action: str, tags: list[str],
           event: int | None = None) -> None:
    """Upsert one report; `event` (the event clock's tick, store/reports.py) is drawn if absent."""
    backend = backends.for_session(session)
    event = backend.next_event(session) if event is None else event
    tag_text = ",".join(sorted({t.strip()[:64] for t in tags if t.strip()}))[:512]
    statement = backend.insert(Feedback).values(
        partner_id=partner_id, hash_id=hash_id, action=action, tags=tag_text,
        reported_at=int(time.time()), reported_event=event)
    session.execute(statement.on_conflict_do_update(
        index_elements=["partner_id", "hash_id", "action"],
        set_={"tags": statement.excluded.tags, "reported_at": statement.excluded.reported_at,
              "reported_event": statement.excluded.reported_event}))


def record_batch(session: Session, partner_id: int,
                 items: list[tuple[int, str, list[str]]]) -> set[int]:
    """Record (hash id, action, tags) reports in (hash id, action) order — two concurrent batches
    writing the same rows in different orders would deadlock. Returns the disputed hash ids."""
    latest = {(hash_id, action): tags for hash_id, action, tags in items}
    event = backends.for_session(session).next_event(session) if latest else 0
    for hash_id, action in sorted(latest):
        record(session, partner_id, hash_id, action, latest[(hash_id, action)], event)
    return {hash_id for hash_id, action in latest if action == DISPUTE}
