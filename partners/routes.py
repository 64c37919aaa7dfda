"""Routes of the native partner API: pull, full export, feedback, match."""
from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from hashing import signals
from hashing.signals import InvalidHash
from partners import disputes, feed, feedback
from partners.auth import AuthenticatedPartner, authenticate
from partners.errors import (
    ServiceError,
    database_unavailable,
    error_responses,
    log_database_error,
)
from partners.schemas import (
    FeedbackBatch,
    FeedbackRejection,
    FeedbackResult,
    Match,
    MatchRequest,
    MatchResponse,
    MatchResult,
    Page,
    QueryEcho,
    value_fields,
)
from store.db import is_unavailable

router = APIRouter(prefix="/v1/partner", tags=["partners"])

ENTRIES_HELP = ("For a partner entitled to both pathways. `per_value` (default): one add when a "
                "value first becomes visible, one remove when it stops being visible (entries "
                "made while it is also shared under the other pathway are left out). "
                "`per_pathway`: every entry of both pathways, each with `also_shared`, so a "
                "value gaining or losing a pathway is an add or remove of that pathway. "
                "Positions are the same in both, so a cursor serves either. For a partner "
                "entitled to one pathway both are the same")
# Code and Retry-After of a match arriving while this process still builds its index at start-up
# (docs/partners.md).
INDEX_NOT_READY = "index_not_ready"
INDEX_NOT_READY_RETRY_AFTER_SECONDS = 1
# At most this long a match waits for the follower to apply changes announced before it arrived
# (new hashes are matchable < 1 s after commit; a longer pass answers from the index as it is).
FRESHNESS_WAIT_SECONDS = 1.0


@router.get("/hashes", response_model=Page, response_model_exclude_none=True,
            responses={**error_responses(400, 401, 422, 429),
                       **feed.LOG_RESTORED_RESPONSE})
async def pull(request: Request,
               cursor: str = Query("", max_length=32, description="next_cursor of the previous "
                                   "page; empty for a full sync from the beginning"),
               limit: int = Query(feed.DEFAULT_PAGE, ge=1, le=feed.MAX_PAGE),
               max_bytes: int = Query(feed.DEFAULT_PAGE_BYTES, ge=1, le=feed.MAX_PAGE_BYTES,
                                      description="Bound on the total size of the entries' "
                                                  "values: a page stops before the entry that "
                                                  "would cross it (has_more is then true); a "
                                                  "single larger entry still comes alone"),
               wait: float = Query(0, ge=0, le=feed.MAX_WAIT_SECONDS,
                                   description="Long-poll: when nothing is new, hold the request "
                                               "up to this many seconds and answer as soon as an "
                                               "entry commits"),
               entries: feed.EntryMode = Query(feed.PER_VALUE, description=ENTRIES_HELP),
               partner: AuthenticatedPartner = Depends(authenticate)):
    """Ordered change entries (adds and removes) after `cursor`, for the partner's pathways.
    Never skips or repeats an entry, including ones whose transaction committed late. A cursor
    beyond the log's head is refused (400 `cursor_beyond_head`); a cursor past the head of a log
    restored from a backup (entries the partner received were lost) gets 409 `log_restored`:
    start again from an empty cursor."""
    position = feed.parse_cursor(cursor)
    state = request.app.state
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        seen = state.notifier.version  # read before querying: a commit in between wakes us
        result = await run_in_threadpool(feed.read_page, state.database, partner.id,
                                         partner.pathways, position, limit, max_bytes, entries)
        remaining = deadline - loop.time()
        if result.rows or remaining <= 0 or await request.is_disconnected():
            # Rendered directly: re-validating 10,000 entries through the response model would
            # cost more than reading them (the schema documents the shape; tests check it).
            return Response(feed.render_json(result), media_type="application/json")
        # Also re-check now and then: writers in processes that cannot notify us (SQLite + CLI).
        await state.notifier.wait(seen, min(remaining, state.settings.long_poll_recheck_seconds))


@router.get("/hashes/export", responses={
    200: {"description": "NDJSON: one entry per line, then a final line "
                         "`{\"next_cursor\": ..., \"log_epoch\": ...}`; gzip-compressed "
                         "with `gzip=true`. A stream the server could not finish (its database "
                         "failed mid-way) ends instead with `{\"error\": {\"code\": "
                         "\"database_unavailable\", ...}, \"resume_cursor\": ...}` and no "
                         "`next_cursor` line: keep the entries, and continue later from "
                         "`resume_cursor` (the cursor after the last entry sent)",
          "content": {"application/x-ndjson": {}}},
    **error_responses(400, 401, 429), **feed.LOG_RESTORED_RESPONSE})
def export(request: Request, cursor: str = Query("", max_length=32),
           gzip_body: bool = Query(False, alias="gzip", description="gzip the stream"),
           entries: feed.EntryMode = Query(feed.PER_VALUE, description=ENTRIES_HELP),
           partner: AuthenticatedPartner = Depends(authenticate)):
    """Streaming export of every entry after `cursor` (a first sync in one request)."""
    position = feed.parse_cursor(cursor)
    database = request.app.state.database
    # The first page is read before the answer starts: a cursor refused or a database down
    # gets its own status (400, 503), not a 200 cut short.
    first = feed.read_page(database, partner.id, partner.pathways, position, feed.MAX_PAGE,
                           entries=entries)
    lines = _export_lines(database, partner, first, entries)
    body = _gzip_stream(lines) if gzip_body else lines
    headers = {"Content-Encoding": "gzip"} if gzip_body else {}
    return StreamingResponse(body, media_type="application/x-ndjson", headers=headers)


