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

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from store import backends
from store.backends import HashRow
from store.models import PATHWAYS, ChangeLogEntry

def lock_hashes(session: Session, hash_ids: list[int]) -> list[HashRow]:
    """Row-lock the hashes (digest order, like the submit's upsert) before deciding about them;
    returns them as the lock read them."""
    return backends.for_session(session).lock_hashes(session, hash_ids)


def share(session: Session, hash_id: int, pathway: str) -> bool:
    """Put (hash, pathway) into the shared set; logs an `add` only if it was not there."""
    return bool(share_many(session, [hash_id], pathway))


def unshare(session: Session, hash_id: int, pathway: str) -> bool:
    """Take (hash, pathway) out of the shared set; logs a `remove` only if it was there."""
    return bool(unshare_many(session, [hash_id], pathway))


def share_many(session: Session, hash_ids: list[int], pathway: str) -> list[int]:
    """Share the hashes under `pathway`; returns the ids that were new to it (each logged `add`).
    A quarantined or rejected hash is not shared (store/backends, rule 2)."""
    backend = backends.for_session(session)
    return backend.share(session, backend.lock_hashes(session, hash_ids), pathway)


def unshare_many(session: Session, hash_ids: list[int], pathway: str) -> list[int]:
    """Unshare the hashes from `pathway`; returns the ids that were shared (each logged `remove`)."""
    backend = backends.for_session(session)
    return backend.unshare(session, backend.lock_hashes(session, hash_ids), pathway)


def visible_to(pathways: list[str], per_pathway: bool = False):
    """The SQL condition for entries a partner entitled to `pathways` receives.

    One pathway: all its entries. Both: skip entries made while the hash was also shared under
    the other pathway (see ChangeLogEntry.also_shared), so each value is added and removed once;
    unless `per_pathway` (the partner asked for `entries=per_pathway`): then every entry of both
    pathways, so that a value gaining or losing a pathway shows as that pathway's add or remove.
    Positions are the global ones either way, so a cursor serves both.
    """
    condition = ChangeLogEntry.pathway.in_(pathways)
    if set(pathways) >= set(PATHWAYS) and not per_pathway:
        condition = condition & ChangeLogEntry.also_shared.is_(False)
    return condition


def reads_global_positions(pathways: list[str]) -> bool:
    """Whether a partner entitled to `pathways` reads global positions (`seq`): only one entitled
    to every pathway. Any other reads its pathway's own positions (`pathway_seq`), because gaps in
    global positions would count another pathway's entries, and time them (a red team's
    finding). (With more than two pathways, a partner entitled to some but not all would need a
    numbering of its own; today a partner has one pathway or all.)"""
    return set(pathways) >= set(PATHWAYS) or len(set(pathways)) > 1


def position_column(pathways: list[str]):
    return ChangeLogEntry.seq if reads_global_positions(pathways) else ChangeLogEntry.pathway_seq


def read_after(session: Session, cursor: int, pathways: list[str], limit: int,
               max_bytes: int | None = None, per_pathway: bool = False):
    """Entries after position `cursor` visible to `pathways` (visible_to), in order, with their
    hash values: rows of (seq, op, pathway, logged_at, signal_type, value, quality, log_seq,
    also_shared), also addressable by name. `seq` is the partner's position (see
    position_column); `log_seq` the global one.

    With `max_bytes`, the database also stops once the values read add up to more than
    `max_bytes`: rows after the one that crosses the bound are not read (the crossing row is a
    sentinel, like the caller's limit + 1 row), so a page of 351 KB TMK values is never read
    whole into memory (partners/feed.cut_page trims it)."""
    position = position_column(pathways)
    return _read(session, position, (position > cursor) & visible_to(pathways, per_pathway),
                 limit, max_bytes)


def read_all_after(session: Session, cursor: int, limit: int, max_bytes: int):
    """Every entry with seq > cursor, whatever its pathway: the match index's catch-up, which a
    follower runs a few times a second while submits stream in. Returns (rows, more): rows of
    (seq, op, pathway, signal_type, value) in seq order (by position; also by name), bounded like
    read_after but keeping the row that crosses `max_bytes` (the caller applies every row it
    gets); `more` is False when no entry after the last row existed when it was read, so a pass
    that got everything does not ask again (one round trip, not two, per pass).

    Only the columns the index applies, and one statement built once per dialect with the
    bounds as parameters: under bench/submit_bench.py the pass's statement construction and
    compilation, not its rows, were most of the follower's own time (py-spy)."""
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        # no parallel plan on a path that runs every 250 ms (issue 22)
        connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    rows = connection.execute(_catch_up_statement(postgres),
                              {"cursor": cursor, "limit": limit, "max_bytes": max_bytes}).all()
    # A row is cut only when the rows before it reach max_bytes; then the last kept row's
    # running sum is >= max_bytes. Fewer rows than the limit and below the bound: nothing more.
    more = bool(rows) and (len(rows) >= limit or rows[-1].running >= max_bytes)
    return rows, more


