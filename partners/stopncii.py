"""A StopNCII-compatible surface (`/stopncii/v1/FetchHashes`, `/SubmitFeedback`), so a platform
already pulling StopNCII with python-threatexchange or HMA can pull from hashguard by changing
only its base URL. Field names, enums and paging follow what that client expects; the data is
the same change log as the native pull.

Differences worth knowing: withdrawn and quarantined hashes arrive with hashStatus `Withdrawn`
(the client's "delete it" state); `caseNumbers` is always empty (case references are the
submitters' business); video_sha256 has no StopNCII type and is not listed here.
"""
from __future__ import annotations


from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, Field

from hashing.signals import InvalidHash, get
from partners import disputes, feed, feedback
from partners.auth import (STOPNCII_FUNCTIONS_KEY, STOPNCII_SUBSCRIPTION_KEY,
                           AuthenticatedPartner, authenticate)
from partners.errors import error_responses
from partners.schemas import FEEDBACK_TAGS
from store import changelog

# The key comes as `Authorization: Bearer` (partnerKey, declared by `authenticate`), or in
# Ocp-Apim-Subscription-Key, alone or with x-functions-key (partners/auth.presented_key). FastAPI
# makes each security dependency an alternative of its own, so the pair, which must go together
# (x-functions-key alone is refused), is one more alternative added to each operation, and its
# second scheme is declared by install().
router = APIRouter(prefix="/stopncii/v1", tags=["stopncii"],
                   dependencies=[Security(STOPNCII_SUBSCRIPTION_KEY)])
KEY_PAIR = {"security": [{STOPNCII_SUBSCRIPTION_KEY.scheme_name: [],
                          STOPNCII_FUNCTIONS_KEY.scheme_name: []}]}


def install(app: FastAPI) -> None:
    app.include_router(router)
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:  # generate() caches the schema it returns there
            schemes = generate()["components"]["securitySchemes"]
            schemes[STOPNCII_FUNCTIONS_KEY.scheme_name] = jsonable_encoder(
                STOPNCII_FUNCTIONS_KEY.model, by_alias=True, exclude_none=True)
        return app.openapi_schema

    app.openapi = openapi

SIGNAL_TO_STOPNCII = {"pdq": "ImagePDQ", "video_md5": "VideoMD5", "video_tmk_pdqf": "VideoTMK"}
OP_TO_STATUS = {"add": "Active", "remove": "Withdrawn"}
# StopNCII feedback values -> hashguard actions (None means: accepted, nothing to record).
FEEDBACK_TO_ACTION = {"Blocked": "removed", "PendingReview": "matched",
                      "NotBlocked": "not_violating", "None": None, "QualityUnknown": None,
                      "Unknown": None, "Withdrawn": None, "Deleted": None}


class HashRecord(BaseModel):
    lastModtimestamp: int
    signalType: str
    hashValue: str
    hashStatus: str
    caseNumbers: dict[str, str] = Field(default_factory=dict)
    CSPFeedbacks: list[dict] = Field(default_factory=list)


class FetchHashesResponse(BaseModel):
    count: int
    nextPageToken: str | None
    nextSetTimestamp: int
    hasMoreRecords: bool
    hashRecords: list[HashRecord]


class HashFeedback(BaseModel):
    model_config = ConfigDict(extra="ignore")
    hashValue: str = Field(max_length=400_000)
    feedbackValue: str = Field(max_length=32)
    tags: list[str] = Field(default_factory=list, max_length=20)


class SubmitFeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    count: int | None = None
    hashFeedbacks: list[HashFeedback] = Field(max_length=10_000)


class SubmitFeedbackResponse(BaseModel):
    count: int


@router.get("/FetchHashes", response_model=FetchHashesResponse,
            responses={**error_responses(400, 401, 422, 429), **feed.LOG_RESTORED_RESPONSE},
            openapi_extra=KEY_PAIR)
