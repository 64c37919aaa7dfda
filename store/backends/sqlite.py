"""The write rules (store/backends/__init__.py) on SQLite, the embedded default, in SQLAlchemy Core.

SQLite has one writer at a time (BEGIN IMMEDIATE, store/db.py), so "under the row lock" is the
whole write transaction, and change-log positions are drawn as max(seq) + 1 inside it: commit
order is write order.
"""
from __future__ import annotations

import time

from sqlalchemy import case as sql_case
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from store import log_epochs
from store.backends import LOG_TIME_STEP, HashRow, NewCase, NewHash
from store.models import (
    HASH_OK,
    OP_ADD,
    OP_REMOVE,
    Case,
    CaseHash,
    ChangeLogEntry,
    EventClock,
    Hash,
    SharedHash,
)

_ROW_COLUMNS = (Hash.id, Hash.state, Hash.signal_type, Hash.value, Hash.quality,
                Hash.held_pathways)


class SQLiteBackend:
    insert = staticmethod(sqlite.insert)  # the dialect's INSERT ... ON CONFLICT construct

    def next_event(self, session) -> int:
        """A tick of the event clock (store/models.EventClock): one writer at a time here."""
        return session.execute(update(EventClock).where(EventClock.id == 1)
                               .values(value=EventClock.value + 1)
                               .returning(EventClock.value)).scalar_one()

    def event_clock_now(self, session) -> int:
        return session.scalar(select(EventClock.value).where(EventClock.id == 1))

    def lock_hashes(self, session: Session, hash_ids: list[int]) -> list[HashRow]:
        if not hash_ids:
            return []
        return [HashRow(*r) for r in session.execute(
            select(*_ROW_COLUMNS).where(Hash.id.in_(hash_ids)).order_by(Hash.digest))]

    def share(self, session: Session, rows: list[HashRow], pathway: str) -> list[int]:
        eligible = sorted({r.id for r in rows if r.may_share(pathway)})  # rule 2
        if not eligible:
            return []
        added = sorted(session.scalars(
            sqlite.insert(SharedHash).values([{"hash_id": h, "pathway": pathway}
                                              for h in eligible])
            .on_conflict_do_nothing().returning(SharedHash.hash_id)).all())
        _append(session, OP_ADD, pathway, added, rows)
        return added

    def unshare(self, session: Session, rows: list[HashRow], pathway: str) -> list[int]:
        ids = sorted({r.id for r in rows})
        if not ids:
            return []
        removed = sorted(session.scalars(
            SharedHash.__table__.delete()
            .where(SharedHash.hash_id.in_(ids), SharedHash.pathway == pathway)
            .returning(SharedHash.hash_id)).all())
        _append(session, OP_REMOVE, pathway, removed, rows)
        return removed

    def link_and_share(self, session: Session, case_id: int, pathway: str,
                       hashes: list[NewHash]) -> int:
        rows = _upsert_hashes(session, hashes)
        reported = _best_quality(hashes)  # this case's own, not the stored best
        linked = session.scalars(
            sqlite.insert(CaseHash).values([
                {"case_id": case_id, "hash_id": r.id,
                 "quality": reported[(r.signal_type, r.value)][2]} for r in rows])
            .on_conflict_do_nothing().returning(CaseHash.hash_id)).all()
        self.share(session, rows, pathway)
        return len(linked)

    def create_cases(self, connection, cases: list[NewCase], now: int,
                     autocommit: bool = False) -> list[int]:
        # One writer at a time: cases are created one after another, pathways in name order
        # across the batch as on PostgreSQL (rule 6) only matters for batches, which SQLite never
        # forms (store/cases.submit runs one case per transaction).
        ids = []
        for values, hashes in cases:
            case_id = connection.execute(insert(Case).values(
                **values, opened_event=self.next_event(connection)).returning(Case.id)).scalar_one()
            self.link_and_share(connection, case_id, values["pathway"], hashes)
            ids.append(case_id)
        return ids


def _best_quality(hashes: list[NewHash]) -> dict[tuple[str, str], NewHash]:
    """One per (type, value), with the best quality among them (None only if all are None)."""
    best: dict[tuple[str, str], NewHash] = {}
    for row in hashes:
        known = best.get(row[:2])
        if known is None or (row[2] is not None and (known[2] is None or row[2] > known[2])):
            best[row[:2]] = row
    return best


def _upsert_hashes(session: Session, hashes: list[NewHash]) -> list[HashRow]:
    """Rule 1: one row per digest, best quality kept; returns the rows (new and existing)."""
    statement = sqlite.insert(Hash).values([
        {"signal_type": t, "value": v, "quality": q, "digest": d, "state": HASH_OK}
        for t, v, q, d in sorted(_best_quality(hashes).values(), key=lambda row: row[3])])
    best_quality = sql_case(
        (statement.excluded.quality.is_(None), Hash.quality),
        (Hash.quality.is_(None), statement.excluded.quality),
        (statement.excluded.quality > Hash.quality, statement.excluded.quality),
        else_=Hash.quality)
    # DO UPDATE (not DO NOTHING) so that RETURNING also yields the existing rows.
    returned = session.execute(statement.on_conflict_do_update(
        index_elements=["digest"], set_={"quality": best_quality}).returning(*_ROW_COLUMNS))
    return sorted((HashRow(*r) for r in returned), key=lambda r: r.id)


def _append(session: Session, op: str, pathway: str, hash_ids: list[int],
            rows: list[HashRow]) -> None:
    """Rules 3-4: one entry per id, in order, values from the rows the writer read."""
    if not hash_ids:
        return
    elsewhere = set(session.scalars(select(SharedHash.hash_id).where(
        SharedHash.hash_id.in_(hash_ids), SharedHash.pathway != pathway)))
    by_id = {r.id: r for r in rows}
    # Above the last restore's lost range too (store/log_epochs.py): after an older file is
    # restored, max + 1 would reuse positions partners already passed.
    first = session.scalar(select(func.max(func.coalesce(func.max(ChangeLogEntry.seq), 0),
                                           log_epochs.floor(log_epochs.GLOBAL)))) + 1
    first_in_pathway = session.scalar(select(func.max(
        func.coalesce(func.max(ChangeLogEntry.pathway_seq), 0), log_epochs.floor(pathway)))
        .where(ChangeLogEntry.pathway == pathway)) + 1
    now = int(time.time()) // LOG_TIME_STEP * LOG_TIME_STEP  # rule 7
    session.execute(ChangeLogEntry.__table__.insert().values([
        {"seq": first + n, "pathway_seq": first_in_pathway + n, "op": op, "hash_id": h,
         "signal_type": by_id[h].signal_type,
         "value": by_id[h].value, "quality": by_id[h].quality, "pathway": pathway,
         "logged_at": now, "also_shared": h in elsewhere} for n, h in enumerate(hash_ids)]))


BACKEND = SQLiteBackend()
