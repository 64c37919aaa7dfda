"""The native pull: change-log pages after a cursor, filtered by the partner's pathways.

The cursor is the seq of the last entry served, as a decimal string (treat it as opaque). Seq
order is commit order (store/changelog.py), so `seq > cursor` never skips an entry that
committed late, and never repeats one.
"""
from __future__ import annotations

from sqlalchemy import update

from partners.errors import ServiceError
from store import changelog
from store.models import Partner

MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
MAX_WAIT_SECONDS = 60


def parse_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0  # full sync from the beginning
    if not cursor.isdigit() or len(cursor) > 18:
        raise ServiceError(400, "invalid_cursor", "cursor must be a next_cursor this API returned")
    return int(cursor)


def entry_record(row) -> dict:
    record = {"seq": row.seq, "op": row.op, "signal_type": row.signal_type, "value": row.value,
              "pathway": row.pathway, "logged_at": row.logged_at}
    if row.quality is not None:
        record["quality"] = row.quality
    return record


def page(database, partner_id: int, pathways: list[str], cursor: int, limit: int) -> dict:
    with database.read() as session:
        rows = changelog.read_after(session, cursor, pathways, limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    acknowledge(database, partner_id, cursor)
    return {
        "entries": [entry_record(r) for r in rows],
        "next_cursor": str(rows[-1].seq if rows else cursor),
        "has_more": has_more,
    }


def acknowledge(database, partner_id: int, cursor: int) -> None:
    """A request with cursor c proves the partner received everything up to c."""
    acknowledged = database.memo.setdefault("acknowledged", {})  # skips writes that change nothing
    if cursor <= acknowledged.get(partner_id, 0):
        return
    with database.transaction() as session:
        session.execute(update(Partner)
                        .where(Partner.id == partner_id, Partner.acknowledged_seq < cursor)
                        .values(acknowledged_seq=cursor))
    acknowledged[partner_id] = cursor
