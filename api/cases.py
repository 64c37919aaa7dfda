"""Routes of the anonymous case API: submit, status, add hashes, withdraw."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from sqlalchemy.exc import IntegrityError

from api import idempotency, idempotency_keys
from api.case_tokens import TOKEN_PURPOSE, opened_case
from api.client_limits import limit_case_writes, limit_case_writes_now
from api.deps import bearer_token, database, server_secret
from api.errors import ApiError, error_responses
from api.token_failures import NOT_FOUND, counted_failures
from api.schemas import CaseCreate, CaseCreated, CaseStatus, HashesAdd, HashesAdded, HashStatus
from api.value_budget import budgeted_hashes, check_case_bytes
from store import cases as store_cases
from store.db import Database
from store.models import CASE_ACTIVE, Case
from store.reports import counts_by_hash
from store.secrets import verifier
from store.token_format import canonical_case_token, new_case_token

router = APIRouter(prefix="/v1/cases", tags=["cases"])
SUBMIT_PATH = "/v1/cases"  # api/submit_shortcut.py serves it without the router
WEAK_KEY = ApiError(422, "idempotency_key_weak", idempotency_keys.WEAK_KEY_MESSAGE)
_SUBMIT_422 = ("Invalid input: `invalid_request`, a refused hash, `idempotency_key_reused` (the key"
               " came with another request) or `idempotency_key_weak` (not a random key)")


def _settings(request: Request):
    return request.app.state.settings


@router.post("", status_code=201, response_model=CaseCreated,
             responses={**error_responses(413, 415, 422, 429),
                        422: {**error_responses(422)[422], "description": _SUBMIT_422}})
async def submit_case(
    body: CaseCreate,
    request: Request,
    idempotency_key: str | None = Header(
        None, max_length=idempotency.MAX_KEY_LENGTH,
        description="Retries with the same key within the replay window (10 minutes by default) "
                    "return the same case and token; after it the key is forgotten. A random "
                    "key of at least 128 bits (32 hex digits, 22 base64url characters) or a "
                    "UUIDv4; anything else is refused (422 `idempotency_key_weak`)."),
):
    """Create a case from hashes only. The token in the answer is shown once and never again."""
    # The service's hot path: api/submit_shortcut.py calls this past the router, and there are
    # no Depends and no response-model round trip: the limit, the database and the secret are
    # read directly, and the answer is serialised once. On PostgreSQL the submit joins a batch
    # and awaits its commit (store/submit_batcher.py) with no thread-pool hop; replays (rare)
    # go to a thread.
    limit_case_writes_now(request)
    db: Database = request.app.state.database
    secret: bytes = request.app.state.server_secret
    # Here, not in the header's declaration: the shortcut calls this too, so both paths refuse
    # a weak key with the same answer (tests/test_submit_equivalence.py).
    if idempotency_key and idempotency_keys.is_weak(idempotency_key):
        raise WEAK_KEY
    window = _settings(request).idempotency_window_seconds
    signals = budgeted_hashes(request, body.hashes)  # counts and bytes (issue 21)
    if idempotency_key:
        replay = await run_in_threadpool(_replay, db, secret, idempotency_key, body.pathway,
                                         signals, window)
        if replay is not None:
            return replay
    # Shown grouped (store/token_format.py); the verifier is of the form every typing of it
    # normalises to, which is what api/case_tokens.py checks.
    token = new_case_token()
    record = (idempotency.record(secret, idempotency_key, body.pathway, signals, token)
              if idempotency_key else None)
    try:
        case = await store_cases.submit_async(db, body.pathway, signals,
                                              verifier(secret, TOKEN_PURPOSE,
                                                       canonical_case_token(token)), record)
    except IntegrityError:
        # A concurrent retry with the same Idempotency-Key won the race, or (vanishingly rare)
        # the random reference collided: answer as the winner did, or let the client retry.
        replay = (await run_in_threadpool(_replay, db, secret, idempotency_key, body.pathway,
                                          signals, window) if idempotency_key else None)
        if replay is None:
            raise ApiError(409, "conflict", "please retry the request") from None
        return replay
    request.app.state.notify_change_log()
    created = CaseCreated(case_ref=case.ref, token=token, status=case.status,
                          pathway=case.pathway, hash_count=len(signals))
    return Response(created.model_dump_json(), status_code=201, media_type="application/json")


def submit_route():
    """The declared route of submit_case (its OpenAPI entry; the request log's template)."""
    return next(route for route in router.routes if route.endpoint is submit_case)


def _replay(db: Database, secret: bytes, key: str, pathway: str, signals,
            window_seconds: float) -> JSONResponse | None:
    with db.transaction() as session:
        case = store_cases.find_by_idempotency(session, idempotency.key_digest(secret, key))
        if case is None:
            return None
        sealed = idempotency.unseal(secret, key, case.idempotency_sealed_token)
        if sealed is None or idempotency.expired(sealed, window_seconds):
            # Past its window the key is forgotten, also before the sweep gets to it: the
            # record is deleted now and this request makes a case of its own.
            store_cases.forget_idempotency(case)
            return None
        if case.idempotency_request != idempotency.request_digest(secret, pathway, signals):
            raise ApiError(422, "idempotency_key_reused",
                           "this Idempotency-Key was used for a different request")
        token = sealed.token
        count = store_cases.count_hashes(session, case)
    return JSONResponse(CaseCreated(case_ref=case.ref, token=token, status=case.status,
                                    pathway=case.pathway, hash_count=count).model_dump(),
                        status_code=201)


def _authorized_case(request: Request, session, ref: str, token: str, secret: bytes) -> Case:
    """The case if `token` opens it; unknown reference and wrong token fail identically (the
    route's counted_failures charges the failure: api/token_failures.py)."""
    # Load shedding per process, in memory: bounds the work of lookups, right or wrong.
    if not request.app.state.token_lookup_limits.overall.allow("all"):
        raise ApiError(429, "rate_limited", "too many attempts; wait a minute and try again",
                       headers={"Retry-After": "60"})
    # The same work, and then the same exception, however it fails (api/case_tokens.py).
    case = opened_case(session, secret, ref, token)
    if case is None:
        raise NOT_FOUND
    return case


def _status_view(session, case: Case) -> CaseStatus:
    hashes = store_cases.case_hashes(session, case)
    counts = counts_by_hash(session, [h.id for h, _ in hashes], case.pathway, case.opened_event)
    return CaseStatus(
        case_ref=case.ref, status=case.status, pathway=case.pathway,
        created=case.created_at.isoformat(), updated=case.updated_at.isoformat(),
        hashes=[HashStatus(signal_type=h.signal_type, value=h.value, quality=quality,
                           reports=counts[h.id]) for h, quality in hashes],
    )


@router.get("/{case_ref}", response_model=CaseStatus, responses=error_responses(401, 404, 429))
def case_status(case_ref: str, request: Request, token: str = Depends(bearer_token),
                db: Database = Depends(database), secret: bytes = Depends(server_secret)):
    """Status of a case and, per hash, how many partners pulled, matched or removed it."""
    with counted_failures(request, case_ref), db.transaction() as session:
        return _status_view(session, _authorized_case(request, session, case_ref, token, secret))


@router.post("/{case_ref}/hashes", response_model=HashesAdded,
             responses=error_responses(401, 404, 409, 413, 415, 422, 429),
             dependencies=[Depends(limit_case_writes)])
def add_hashes(case_ref: str, body: HashesAdd, request: Request,
               token: str = Depends(bearer_token), db: Database = Depends(database),
               secret: bytes = Depends(server_secret)):
    """Add more hashes to an active case."""
    settings = _settings(request)
    signals = budgeted_hashes(request, body.hashes)
    with counted_failures(request, case_ref), db.transaction() as session:
        case = _authorized_case(request, session, case_ref, token, secret)
        if case.status != CASE_ACTIVE:
            raise ApiError(409, "case_withdrawn", "this case was withdrawn; create a new case")
        held = store_cases.count_hashes(session, case)
        if held + len(signals) > settings.max_hashes_per_case:
            raise ApiError(422, "case_hash_limit",
                           f"a case holds at most {settings.max_hashes_per_case} hashes")
        check_case_bytes(request, session, case, signals)
        added = store_cases.add_hashes(session, case, signals)  # appends last: nothing after it
        total = held + added
    request.app.state.notify_change_log()
    return HashesAdded(case_ref=case.ref, added=added, hash_count=total)


@router.post("/{case_ref}/withdraw", response_model=CaseStatus,
             responses=error_responses(401, 404, 429))
def withdraw_case(case_ref: str, request: Request, token: str = Depends(bearer_token),
                  db: Database = Depends(database), secret: bytes = Depends(server_secret)):
    """Withdraw: the case's hashes leave the shared set (unless another active case holds them)
    and every link between the case and its hashes is deleted. Idempotent."""
    with counted_failures(request, case_ref), db.transaction() as session:
        case = _authorized_case(request, session, case_ref, token, secret)
        store_cases.withdraw(session, case)  # appends last: nothing after it in this transaction
    request.app.state.notify_change_log()
    with db.transaction() as session:
        return _status_view(session, store_cases.find_case(session, case_ref))