_CATCH_UP_STATEMENTS: dict[bool, object] = {}


def _catch_up_statement(postgres: bool):
    statement = _CATCH_UP_STATEMENTS.get(postgres)
    if statement is None:
        entry = ChangeLogEntry
        size = (func.octet_length if postgres else func.length)(entry.value)  # see _read
        inner = (select(entry.seq, entry.op, entry.pathway, entry.signal_type, entry.value,
                        size.label("size"),
                        func.sum(size).over(order_by=entry.seq, rows=(None, 0)).label("running"))
                 .where(entry.seq > bindparam("cursor"))
                 .order_by(entry.seq).limit(bindparam("limit")).subquery())
        statement = _CATCH_UP_STATEMENTS[postgres] = (
            select(inner.c.seq, inner.c.op, inner.c.pathway, inner.c.signal_type, inner.c.value,
                   inner.c.running)
            .where(inner.c.running - inner.c.size < bindparam("max_bytes"))
            .order_by(inner.c.seq))
    return statement


def _read(session: Session, position, condition, limit: int, max_bytes: int | None):
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        # A parallel plan (Gather Merge) doubled the time of a 10,000-entry page on 2 cores.
        connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    columns = (position.label("seq"), ChangeLogEntry.op, ChangeLogEntry.pathway,
               ChangeLogEntry.logged_at, ChangeLogEntry.signal_type, ChangeLogEntry.value,
               ChangeLogEntry.quality, ChangeLogEntry.seq.label("log_seq"),
               ChangeLogEntry.also_shared)
    if max_bytes is None:
        # Core, not ORM: plain rows, no identity map (a full sync reads millions of them).
        return connection.execute(
            select(*columns).where(condition).order_by(position).limit(limit)).all()
    # octet_length reads a TOASTed value's size from its pointer, without fetching the value;
    # values are ASCII (hex or base64), so SQLite's length() counts the same bytes. One window
    # (a running sum): a second one, to keep a sentinel after an oversized first row, cost a
    # quarter of a 10,000-entry PDQ page; feed.cut_page says "more" for such a row instead.
    size = (func.octet_length if postgres else func.length)(ChangeLogEntry.value)
    inner = (select(*columns, size.label("size"),
                    func.sum(size).over(order_by=position, rows=(None, 0)).label("running"))
             .where(condition).order_by(position).limit(limit).subquery())
    # A row is read while the rows before it are within the bound (the first always is).
    return connection.execute(
        select(*(inner.c[c.key] for c in columns))
        .where(inner.c.running - inner.c.size < max_bytes)
        .order_by(inner.c.seq)
    ).all()


def first_position_at_or_after(session: Session, unix_time: int, pathways: list[str]) -> int:
    """The cursor just before the first entry visible to `pathways` logged at or after
    `unix_time` (positions of one numbering have no gaps, so "the one before" is `- 1`)."""
    position = position_column(pathways)
    first = session.scalar(select(position).where(ChangeLogEntry.logged_at >= unix_time,
                                                  visible_to(pathways))
                           .order_by(position).limit(1))
    return (first - 1) if first is not None else last_position(session, pathways)


def last_position(session: Session, pathways: list[str]) -> int:
    return session.scalar(select(func.max(position_column(pathways)))
                          .where(ChangeLogEntry.pathway.in_(pathways))) or 0


def log_seq_at(session: Session, cursor: int, pathways: list[str]) -> int:
    """The global position of the partner's position `cursor` (0 before the first entry)."""
    if reads_global_positions(pathways):
        return cursor
    return session.scalar(select(ChangeLogEntry.seq).where(
        ChangeLogEntry.pathway_seq == cursor, ChangeLogEntry.pathway.in_(pathways))) or 0


def position_of_log_seq(session: Session, log_seq: int, pathways: list[str]) -> int:
    """The partner's position of the last entry it sees at or before global position `log_seq`
    (how a numeric cursor handed out before per-pathway positions continues)."""
    if reads_global_positions(pathways):
        return log_seq
    return session.scalar(select(func.max(ChangeLogEntry.pathway_seq)).where(
        ChangeLogEntry.seq <= log_seq, ChangeLogEntry.pathway.in_(pathways))) or 0


def logged_at_of(session: Session, cursor: int, pathways: list[str]) -> int | None:
    """The time of the last entry visible to `pathways` at or before position `cursor` (None
    before the first): other pathways' times are not the partner's to learn."""
    position = position_column(pathways)
    return session.scalar(select(ChangeLogEntry.logged_at)
                          .where(position <= cursor, visible_to(pathways))
                          .order_by(position.desc()).limit(1))


def last_seq(session: Session) -> int:
    return session.scalar(select(func.max(ChangeLogEntry.seq))) or 0
