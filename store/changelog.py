"""The change log: appending entries so that their order is their commit order, and reading it.

The failure this prevents: with a plain sequence, transaction A takes seq 41, transaction B takes
seq 42 and commits first; a partner pulling now receives 42 and moves its cursor past 41, and when
A commits, entry 41 is never delivered (a hash silently never blocked, or a withdrawal never
applied). The fix here is "assign order at commit": on PostgreSQL, entries are inserted without a
position, and a deferred constraint trigger (migrations/) draws their `seq` during COMMIT while
holding one transaction-scoped advisory lock until the commit completes. So any entry with a
higher seq belongs to a transaction that drew it after every lower-seq entry was committed and
visible, and `seq > cursor` can never skip nor repeat. The lock covers one UPDATE (the first
firing of the trigger positions all of the transaction's rows) and the commit record, never a
round trip to Python. Holding it through the commit's WAL flush makes appending transactions
commit one at a time, which is why submits on PostgreSQL are grouped into batches, one commit
each (store/submit_batcher.py; bench/submit_bench.py measures both).
On SQLite the single writer lock (BEGIN IMMEDIATE) gives the same order.

Two writers touching the same hash (a submit sharing it, a withdrawal unsharing it) are
serialised by the hash's row lock (`lock_hashes`, or the submit's upsert), taken in digest order
so they cannot deadlock; decisions about a hash are made under that lock, and the lock is held
until the commit that gives the decision its position in the log.
"""
from __future__ import annotations

import time

from sqlalchemy import func, literal, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from store import pg_writes
from store.models import (
    HASH_OK,
    OP_ADD,
    OP_REMOVE,
    PATHWAYS,
    ChangeLogEntry,
    Hash,
    SharedHash,
)

def lock_hashes(session: Session, hash_ids: list[int]) -> None:
    """Row-lock the hashes (digest order, like the submit's upsert) before deciding about them."""
    if hash_ids and session.get_bind().dialect.name == "postgresql":
        session.execute(select(Hash.id).where(Hash.id.in_(hash_ids))
                        .order_by(Hash.digest).with_for_update())


def share(session: Session, hash_id: int, pathway: str) -> bool:
    """Put (hash, pathway) into the shared set; logs an `add` only if it was not there."""
    return bool(share_many(session, [hash_id], pathway))


def unshare(session: Session, hash_id: int, pathway: str) -> bool:
    """Take (hash, pathway) out of the shared set; logs a `remove` only if it was there."""
    return bool(unshare_many(session, [hash_id], pathway))


def share_many(session: Session, hash_ids: list[int], pathway: str) -> list[int]:
    """Share the hashes under `pathway`; returns the ids that were new to it (each logged `add`).

    The caller holds the hashes' row locks. A quarantined or rejected hash is not shared:
    disputes outrank new submissions until an operator has looked (partners/review.py).
    """
    if not hash_ids:
        return []
    if _is_postgres(session):
        added = pg_writes.share(session, hash_ids, pathway)
    else:
        eligible = select(Hash.id, literal(pathway)).where(
            Hash.id.in_(hash_ids), Hash.state == HASH_OK).order_by(Hash.id)
        ids = session.scalars(
            sqlite.insert(SharedHash).from_select(["hash_id", "pathway"], eligible)
            .on_conflict_do_nothing().returning(SharedHash.hash_id)).all()
        added = _with_also_shared(session, sorted(ids), pathway)
    _append(session, OP_ADD, added, pathway)
    return [h for h, _ in added]


def unshare_many(session: Session, hash_ids: list[int], pathway: str) -> list[int]:
    """Unshare the hashes from `pathway`; returns the ids that were shared (each logged `remove`)."""
    if not hash_ids:
        return []
    if _is_postgres(session):
        removed = pg_writes.unshare(session, hash_ids, pathway)
    else:
        ids = session.scalars(
            SharedHash.__table__.delete()
            .where(SharedHash.hash_id.in_(hash_ids), SharedHash.pathway == pathway)
            .returning(SharedHash.hash_id)).all()
        removed = _with_also_shared(session, sorted(ids), pathway)
    _append(session, OP_REMOVE, removed, pathway)
    return [h for h, _ in removed]


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _with_also_shared(session: Session, hash_ids: list[int], pathway: str) -> list[tuple[int, bool]]:
    elsewhere = set(session.scalars(select(SharedHash.hash_id).where(
        SharedHash.hash_id.in_(hash_ids), SharedHash.pathway != pathway))) if hash_ids else set()
    return [(h, h in elsewhere) for h in hash_ids]


def _append(session: Session, op: str, entries: list[tuple[int, bool]], pathway: str) -> None:
    """One change-log entry per (hash id, also_shared), in order.

    logged_at is (re)taken when the position is drawn, under the append lock, so it never
    decreases along seq: a timestamp checkpoint (the StopNCII surface's) with ">=" semantics can
    repeat entries but never skip.
    """
    if not entries:
        return
    now = int(time.time())
    if _is_postgres(session):
        session.execute(_PG_APPEND, {"op": op, "pathway": pathway, "now": now,
                                     "ids": [h for h, _ in entries],
                                     "also": [a for _, a in entries]})
        return
    first = (session.scalar(select(func.max(ChangeLogEntry.seq))) or 0) + 1
    hashes = {row.id: row for row in session.execute(
        select(Hash.id, Hash.signal_type, Hash.value, Hash.quality)
        .where(Hash.id.in_([h for h, _ in entries])))}
    session.execute(ChangeLogEntry.__table__.insert().values([
        {"seq": first + n, "op": op, "hash_id": h, "signal_type": hashes[h].signal_type,
         "value": hashes[h].value, "quality": hashes[h].quality, "pathway": pathway,
         "logged_at": now, "also_shared": a} for n, (h, a) in enumerate(entries)]))


# seq stays NULL here: the deferred trigger assigns it at COMMIT, in insertion order.
_PG_APPEND = text("""
    INSERT INTO change_log (op, hash_id, signal_type, value, quality, pathway, logged_at,
                            also_shared)
    SELECT :op, v.hash_id, h.signal_type, h.value, h.quality, :pathway, :now, v.also
    FROM unnest(CAST(:ids AS bigint[]), CAST(:also AS boolean[])) WITH ORDINALITY AS v(hash_id, also, n)
    JOIN hashes h ON h.id = v.hash_id
    ORDER BY v.n
""")


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
    """Entries with seq > cursor visible to `pathways`, in order, with their hash values: rows of
    (seq, op, pathway, logged_at, signal_type, value, quality), also addressable by name."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # A parallel plan (Gather Merge) doubled the time of a 10,000-entry page on 2 cores.
        connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    # Core, not ORM: plain rows, no identity map (a full sync reads millions of them).
    return connection.execute(
        select(ChangeLogEntry.seq, ChangeLogEntry.op, ChangeLogEntry.pathway,
               ChangeLogEntry.logged_at, ChangeLogEntry.signal_type, ChangeLogEntry.value,
               ChangeLogEntry.quality)
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
    return session.scalar(select(func.max(ChangeLogEntry.seq))) or 0