def _export_lines(database, partner: AuthenticatedPartner, result: feed.PageRows,
                  entries: str) -> Iterator[bytes]:
    while True:
        if result.rows:
            yield feed.render_ndjson(result)
        if not result.has_more:
            yield feed.render_end(result)
            return
        try:
            result = feed.read_page(database, partner.id, partner.pathways, result.next_cursor,
                                    feed.MAX_PAGE, entries=entries)
        except Exception as error:
            # The status line is long gone: end with an error line a client can detect (no
            # next_cursor line follows, so a client never mistakes this for the end of the log).
            if not is_unavailable(error):
                raise
            log_database_error(error)
            failure = database_unavailable()
            yield json.dumps({"error": {"code": failure.code, "message": failure.message},
                              "resume_cursor": result.cursor_text}).encode() + b"\n"
            return


def _gzip_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Compress as we go (wbits 16+: gzip framing) so a million entries never sit in memory."""
    stream = zlib.compressobj(3, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 2x faster than 6, ~5% larger
    for chunk in chunks:
        out = stream.compress(chunk)
        if out:
            yield out
    yield stream.flush()


@router.post("/feedback", response_model=FeedbackResult,
             responses=error_responses(401, 413, 415, 422, 429))
def submit_feedback(body: FeedbackBatch, request: Request,
                    partner: AuthenticatedPartner = Depends(authenticate)):
    """What the partner did with hashes: pulled, matched, removed/blocked, or not_violating
    (a dispute). Idempotent per (hash, action). Hashes the partner never received are rejected
    per item."""
    state = request.app.state
    rejected, reports = [], []
    with state.database.transaction() as session:
        for index, item in enumerate(body.feedback):
            stored = feedback.find_visible_hash(session, item.signal_type, item.value,
                                                partner.pathways)
            if stored is None:
                rejected.append(FeedbackRejection(index=index, code="unknown_hash",
                                                  message="no hash with this type and value was "
                                                          "shared with this partner"))
                continue
            reports.append((stored.id, item.action, item.tags))
        accepted = len(reports)
        disputed = feedback.record_batch(session, partner.id, reports)
        outcome = disputes.record(session, partner.id, partner.pathways, sorted(disputed),
                                  disputes.DisputeRules.from_settings(state.settings))
    if outcome.queued:
        state.metrics.disputes_queued.inc(outcome.queued)
    if outcome.held:
        state.notify_change_log()
    return FeedbackResult(accepted=accepted, rejected=rejected)


@router.post("/match", response_model=MatchResponse, response_model_exclude_none=True,
             responses=error_responses(401, 413, 415, 422, 429, 503))
def match(body: MatchRequest, request: Request,
          partner: AuthenticatedPartner = Depends(authenticate)):
    """Look hashes up in the shared set: PDQ within distance 31, MD5/SHA-256 exact, TMK by the
    level-1 then level-2 score (>= 0.7), vPDQ by the share of frames within PDQ distance 31
    (>= 80% of the query's). Values longer than 256 characters (TMK, vPDQ) are named by their
    SHA-256 in the answer, never echoed; a request answers at most 8 TMK and 8 vPDQ queries
    (more get the per-query error `match_query_limit`). While the server loads its index at
    start-up it answers 503 `index_not_ready` with `Retry-After` at once, rather than wait."""
    state = request.app.state
    index, follower = state.match_index, state.match_follower
    # The index is built and kept current by the process's follower (partners/match_follower.py),
    # never by a request: during the start-up build answer at once rather than wait for it.
    if not follower.ready:
        # A new instance each time: re-raising one instance would grow its traceback.
        raise ServiceError(503, INDEX_NOT_READY, "this server is still loading the match index; "
                           "retry shortly",
                           headers={"Retry-After": str(INDEX_NOT_READY_RETRY_AFTER_SECONDS)})
    # Read-your-writes: a change committed (and announced) before this request is matchable by
    # it; bounded, so a slow pass costs a request at most this wait, never a build.
    follower.wait_current(FRESHNESS_WAIT_SECONDS)
    results, answered = [], {}
    for query in body.hashes:
        echo = QueryEcho(signal_type=query.signal_type, **value_fields(query.value))
        try:
            value = signals.parse(query.signal_type, query.value)
            _count_query(answered, query.signal_type)
        except InvalidHash as refused:
            results.append(MatchResult(query=echo, matches=[],
                                       error={"code": refused.code, "message": refused.message}))
            continue
        found = index.match_shared(query.signal_type, value, partner.pathways)
        results.append(MatchResult(query=echo, matches=[
            Match(signal_type=t, distance=d, pathways=p, **value_fields(v))
            for t, v, d, p in found]))
    return MatchResponse(results=results)


def _count_query(answered: dict[str, int], signal_type: str) -> None:
    """Per-type cap on the queries one request answers, for types whose module sets one (the
    costly ones: a TMK query costs milliseconds per candidate, a PDQ query microseconds)."""
    cap = getattr(signals.get(signal_type), "MAX_MATCH_QUERIES_PER_REQUEST", None)
    answered[signal_type] = answered.get(signal_type, 0) + 1
    if cap is not None and answered[signal_type] > cap:
        raise InvalidHash("match_query_limit", f"a match request answers at most {cap} "
                                               f"{signal_type} queries; send the rest in another")
