"""The operator's review of disputes (partners/disputes.py): who disputed what, and decisions.

Everything here is for the operator only (`hashguard review ...`): partner names appear, never
to partners or people. Decisions are set-wise so that a burst is undone in seconds:
- restore: the disputes were wrong; the hash returns to every pathway an active case holds it
  under, and every dispute on it is overruled (the same partners disputing again change nothing);
- reject: the disputes were right; the hash stays out of the disputed pathways;
- accept / dismiss: what to do with disputes queued past a partner's budget;
- deny: an allowlist of known-benign values, kept out of every pathway, whoever submits them.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from partners import disputes
from store import backends
from store.models import (
    CASE_ACTIVE,
    DISPUTE_ACTING,
    DISPUTE_OVERRULED,
    DISPUTE_QUEUED,
    DISPUTE_UPHELD,
    HASH_REJECTED,
    Case,
    CaseHash,
    Dispute,
    Hash,
    Partner,
    SharedHash,
)


@dataclass
class QueueItem:
    """A hash held back from some pathways, waiting for a decision."""
    hash_id: int
    signal_type: str
    value: str
    pathways: list[str] = field(default_factory=list)
    disputed_by: list[str] = field(default_factory=list)  # partner names, operator only

    @property
    def disputes(self) -> int:
        return len(self.disputed_by)


@dataclass(frozen=True)
class PartnerSummary:
    partner: str
    acting_today: int  # acting disputes made in the last 24 hours
    queued: int  # past the budget, waiting for the operator
    overruled: int


def queue(session: Session) -> list[QueueItem]:
    """Held pairs with undecided (acting) disputes, one item per hash."""
    rows = session.execute(
        select(Hash.id, Hash.signal_type, Hash.value, Hash.held_pathways, Dispute.pathway,
               Partner.name)
        .join(Dispute, Dispute.hash_id == Hash.id).join(Partner, Partner.id == Dispute.partner_id)
        .where(Hash.held_pathways.is_not(None), Dispute.state == DISPUTE_ACTING)
        .order_by(Hash.id, Dispute.pathway, Partner.name)).all()
    items: dict[int, QueueItem] = {}
    for hash_id, signal_type, value, held, pathway, partner in rows:
        if pathway not in held.split(","):
            continue  # an acting dispute below the threshold: nothing to decide yet
        item = items.setdefault(hash_id, QueueItem(hash_id, signal_type, value))
        if pathway not in item.pathways:
            item.pathways.append(pathway)
        if partner not in item.disputed_by:
            item.disputed_by.append(partner)
    return list(items.values())


def summary(session: Session, now: int | None = None) -> list[PartnerSummary]:
    """Per partner with any dispute: what acted today, what waits past its budget (a burst
    shows here first), and what the operator overruled."""
    now = int(time.time()) if now is None else now
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    recent = (Dispute.disputed_at > now - disputes.DAY).label("recent")
    for name, state, is_recent, n in session.execute(
            select(Partner.name, Dispute.state, recent, func.count())
            .join(Partner, Partner.id == Dispute.partner_id)
            .group_by(Partner.name, Dispute.state, recent)):
        counts[name][state] += n
        if state == DISPUTE_ACTING and is_recent:
            counts[name]["today"] += n
    return [PartnerSummary(name, c["today"], c[DISPUTE_QUEUED], c[DISPUTE_OVERRULED])
            for name, c in sorted(counts.items())]


def restore(session: Session, hash_id: int) -> bool:
    """Restore one hash in every pathway it is held from."""
    held = session.scalar(select(Hash.held_pathways).where(Hash.id == hash_id))
    if not held:
        return False
    return bool(restore_pairs(session, [(hash_id, p) for p in held.split(",")]))


def restore_by_partner(session: Session, partner_name: str, since: int | None = None,
                       until: int | None = None) -> int:
    """Restore every held pair this partner disputed (within [since, until) if given); returns
    how many hashes were restored."""
    pairs = _disputed_by(session, partner_name, [DISPUTE_ACTING, DISPUTE_UPHELD], since, until)
    return len({h for h, _ in restore_pairs(session, pairs)})


def reject_by_partner(session: Session, partner_name: str, since: int | None = None,
                      until: int | None = None) -> int:
    """The disputes of this partner (within [since, until) if given) were right: every pair they
    hold back stays out, as `reject` decides one hash. Returns how many hashes."""
    pairs = _disputed_by(session, partner_name, [DISPUTE_ACTING], since, until)
    held = dict(session.execute(select(Hash.id, Hash.held_pathways).where(
        Hash.id.in_(sorted({h for h, _ in pairs})), Hash.held_pathways.is_not(None))).all())
    decided = sorted((h, p) for h, p in set(pairs) if p in (held.get(h) or "").split(","))
    _decide(session, decided, [DISPUTE_ACTING], DISPUTE_UPHELD)
    return len({h for h, _ in decided})


def _disputed_by(session: Session, partner_name: str, states: list[str], since: int | None,
                 until: int | None) -> list[tuple[int, str]]:
    """(hash, pathway) pairs this partner disputed in [since, until), its disputes in `states`."""
    window = [Partner.name == partner_name, Dispute.state.in_(states)]
    if since is not None:
        window.append(Dispute.disputed_at >= since)
    if until is not None:
        window.append(Dispute.disputed_at < until)
    return [tuple(row) for row in session.execute(
        select(Dispute.hash_id, Dispute.pathway).join(Partner, Partner.id == Dispute.partner_id)
        .where(*window)).all()]


def restore_pairs(session: Session, pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The disputes on these (hash, pathway) pairs were wrong: overrule them all, release the
    pairs, and share each hash again under the pathway where an active case holds it."""
    pairs = sorted(set(pairs))
    released = disputes.set_held(session, pairs, held=False)
    _decide(session, pairs, [DISPUTE_ACTING, DISPUTE_QUEUED, DISPUTE_UPHELD], DISPUTE_OVERRULED)
    backend = backends.for_session(session)
    for pathway in sorted({p for _, p in released}):
        ids = sorted({h for h, p in released if p == pathway})
        held_by_cases = set(session.scalars(
            select(CaseHash.hash_id).join(Case, Case.id == CaseHash.case_id)
            .where(CaseHash.hash_id.in_(ids), Case.status == CASE_ACTIVE,
                   Case.pathway == pathway)))
        rows = [r for r in backend.lock_hashes(session, ids) if r.id in held_by_cases]
        backend.share(session, rows, pathway)  # appends: the last statements for this pathway
    return released


