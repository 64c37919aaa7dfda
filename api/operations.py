"""Operational endpoints: liveness, readiness and Prometheus metrics (per process)."""
from __future__ import annotations

import hashlib
import hmac
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest)
from sqlalchemy import text
from api.schemas import ClientLimits
from partners.match_follower import match_index_ready
from store import db_health

router = APIRouter(tags=["operations"])
log = logging.getLogger("hashguard.operations")


class Metrics:
    """Counters by route template and status; never by case, partner, token or address."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hashguard_http_requests_total", "HTTP requests",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("hashguard_http_request_seconds", "HTTP request duration",
                                 ["route", "method"], registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        # An alert for the operator: a partner disputing past its budget (a burst, or an
        # attempt to empty the list). Which partner: `hashguard review list`.
        self.disputes_queued = Counter("hashguard_partner_disputes_queued_total",
                                       "Disputes queued past their partner's budget",
                                       registry=self.registry)
        # 1 while PostgreSQL's autovacuum cannot run on this database (store/db_health.py says
        # why it matters and the start-up warning says how to fix it). Read at each scrape.
        self.autovacuum_off = Gauge("hashguard_database_autovacuum_off",
                                    "1 when autovacuum is off for this database (see the "
                                    "start-up warning)", registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)


@router.get("/healthz")
def healthz() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/v1/limits", response_model=ClientLimits, tags=["cases"])
def limits(request: Request) -> ClientLimits:
    """How many hashes one request and one case may carry: the page reads this instead of
    keeping its own copy of the server's settings."""
    settings = request.app.state.settings
    return ClientLimits(max_hashes_per_request=settings.max_hashes_per_request,
                        max_hashes_per_case=settings.max_hashes_per_case,
                        max_value_bytes_per_request=settings.max_value_bytes_per_request,
                        max_value_bytes_per_case=settings.max_value_bytes_per_case)


@router.get("/readyz", responses={503: {"description": "The database is not reachable, "
                                                    "or cannot be written (read-only)"}})
def readyz(request: Request):
    """Readiness: the database answers and takes writes (a load balancer should route here only
    when 200). Checked afresh on every call, so it recovers by itself when the database does."""
    busy = match_index_ready(request.app)  # the match index is still being built at start-up
    if busy is not None:
        return JSONResponse(busy, 503)
    started = time.perf_counter()
    database = request.app.state.database
    # Sessions opened while the database was read-only stay so after it is writable again, and
    # background threads may have put such a session back in the pool after an earlier check
    # replaced it: a read-only answer replaces the pool and asks once more on a new session, so
    # the answer is about the database, not about a stale session.
    for _ in range(2):
        try:
            with database.read() as session:
                read_only = _session_is_read_only(database, session)
        except Exception:  # noqa: BLE001 - any failure means "not ready", and says no more
            return JSONResponse({"status": "unavailable"}, status_code=503)
        if not read_only:
            return {"status": "ready",
                    "database_ms": round((time.perf_counter() - started) * 1000, 2)}
        database.engine.dispose()
    return JSONResponse({"status": "read_only"}, status_code=503)


def _session_is_read_only(database, session) -> bool:
    """On PostgreSQL the session says whether it may write (not if the database is read-only by
    default_transaction_read_only, or a standby in recovery). Nothing is written."""
    return database.is_postgres and session.execute(
        text("SHOW transaction_read_only")).scalar() == "on"


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
                       401: {"description": "HASHGUARD_METRICS_TOKEN is set and the request "
                                            "did not carry it as a bearer token"}})
def metrics(request: Request) -> Response:
    """Prometheus metrics of this process. With HASHGUARD_METRICS_TOKEN set, only for a scraper
    sending `Authorization: Bearer <token>` (the deployment's proxy never serves it at all)."""
    expected = request.app.state.settings.metrics_token
    if expected and not _same_secret(request.headers.get("authorization", ""), f"Bearer {expected}"):
        return JSONResponse({"error": {"code": "metrics_token_required",
                                       "message": "send the metrics token as a bearer token"}},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    registry = request.app.state.metrics
    try:
        with request.app.state.database.read() as session:
            registry.autovacuum_off.set(int(db_health.autovacuum_off(session.connection())))
    except Exception as failed:  # noqa: BLE001 - the scrape still answers; /readyz tells the rest
        log.warning("autovacuum check failed at scrape: %s", type(failed).__name__)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)


def _same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of fixed-length digests (the lengths of the two say nothing)."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())


@router.get("/.well-known/hashguard-webhook-key")
def webhook_key(request: Request) -> dict:
    """The Ed25519 public key (raw, base64url) that signs webhook deliveries."""
    # `public_key` as before (the key of Hashguard-Signature); during and after a rotation also
    # every key with its validity and the changes signed by the old keys (partners/webhooks.py).
    return request.app.state.webhook_signer.published()