def fetch_hashes(request: Request,
                 startTimestamp: int = Query(0, ge=0, le=2**40),  # noqa: N803 - their name
                 pageSize: int = Query(800, ge=1, le=feed.MAX_PAGE),  # noqa: N803
                 nextPageToken: str = Query("", max_length=32),  # noqa: N803
                 partner: AuthenticatedPartner = Depends(authenticate)):
    """Change records after the page token, or from `startTimestamp` (unix seconds; records at
    that second are repeated, never skipped) when there is no token. A page token past the head
    of a log restored from a backup gets 409 `log_restored`: start again with no token."""
    pathways = partner.pathways
    with request.app.state.database.read() as session:
        if nextPageToken:
            cursor = feed.resolve_cursor(session, feed.parse_cursor(nextPageToken), pathways)
        else:
            cursor = changelog.first_position_at_or_after(session, startTimestamp, pathways)
        # Bounded by bytes as well as records (partners/feed.py): VideoTMK values are 351 KB.
        rows, has_more = feed.cut_page(
            changelog.read_after(session, cursor, pathways, pageSize + 1,
                                 feed.DEFAULT_PAGE_BYTES), pageSize, feed.DEFAULT_PAGE_BYTES)
        # Not this host's clock for an empty page: an entry still committing may carry an
        # earlier time (taken when it was written, or by a database clock behind ours), and a
        # checkpoint past it would skip it for good. Times never decrease along the log, so the
        # time of the entry the cursor stands on is safe (">=" repeats that second, never skips).
        checkpoint = (rows[-1].logged_at if rows
                      else changelog.logged_at_of(session, cursor, pathways))
        sent = rows[-1].log_seq if rows else changelog.log_seq_at(session, cursor, pathways)
    if checkpoint is None:  # nothing logged yet
        checkpoint = max(startTimestamp, 0)
    feed.acknowledge(request.app.state.database, partner.id, sent)  # what it is sent
    records = [HashRecord(lastModtimestamp=r.logged_at, signalType=SIGNAL_TO_STOPNCII[r.signal_type],
                          hashValue=r.value, hashStatus=OP_TO_STATUS[r.op])
               for r in rows if r.signal_type in SIGNAL_TO_STOPNCII]
    next_cursor = rows[-1].seq if rows else cursor
    return FetchHashesResponse(count=len(records),
                               nextPageToken=feed.format_cursor(next_cursor, pathways),
                               nextSetTimestamp=checkpoint, hasMoreRecords=has_more,
                               hashRecords=records)


@router.post("/SubmitFeedback", response_model=SubmitFeedbackResponse,
             responses=error_responses(401, 413, 415, 422, 429), openapi_extra=KEY_PAIR)
def submit_feedback(body: SubmitFeedbackRequest, request: Request,
                    partner: AuthenticatedPartner = Depends(authenticate)):
    """Feedback in StopNCII's shape (no signal type: the value is looked up among the types)."""
    state = request.app.state
    accepted, reports = 0, []
    with state.database.transaction() as session:
        for item in body.hashFeedbacks:
            action = FEEDBACK_TO_ACTION.get(item.feedbackValue, None)
            for signal_type in SIGNAL_TO_STOPNCII:
                try:
                    get(signal_type).parse(item.hashValue)
                except InvalidHash:
                    continue
                stored = feedback.find_visible_hash(session, signal_type, item.hashValue,
                                                    partner.pathways)
                if stored is None:
                    continue
                accepted += 1
                if action is not None:  # their tags are free text: keep only our words
                    reports.append((stored.id, action,
                                    [t for t in item.tags if t in FEEDBACK_TAGS]))
        disputed = feedback.record_batch(session, partner.id, reports)
        outcome = disputes.record(session, partner.id, partner.pathways, sorted(disputed),
                                  disputes.DisputeRules.from_settings(state.settings))
    if outcome.queued:
        state.metrics.disputes_queued.inc(outcome.queued)
    if outcome.held:
        state.notify_change_log()
    return SubmitFeedbackResponse(count=accepted)
