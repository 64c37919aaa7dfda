"""Aggregated partner feedback per hash: counts of distinct partners per action, never who."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Feedback

ACTIONS = ("pulled", "matched", "removed", "not_violating")


def counts_by_hash(session: Session, hash_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ACTIONS, 0))
    if not hash_ids:
        return counts
    rows = session.execute(
        select(Feedback.hash_id, Feedback.action, func.count(Feedback.partner_id))
        .where(Feedback.hash_id.in_(hash_ids))
        .group_by(Feedback.hash_id, Feedback.action)
    )
    for hash_id, action, count in rows:
        counts[hash_id][action] = count
    return counts
