"""The native pull: change-log pages after a cursor, filtered by the partner's pathways.

The cursor is the position of the last entry served, as a string (treat it as opaque): a decimal
number for a partner entitled to every pathway (the global position), `p` and a number for one
entitled to a single pathway (its pathway's own numbering: store/changelog.py says why).
Position order is commit order, so "after the cursor" never skips an entry that committed late,
and never repeats one. After a restore from a backup, a cursor past the restored log's head names
entries the log no longer has: it is refused with 409 `log_restored` (store/log_epochs.py), and
every page says which log epoch it comes from (`log_epoch`).
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass

from typing import Literal

from sqlalchemy import case, select, update

from partners import transparency
from partners.errors import ErrorResponse, ServiceError
from store import backends, changelog, log_epochs
from store.db import is_unavailable
from store.models import PATHWAYS, LegacyCursorLimit, Partner

log = logging.getLogger("hashguard.feed")
_CURSOR = re.compile(r"(p?)([0-9]{1,18})")
PATHWAY_NUMBERING = "p"
MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
MAX_WAIT_SECONDS = 60
# Pages are bounded by the bytes of their values as well as by entries: a TMK value is 351 KB,
# so 10,000 of them would be a 3.5 GB page held in memory twice (rows, then JSON). 8 MB is
# ~23 TMK entries, or 10,000 PDQ entries (640 KB of values) without ever binding.
DEFAULT_PAGE_BYTES = 8 * 1024 * 1024
MAX_PAGE_BYTES = 32 * 1024 * 1024
INVALID_CURSOR = ServiceError(400, "invalid_cursor",
                              "cursor must be a next_cursor this API returned")
BEYOND_HEAD = ServiceError(400, "cursor_beyond_head",
                           "cursor is past the newest entry; pass a next_cursor this API "
                           "returned, or an empty cursor for a full sync")
# Stable: partners' clients act on the code (clients/pytx resets its checkpoint and resyncs).
LOG_RESTORED = ServiceError(409, "log_restored",
                            "the service's log was restored from a backup and no longer holds "
                            "entries this cursor has passed; start again from an empty cursor "
                            "(a full sync) and replace what you hold with what it returns")
# The OpenAPI entry of routes that take a cursor.
LOG_RESTORED_RESPONSE = {409: {"model": ErrorResponse, "description": "`log_restored`: the log "
                               "was restored from a backup and this cursor is past its head; "
                               "start again from an empty cursor (docs/partners.md)"}}


# What a partner entitled to every pathway receives (`entries=`): by default one add and one
# remove per value (clients that hold a set of values replay them as they are); `per_pathway`:
# every entry of every pathway, each with `also_shared`, so that it learns when a value it holds
# gains or loses a pathway. A partner entitled to one pathway gets every entry of it either way
# (and never `also_shared`: that would tell it about a pathway it is not entitled to).
EntryMode = Literal["per_value", "per_pathway"]
PER_VALUE, PER_PATHWAY = "per_value", "per_pathway"


def every_pathway_entry(pathways: list[str], entries: str) -> bool:
    """Whether this partner's pages carry every pathway's entries, each with `also_shared`."""
    return entries == PER_PATHWAY and set(pathways) >= set(PATHWAYS)


@dataclass(frozen=True)
class Cursor:
    value: int
    in_pathway_numbering: bool  # "p<n>": a position in the partner's pathway's own numbering


def parse_cursor(cursor: str | None) -> Cursor:
    """Syntax only; what it points at is checked against the log (resolve_cursor)."""
    if not cursor:
        return Cursor(0, False)  # full sync from the beginning
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    match = _CURSOR.fullmatch(cursor)
    if not match:
        raise INVALID_CURSOR
    return Cursor(int(match.group(2)), bool(match.group(1)))


def format_cursor(position: int, pathways: list[str]) -> str:
    if changelog.reads_global_positions(pathways):
        return str(position)
    return f"{PATHWAY_NUMBERING}{position}"


def resolve_cursor(session, cursor: "Cursor | int", pathways: list[str],
                   epochs: "log_epochs.Epochs | None" = None) -> int:
    """The partner's position a cursor stands for. Refused: a cursor in a range a restore lost
    (409 `log_restored`: checked first, as such a cursor is often past the restored head too), a
    cursor past the log's head (it would acknowledge entries the partner never received, making
    it count as having pulled every future hash), and a cursor of the other numbering — except a
    decimal cursor handed out before per-pathway positions began (migration 0008), which
    continues where it was."""
    if isinstance(cursor, int):  # a position this module computed (the export's loop)
        return cursor
    if cursor.value == 0 and not cursor.in_pathway_numbering:
        return 0
    if epochs is None:
        epochs = log_epochs.read(session.connection())
    reads_global = changelog.reads_global_positions(pathways)
    if not cursor.in_pathway_numbering:  # global positions (also a legacy decimal cursor)
        numbering = log_epochs.GLOBAL
    else:  # a pathway's own positions ("p<n>"; a partner reading global ones is refused below)
        numbering = None if reads_global else pathways[0]
    if numbering is not None and epochs.was_lost(numbering, cursor.value):
        raise LOG_RESTORED
    if cursor.in_pathway_numbering == reads_global:
        if reads_global:
            raise ServiceError(400, "invalid_cursor", "this cursor was made for another set "
                               "of pathways; start again from an empty cursor")
        legacy = session.scalar(select(LegacyCursorLimit.last_global_seq)) or 0
        if cursor.value > changelog.last_seq(session):
            raise BEYOND_HEAD
        if cursor.value > legacy:
            raise INVALID_CURSOR
        return changelog.position_of_log_seq(session, cursor.value, pathways)
    if cursor.value > changelog.last_position(session, pathways):
        raise BEYOND_HEAD
    return cursor.value


def cut_page(rows: list, limit: int, max_bytes: int) -> tuple[list, bool]:
    """The first `limit` rows whose values total at most `max_bytes` (always at least one row,
    so a single value larger than the bound still moves the cursor), and whether more remain.
    `rows` holds up to limit + 1 rows, or ends with the row that crossed `max_bytes`
    (changelog.read_after), after which the database read nothing: a crossing first row alone
    says "more" (the next page tells, at the cost of one request)."""
    total = 0
    for index, row in enumerate(rows[:limit]):
        total += len(row[5])
        if total > max_bytes:
            return (rows[:index], True) if index > 0 else (rows[:1], True)
    return rows[:limit], len(rows) > limit


def entry_record(row, also_shared: bool = False) -> dict:
    record = {"seq": row.seq, "op": row.op, "signal_type": row.signal_type, "value": row.value,
              "pathway": row.pathway, "logged_at": row.logged_at}
    if row.quality is not None:
        record["quality"] = row.quality
    if also_shared:
        record["also_shared"] = bool(row.also_shared)
    return record


@dataclass(frozen=True)
class PageRows:
    rows: list
    next_cursor: int  # the partner's position
    has_more: bool
    tree_size: int  # the partner's transparency tree size this page reflects (see tree_sizes)
    cursor_text: str  # next_cursor as the partner receives it (format_cursor)
    # Per pathway of the partner: the size of that pathway's tree this page reflects
    # (partners/transparency.py). `tree_size` is the only one's for a partner entitled to one
    # pathway, and their sum (leaves up to the cursor) for one entitled to several.
    tree_sizes: dict[str, int]
    also_shared: bool = False  # entries carry `also_shared` (every_pathway_entry)
    log_epoch: int = log_epochs.FIRST_EPOCH  # store/log_epochs.py


def read_page(database, partner_id: int, pathways: list[str], cursor: "Cursor | int",
              limit: int, max_bytes: int = DEFAULT_PAGE_BYTES,
              entries: str = PER_VALUE) -> PageRows:
    per_pathway = every_pathway_entry(pathways, entries)
    with database.read() as session:
        epochs = log_epochs.read(session.connection())  # a handful of rows, one read
        position = resolve_cursor(session, cursor, pathways, epochs)
        rows, has_more = cut_page(
            changelog.read_after(session, position, pathways, limit + 1, max_bytes,
                                 per_pathway=per_pathway), limit, max_bytes)
        last = rows[-1] if rows else None
        next_cursor = last.seq if last else position
        log_seq = last.log_seq if last else changelog.log_seq_at(session, position, pathways)
        tree_sizes = transparency.tree_sizes_for(session, pathways, log_seq)
    # What the partner is sent, not the cursor it came with: acknowledging only the latter left
    # the newest hashes of a quiet feed never counted as pulled.
    acknowledge(database, partner_id, log_seq)
    return PageRows(rows, next_cursor, has_more, sum(tree_sizes.values()),
                    format_cursor(next_cursor, pathways), tree_sizes, per_pathway,
                    epochs.current)


def page(database, partner_id: int, pathways: list[str], cursor, limit: int,
         max_bytes: int = DEFAULT_PAGE_BYTES, entries: str = PER_VALUE) -> dict:
    """One page as a plain dict (tests, small callers)."""
    result = read_page(database, partner_id, pathways, cursor, limit, max_bytes, entries)
    return {"entries": [entry_record(r, result.also_shared) for r in result.rows],
            "next_cursor": result.cursor_text, "has_more": result.has_more,
            "tree_size": result.tree_size, "tree_sizes": result.tree_sizes,
            "log_epoch": result.log_epoch}


# Entries rendered straight from row tuples, without a dict or json.dumps per entry (together
# they were 60% of a full sync's server time). Every field is an int, a fixed name from our
# registry, or a hash value that passed its type's parse: hex or base64, written as is, or a
# vPDQ value, itself JSON text (quotes inside, never a control character), escaped.
def _json_string(value: str) -> str:
    return json.dumps(value) if '"' in value or "\\" in value else f'"{value}"'


def _entry_json(row, also_shared: bool = False) -> str:
    quality = "" if row[6] is None else f',"quality":{row[6]}'
    shared = "" if not also_shared else (',"also_shared":true' if row[8]
                                         else ',"also_shared":false')
    value = _json_string(row[5])
    return (f'{{"seq":{row[0]},"op":"{row[1]}","signal_type":"{row[4]}","value":{value},'
            f'"pathway":"{row[2]}","logged_at":{row[3]}{quality}{shared}}}')


def render_json(result: PageRows) -> bytes:
    entries = ",".join(_entry_json(r, result.also_shared) for r in result.rows)
    has_more = "true" if result.has_more else "false"
    sizes = ",".join(f'"{p}":{n}' for p, n in result.tree_sizes.items())  # pathway names: fixed
    return (f'{{"entries":[{entries}],"next_cursor":"{result.cursor_text}",'
            f'"has_more":{has_more},"tree_size":{result.tree_size},'
            f'"tree_sizes":{{{sizes}}},"log_epoch":{result.log_epoch}}}').encode()


def render_end(result: PageRows) -> bytes:
    """The export's last line: where to continue, and the epoch the stream came from."""
    return json.dumps({"next_cursor": result.cursor_text,
                       "log_epoch": result.log_epoch}).encode() + b"\n"