def reject(session: Session, hash_id: int) -> bool:
    """The disputes were right: the hash stays out of the pathways it is held from."""
    held = session.scalar(select(Hash.held_pathways).where(Hash.id == hash_id))
    if not held:
        return False
    return bool(_decide(session, [(hash_id, p) for p in held.split(",")], [DISPUTE_ACTING],
                        DISPUTE_UPHELD))


def accept_queued(session: Session, partner_name: str, threshold: int) -> int:
    """The operator agrees with a partner's disputes queued past its budget: they act now.
    Returns how many (hash, pathway) pairs that holds back."""
    pairs = _queued(session, partner_name)
    _decide(session, pairs, [DISPUTE_QUEUED], DISPUTE_ACTING, partner_name, decided=False)
    backends.for_session(session).lock_hashes(session, sorted({h for h, _ in pairs}))
    return len(disputes.hold_if_disputed(session, pairs, threshold))


def dismiss_queued(session: Session, partner_name: str) -> int:
    """The operator dismisses a partner's disputes queued past its budget; returns how many."""
    return _decide(session, _queued(session, partner_name), [DISPUTE_QUEUED], DISPUTE_OVERRULED,
                   partner_name)


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
    backend = backends.for_session(session)
    backend.lock_hashes(session, [stored.id])
    session.execute(update(Hash).where(Hash.id == stored.id).values(state=HASH_REJECTED))
    rows = backend.lock_hashes(session, [stored.id])
    for pathway in session.scalars(select(SharedHash.pathway).where(
            SharedHash.hash_id == stored.id).order_by(SharedHash.pathway)).all():
        backend.unshare(session, rows, pathway)  # appends: the last statements
    return stored.id


def _queued(session: Session, partner_name: str) -> list[tuple[int, str]]:
    return session.execute(
        select(Dispute.hash_id, Dispute.pathway).join(Partner, Partner.id == Dispute.partner_id)
        .where(Partner.name == partner_name, Dispute.state == DISPUTE_QUEUED)).all()


def _decide(session: Session, pairs: list[tuple[int, str]], from_states: list[str],
            to_state: str, partner_name: str | None = None, decided: bool = True) -> int:
    """Move the disputes on `pairs` (of one partner, if named) from `from_states` to `to_state`."""
    if not pairs:
        return 0
    partner_id = None
    if partner_name is not None:
        partner_id = session.scalar(select(Partner.id).where(Partner.name == partner_name))
    changed = 0
    by_pathway: dict[str, list[int]] = defaultdict(list)
    for hash_id, pathway in pairs:
        by_pathway[pathway].append(hash_id)
    for pathway, ids in sorted(by_pathway.items()):
        conditions = [Dispute.pathway == pathway, Dispute.hash_id.in_(ids),
                      Dispute.state.in_(from_states)]
        if partner_id is not None:
            conditions.append(Dispute.partner_id == partner_id)
        changed += session.execute(update(Dispute).where(and_(*conditions)).values(
            state=to_state, decided_at=int(time.time()) if decided else None)).rowcount
    return changed
