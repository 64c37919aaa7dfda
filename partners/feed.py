"""The native pull: change-log pages after a cursor, filtered by the partner's pathways.

The cursor is the seq of the last entry served, as a decimal string (treat it as opaque). Seq
order is commit order (store/changelog.py), so `seq > cursor` never skips an entry that
committed late, and never repeats one.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import case, update

from partners import transparency
from partners.errors import ServiceError
from store import backends, changelog
from store.models import Partner

_DIGITS = re.compile(r"[0-9]{1,18}")
MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
MAX_WAIT_SECONDS = 60


def parse_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0  # full sync from the beginning
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not _DIGITS.fullmatch(cursor):
        raise ServiceError(400, "invalid_cursor", "cursor must be a next_cursor this API returned")
    return int(cursor)


def entry_record(row) -> dict:
    record = {"seq": row.seq, "op": row.op, "signal_type": row.signal_type, "value": row.value,
              "pathway": row.pathway, "logged_at": row.logged_at}
    if row.quality is not None:
        record["quality"] = row.quality
    return record


@dataclass(frozen=True)
class PageRows:
    rows: list
    next_cursor: int
    has_more: bool
    tree_size: int  # the transparency log size this page reflects (partners/transparency.py)


def read_page(database, partner_id: int, pathways: list[str], cursor: int, limit: int) -> PageRows:
    with database.read() as session:
        rows = changelog.read_after(session, cursor, pathways, limit + 1)
        next_cursor = rows[limit - 1].seq if len(rows) > limit else (rows[-1].seq if rows else cursor)
        tree_size = transparency.tree_size_for(session, next_cursor)
    # What the partner is sent, not the cursor it came with: acknowledging only the latter left
    # the newest hashes of a quiet feed never counted as pulled.
    acknowledge(database, partner_id, next_cursor)
    return PageRows(rows[:limit], next_cursor, len(rows) > limit, tree_size)


def page(database, partner_id: int, pathways: list[str], cursor: int, limit: int) -> dict:
    """One page as a plain dict (tests, small callers)."""
    result = read_page(database, partner_id, pathways, cursor, limit)
    return {"entries": [entry_record(r) for r in result.rows],
            "next_cursor": str(result.next_cursor), "has_more": result.has_more,
            "tree_size": result.tree_size}


# Entries rendered straight from row tuples, without a dict or json.dumps per entry (together
# they were 60% of a full sync's server time). Safe without escaping: every field is an int, a
# fixed name from our registry, or a hash value that passed its type's parse (hex or base64).
def _entry_json(row) -> str:
    quality = "" if row[6] is None else f',"quality":{row[6]}'
    return (f'{{"seq":{row[0]},"op":"{row[1]}","signal_type":"{row[4]}","value":"{row[5]}",'
            f'"pathway":"{row[2]}","logged_at":{row[3]}{quality}}}')


def render_json(result: PageRows) -> bytes:
    entries = ",".join(_entry_json(r) for r in result.rows)
    has_more = "true" if result.has_more else "false"
    return (f'{{"entries":[{entries}],"next_cursor":"{result.next_cursor}",'
            f'"has_more":{has_more},"tree_size":{result.tree_size}}}').encode()


def render_ndjson(result: PageRows) -> bytes:
    return "".join(_entry_json(r) + "\n" for r in result.rows).encode()


# Acknowledgements are written at most this often per partner: they feed the "pulled by N
# partners" counts, and a commit per delta pull would double the cost of a pull.
ACKNOWLEDGE_EVERY_SECONDS = 5.0


def acknowledge(database, partner_id: int, cursor: int) -> None:
    """A request with cursor c proves the partner received everything up to c, now.

    "Now" is a tick of the event clock (store/reports.py): a case counts a partner as having
    pulled its hashes only if the acknowledgement came after the case was opened. So a pull is
    recorded when the cursor moved or the clock did (a case opened, a report made) since the
    last record — also on a quiet feed, or a case holding an old value would never count as
    pulled while one holding a new value does, which would tell them apart."""
    memo = database.memo.setdefault("acknowledged", {})  # partner -> (cursor, event, when)
    written, event, when = memo.get(partner_id, (0, 0, 0.0))
    now = time.monotonic()
    if written > 0 and now - when < ACKNOWLEDGE_EVERY_SECONDS:
        return
    with database.transaction() as session:
        backend = backends.for_session(session)
        if cursor <= written and backend.event_clock_now(session) <= event:
            memo[partner_id] = (written, event, now)
            return
        event = backend.next_event(session)
        session.execute(update(Partner).where(Partner.id == partner_id).values(
            acknowledged_seq=case((Partner.acknowledged_seq < cursor, cursor),
                                  else_=Partner.acknowledged_seq),
            acknowledged_event=event))
    memo[partner_id] = (max(cursor, written), event, now)