def render_ndjson(result: PageRows) -> bytes:
    return "".join(_entry_json(r, result.also_shared) + "\n" for r in result.rows).encode()


# Acknowledgements are written at most this often per partner: they feed the "pulled by N
# partners" counts, and a commit per delta pull would double the cost of a pull.
ACKNOWLEDGE_EVERY_SECONDS = 5.0


def acknowledge(database, partner_id: int, cursor: int) -> None:
    """Best-effort `record_acknowledgement`: a database that cannot be written now (read-only,
    failing over) must not fail the pull that reads it. The acknowledgement is only delayed:
    the partner's next pull, with a cursor at least this far, records it."""
    try:
        record_acknowledgement(database, partner_id, cursor)
    except Exception as error:
        if not is_unavailable(error):
            raise
        log.warning("pull acknowledgement not recorded: the database cannot be written",
                    extra={"fields": {"error": type(getattr(error, "orig", None)
                                                    or error).__name__}})


def record_acknowledgement(database, partner_id: int, cursor: int) -> None:
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
        # Never past the head, whatever the caller passed: that would count the partner as
        # having pulled every future entry.
        cursor = min(cursor, changelog.last_seq(session))
        session.execute(update(Partner).where(Partner.id == partner_id).values(
            acknowledged_seq=case((Partner.acknowledged_seq < cursor, cursor),
                                  else_=Partner.acknowledged_seq),
            acknowledged_event=event))
    memo[partner_id] = (max(cursor, written), event, now)
