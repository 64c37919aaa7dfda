"""What a case's status tells its owner: what partners did with its hashes since it was opened.

In plain words (README "What a case status means"): for each hash of the case,
- pulled: how many partners entitled to the case's pathway have received it since the case was
  opened (their pull acknowledged its position in the log, after the case was opened), or said so;
- matched / removed / blocked / not_violating: how many of those partners reported that, after
  the case was opened.
Counts, never names. Nothing from before the case was opened counts, not even for a value an
earlier case shared: a case holding an already-reported value must read exactly like one
holding a new value, or anyone who has an image could learn whether someone reported it (a red
team did, with one fresh case). "Before" and "after" are read on the event clock
(store/models.EventClock), which orders case openings, reports and acknowledgements and is not a
time, so the counts cannot be lined up with anything else either.
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import OP_ADD, ChangeLogEntry, Feedback, Partner

ACTIONS = ("pulled", "matched", "removed", "blocked", "not_violating")


def counts_by_hash(session: Session, hash_ids: list[int], pathway: str,
                   opened_event: int = 0) -> dict[int, dict[str, int]]:
    """Per hash id: distinct partners per action, counting only events after `opened_event`."""
    partners: dict[int, dict[str, set[int]]] = defaultdict(lambda: {a: set() for a in ACTIONS})
    entitled = {p.id: p for p in session.scalars(select(Partner))
                if pathway in p.pathway_list()}
    if hash_ids and entitled:
        for hash_id, action, partner_id in session.execute(
            select(Feedback.hash_id, Feedback.action, Feedback.partner_id)
            .where(Feedback.hash_id.in_(hash_ids), Feedback.reported_event > opened_event)
        ):
            if partner_id in entitled:
                partners[hash_id][action].add(partner_id)
        added_at = dict(session.execute(
            select(ChangeLogEntry.hash_id, func.max(ChangeLogEntry.seq))
            .where(ChangeLogEntry.hash_id.in_(hash_ids), ChangeLogEntry.op == OP_ADD,
                   ChangeLogEntry.pathway == pathway)
            .group_by(ChangeLogEntry.hash_id)).all())
        since = [p for p in entitled.values() if p.acknowledged_event > opened_event]
        for hash_id, seq in added_at.items():
            partners[hash_id]["pulled"].update(p.id for p in since if p.acknowledged_seq >= seq)
    return {h: {a: len(partners[h][a]) for a in ACTIONS} for h in hash_ids}
