"""The native pull: change-log pages after a cursor, filtered by the partner's pathways.

The cursor is the seq of the last entry served, as a decimal string (treat it as opaque). Seq
order is commit order (store/changelog.py), so `seq > cursor` never skips an entry that
committed late, and never repeats one.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import exists, select, update

from partners import transparency
from partners.errors import ServiceError
from store import changelog
from store.models import ChangeLogEntry, Partner

_DIGITS = re.compile(r"[0-9]{1,18}")
MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
MAX_WAIT_SECONDS = 60
# Pages are bounded by the bytes of their values as well as by entries: a TMK value is 351 KB,
# so 10,000 of them would be a 3.5 GB page held in memory twice (rows, then JSON). 8 MB is
# ~23 TMK entries, or 10,000 PDQ entries (640 KB of values) without ever binding.
DEFAULT_PAGE_BYTES = 8 * 1024 * 1024
MAX_PAGE_BYTES = 32 * 1024 * 1024


def parse_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0  # full sync from the beginning
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not _DIGITS.fullmatch(cursor):
        raise ServiceError(400, "invalid_cursor", "cursor must be a next_cursor this API returned")
    return int(cursor)


def check_cursor(session, cursor: int) -> None:
    """Refuse a cursor beyond the log's head: no page ever handed it out, and acknowledging it
    would count the partner as having pulled every future entry."""
    if cursor > 0 and cursor > changelog.last_seq(session):
        raise ServiceError(400, "cursor_beyond_head",
                           "cursor is beyond the last entry of the log; pass a next_cursor "
                           "this API returned, or an empty cursor for a full sync")


def cut_page(rows: list, limit: int, max_bytes: int) -> tuple[list, bool]:
    """The first `limit` rows whose values total at most `max_bytes` (always at least one row,
    so a single value larger than the bound still moves the cursor), and whether more remain.
    `rows` holds up to limit + 1 rows, or ends with the row that crossed `max_bytes`
    (changelog.read_after)."""
    total = 0
    for index, row in enumerate(rows[:limit]):
        total += len(row[5])
        if total > max_bytes and index > 0:
            return rows[:index], True
    return rows[:limit], len(rows) > limit


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


def read_page(database, partner_id: int, pathways: list[str], cursor: int, limit: int,
              max_bytes: int = DEFAULT_PAGE_BYTES) -> PageRows:
    with database.read() as session:
        check_cursor(session, cursor)
        rows, has_more = cut_page(
            changelog.read_after(session, cursor, pathways, limit + 1, max_bytes), limit, max_bytes)
        next_cursor = rows[-1].seq if rows else cursor
        tree_size = transparency.tree_size_for(session, next_cursor)
    acknowledge(database, partner_id, cursor)
    return PageRows(rows, next_cursor, has_more, tree_size)


def page(database, partner_id: int, pathways: list[str], cursor: int, limit: int,
         max_bytes: int = DEFAULT_PAGE_BYTES) -> dict:
    """One page as a plain dict (tests, small callers)."""
    result = read_page(database, partner_id, pathways, cursor, limit, max_bytes)
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
    """A request with cursor c proves the partner received everything up to c. Callers check
    the cursor first (check_cursor); the update also requires an entry at or after it, so a
    cursor beyond the log's head can never be acknowledged."""
    memo = database.memo.setdefault("acknowledged", {})  # partner -> (cursor, when written)
    written, when = memo.get(partner_id, (0, 0.0))
    now = time.monotonic()
    if cursor <= written or now - when < ACKNOWLEDGE_EVERY_SECONDS and written > 0:
        return
    with database.transaction() as session:
        session.execute(update(Partner)
                        .where(Partner.id == partner_id, Partner.acknowledged_seq < cursor,
                               exists(select(ChangeLogEntry.seq)
                                      .where(ChangeLogEntry.seq >= cursor)))
                        .values(acknowledged_seq=cursor))
    memo[partner_id] = (cursor, now)
