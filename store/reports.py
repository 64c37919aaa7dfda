"""Aggregated partner feedback per hash: counts of distinct partners per action, never who.

"pulled" counts a partner that said so, or whose pull cursor has moved past the hash's add
entry (a pull with cursor c proves receipt of everything up to c).
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import OP_ADD, ChangeLogEntry, Feedback, Partner

ACTIONS = ("pulled", "matched", "removed", "blocked", "not_violating")


def counts_by_hash(session: Session, hash_ids: list[int], pathway: str) -> dict[int, dict[str, int]]:
    partners: dict[int, dict[str, set[int]]] = defaultdict(lambda: {a: set() for a in ACTIONS})
    if hash_ids:
        for hash_id, action, partner_id in session.execute(
            select(Feedback.hash_id, Feedback.action, Feedback.partner_id)
            .where(Feedback.hash_id.in_(hash_ids))
        ):
            partners[hash_id][action].add(partner_id)
        added_at = dict(session.execute(
            select(ChangeLogEntry.hash_id, func.max(ChangeLogEntry.seq))
            .where(ChangeLogEntry.hash_id.in_(hash_ids), ChangeLogEntry.op == OP_ADD,
                   ChangeLogEntry.pathway == pathway)
            .group_by(ChangeLogEntry.hash_id)).all())
        entitled = [(p.id, p.acknowledged_seq) for p in session.scalars(select(Partner))
                    if pathway in p.pathway_list()]
        for hash_id, seq in added_at.items():
            partners[hash_id]["pulled"].update(pid for pid, acked in entitled if acked >= seq)
    return {h: {a: len(partners[h][a]) for a in ACTIONS} for h in hash_ids}
