"""Disputes: a partner says a hash it received is not violating. What that may change, and what not.

The field's answer to "anyone can submit hashes of lawful images" is that platforms can dispute;
the red team's answer was two partners emptying the whole list with one request each. So:
1. A dispute affects only the pathways the partner is entitled to and received the hash under.
   An adult-only partner can never change (or learn about) the under-18 list.
2. A (hash, pathway) is held back from the shared set when `threshold` distinct partners have
   disputes on it that are `acting`. A restore overrules every dispute on the pair, and a partner
   overruled there stays overruled if it disputes again: only disputes made after the last
   restore, by partners not yet overruled on it, can hold it back again.
3. Each partner has a budget: its disputes act only while it has fewer than `per_day` acting
   disputes made in the last 24 hours, and fewer acting disputes still undecided than
   max(per_day, share x the size of its pathways' shared set). Past either, its disputes are
   `queued`: recorded, counted for nobody, and shown to the operator (partners/review.py), who
   may accept or dismiss them. A partner's fresh keys share its budget (keys are per partner).
Counts (store/models.py explains the states) are per (partner, hash, pathway) row, so a repeated
report changes nothing.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store import backends
from store.models import (
    DISPUTE_ACTING,
    DISPUTE_QUEUED,
    OP_ADD,
    ChangeLogEntry,
    Dispute,
    Hash,
    Partner,
    SharedHash,
)

log = logging.getLogger("hashguard.disputes")
DAY = 86_400


@dataclass(frozen=True)
class DisputeRules:
    threshold: int  # distinct partners whose acting disputes hold a (hash, pathway) back
    per_day: int  # acting disputes per partner per rolling 24 hours
    share: float  # undecided acting disputes per partner, as a share of its shared set

    @classmethod
    def from_settings(cls, settings) -> "DisputeRules":
        return cls(settings.dispute_quarantine_threshold, settings.dispute_budget_per_day,
                   settings.dispute_budget_share)


@dataclass(frozen=True)
class Outcome:
    held: list[tuple[int, str]]  # (hash id, pathway) pairs held back by this report
    queued: int  # disputes past the partner's budget, waiting for the operator


def record(session: Session, partner_id: int, pathways: list[str], hash_ids: list[int],
           rules: DisputeRules, now: int | None = None) -> Outcome:
    """Record the partner's disputes of `hash_ids` and hold back what they now take out."""
    now = int(time.time()) if now is None else now
    hash_ids = sorted(set(hash_ids))
    if not hash_ids:
        return Outcome([], 0)
    # The partner's row lock serialises its own concurrent reports (one budget), the hashes'
    # row locks (digest order) serialise every partner's decisions about the same hash.
    session.execute(select(Partner.id).where(Partner.id == partner_id).with_for_update())
    backend = backends.for_session(session)
    backend.lock_hashes(session, hash_ids)
    received = _received_pairs(session, hash_ids, pathways)
    known = set(session.execute(select(Dispute.hash_id, Dispute.pathway).where(
        Dispute.partner_id == partner_id, Dispute.hash_id.in_(hash_ids))))
    new = [pair for pair in received if pair not in known]
    if not new:
        return Outcome([], 0)
    room = _budget_left(session, partner_id, pathways, rules, now)
    acting, queued = new[:room], new[room:]
    session.execute(Dispute.__table__.insert(), [
        {"partner_id": partner_id, "hash_id": h, "pathway": p, "disputed_at": now,
         "state": DISPUTE_ACTING if n < room else DISPUTE_QUEUED}
        for n, (h, p) in enumerate(new)])
    if queued:
        log.warning("a partner's disputes passed its budget: %d queued for the operator "
                    "(hashguard review list)", len(queued))
    return Outcome(hold_if_disputed(session, acting, rules.threshold), len(queued))


def hold_if_disputed(session: Session, pairs: list[tuple[int, str]], threshold: int) -> list:
    """Hold back each (hash, pathway) that `threshold` partners now dispute; returns those held
    now. The caller holds the hashes' row locks."""
    if not pairs:
        return []
    hash_ids = sorted({h for h, _ in pairs})
    counts = {(h, p): n for h, p, n in session.execute(
        select(Dispute.hash_id, Dispute.pathway, func.count())
        .where(Dispute.hash_id.in_(hash_ids), Dispute.state == DISPUTE_ACTING)
        .group_by(Dispute.hash_id, Dispute.pathway))}
    due = sorted(pair for pair in set(pairs) if counts.get(pair, 0) >= threshold)
    return set_held(session, due, held=True)


def set_held(session: Session, pairs: list[tuple[int, str]], held: bool) -> list:
    """Add (or remove) pathways to the hashes' held set, and take them out of (or leave them to
    the caller to put back into) the shared set. Returns the pairs whose state changed."""
    backend = backends.for_session(session)
    rows = {r.id: r for r in backend.lock_hashes(session, sorted({h for h, _ in pairs}))}
    changed, updates = [], {}
    for hash_id, pathway in pairs:
        current = set(filter(None, (updates.get(hash_id, rows[hash_id].held_pathways)
                                    or "").split(",")))
        if (pathway in current) == held:
            continue
        current = current | {pathway} if held else current - {pathway}
        updates[hash_id] = ",".join(sorted(current)) or None
        changed.append((hash_id, pathway))
    if updates:
        session.execute(update(Hash), [{"id": h, "held_pathways": v} for h, v in updates.items()])
    if held:
        for pathway in sorted({p for _, p in changed}):
            ids = {h for h, p in changed if p == pathway}
            backend.unshare(session, [rows[h] for h in sorted(ids)], pathway)
    return changed


def _received_pairs(session: Session, hash_ids: list[int], pathways: list[str]) -> list:
    """(hash, pathway) pairs the partner received: shared under one of its pathways at least
    once. A dispute reaches no further (rule 1)."""
    return sorted(session.execute(
        select(ChangeLogEntry.hash_id, ChangeLogEntry.pathway).distinct()
        .where(ChangeLogEntry.hash_id.in_(hash_ids), ChangeLogEntry.op == OP_ADD,
               ChangeLogEntry.pathway.in_(pathways))))


def _budget_left(session: Session, partner_id: int, pathways: list[str], rules: DisputeRules,
                 now: int) -> int:
    today = session.scalar(select(func.count()).select_from(Dispute).where(
        Dispute.partner_id == partner_id, Dispute.state == DISPUTE_ACTING,
        Dispute.disputed_at > now - DAY)) or 0
    # Acting disputes stay acting until the operator decides (then they are overruled/upheld).
    undecided = session.scalar(select(func.count()).select_from(Dispute).where(
        Dispute.partner_id == partner_id, Dispute.state == DISPUTE_ACTING)) or 0
    listed = session.scalar(select(func.count()).select_from(SharedHash).where(
        SharedHash.pathway.in_(pathways))) or 0
    open_cap = max(rules.per_day, int(rules.share * listed))
    return max(0, min(rules.per_day - today, open_cap - undecided))
