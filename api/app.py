"""The FastAPI application factory: the one place where routes, errors and storage are wired."""
from __future__ import annotations

import asyncio
import gc
import os
from contextlib import asynccontextmanager
import sys
from pathlib import Path
from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import cases, docs_page, operations, startup, support_config
from api.idempotency_sweeper import IdempotencySweeper
from api.logs import RequestLog, configure_logging
from api.operations import Metrics
from api.body_guard import BodyGuard
from api.client_limits import client_address
from api.errors import install_error_handlers
from api.ratelimit import RateLimiter
from api.security_headers import SecurityHeaders
from api.submit_shortcut import SubmitShortcut
from api.token_failures import TokenFailureLimits
from api.settings import Settings
from partners import routes as partner_routes
from partners import stopncii, transparency
from partners.key_failures import KeyFailureLimit
from partners.match_follower import MatchIndexFollower
from partners.match_index import MatchIndex
from partners.wakeup import ChangeNotifier, PostgresListener
from partners.webhooks import WebhookDispatcher, WebhookSigner
from store import db_health
from store.db import Database, libpq_conninfo
from store.limits import SharedLimits, budget

# A source checkout serves ./web; an installed image points HASHGUARD_WEB_DIR at its copy.
WEB_DIR = Path(os.environ.get("HASHGUARD_WEB_DIR", Path(__file__).resolve().parents[1] / "web"))
# The page's HEIC decoder: the npm package libheif-js (package.json, installed by `npm ci`), served
# as installed under the page's own origin. Absent, the page says it cannot read HEIC (docs/web.md).
LIBHEIF_DIR = Path(os.environ.get(
    "HASHGUARD_LIBHEIF_DIR",
    Path(__file__).resolve().parents[1] / "node_modules" / "libheif-js" / "libheif-wasm"))

DESCRIPTION = """hashguard: privacy-preserving hash submission. People submit only hashes of their
images and videos (computed on their own device); partners pull them and report back.
No endpoint accepts image or video bytes: only `application/json` bodies are read."""


# Sync routes run on a thread pool. A thread returning from a database call must win the GIL
# back, and CPython's default switch interval (5 ms) made every round trip inside the
# change-log append lock cost up to 5 ms under load, capping submits near 120/s (bench/).
GIL_SWITCH_INTERVAL_S = 0.0005


def create_app(settings: Settings | None = None, run_migrations: bool = True) -> FastAPI:
    settings = settings or Settings()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    configure_logging(settings.log_level)
    database_url = settings.resolved_database_url()
    database = Database(database_url)
    # Migrates, then refuses to start on a secret or key the database does not know (issue 23).
    established = startup.prepare(settings, database, run_migrations)
    health = None
    if run_migrations:
        # Warns when autovacuum is off, analyzes stale tables, guards positions after a restore.
        health = db_health.check(database_url, data_dir=settings.data_dir)
    notifier = ChangeNotifier()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        listener = None
        conninfo = (libpq_conninfo(database_url)
                    if database_url.startswith(("postgres", "postgresql")) else None)
        if conninfo is not None:
            listener = PostgresListener(conninfo, notifier)
            listener.start()
        dispatcher = WebhookDispatcher(_app.state.database, _app.state.webhook_signer, notifier,
                                       conninfo=conninfo)
        dispatcher.start()
        # Builds the match index now, not on the first match request; /readyz waits for it.
        follower = _app.state.match_follower
        follower.start()
        tree_builder = _app.state.transparency
        if tree_builder.enabled:
            tree_builder.start()
        sweeper = _app.state.idempotency_sweeper
        sweeper.start()
        if settings.tune_garbage_collector:
            _settle_garbage_collector()
        yield
        if tree_builder.enabled:
            await asyncio.to_thread(tree_builder.stop)
        await asyncio.to_thread(sweeper.stop)
        await asyncio.to_thread(follower.stop)
        dispatcher.stop()
        if listener is not None:
            listener.stop()
        if health is not None and health.keeper is not None:
            await asyncio.to_thread(health.keeper.stop)  # with a last high-water mark
        _app.state.database.dispose()

    # FastAPI's own /docs and /redoc load their scripts from a CDN, which the pages' CSP
    # blocks: api/docs_page.py serves /docs from installed files instead.
    app = FastAPI(title="hashguard", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.database = database
    app.state.server_secret = established.secret  # with the earlier versions it still accepts
    app.state.signing_keys = established.keys  # shared by every host: from the database or env
    app.state.secret_version = established.version
    # Deletes Idempotency-Key records once their replay window is over (issue 21, finding 4).
    app.state.idempotency_sweeper = IdempotencySweeper(app.state.database,
                                                       settings.idempotency_window_seconds)
    # Load shedding per process (in memory): a cap on token lookups, right or wrong.
    app.state.token_lookup_limits = SimpleNamespace(
        overall=RateLimiter(settings.token_lookups_per_second_overall,
                            settings.token_lookups_per_second_overall),
    )
    # Failure budgets shared by every process through the database (store/limits.py).
    shared_limits = SharedLimits(app.state.database, app.state.server_secret)
    app.state.token_failures = TokenFailureLimits(
        shared_limits,
        per_case=budget("case-token/case", settings.token_lookups_per_minute_per_case, 60),
        per_client=budget("case-token/client", settings.token_lookups_per_minute_per_client, 60))
    app.state.client_limits = SimpleNamespace(
        case_writes=_per_client(settings.case_writes_per_hour_per_client, 3600),
        value_bytes=_per_client(settings.value_bytes_per_hour_per_client, 3600),
    )
    app.state.partner_key_failures = KeyFailureLimit(
        shared_limits,
        budget("partner-key/client", settings.partner_key_failures_per_minute_per_client, 60),
        client_address)
    app.state.partner_rate_limit = RateLimiter(2 * settings.partner_requests_per_second,
                                               settings.partner_requests_per_second)
    app.state.match_index = MatchIndex()
    # Push wake-ups (long-poll, webhooks); the change log stays the source of truth.
    app.state.notifier = notifier
    app.state.match_follower = MatchIndexFollower(app.state.match_index, app.state.database,
                                                  notifier)
    # With the database and secret: it follows `hashguard webhooks rotate-key` without a restart.
    app.state.webhook_signer = WebhookSigner(settings.data_dir, established.keys["webhook"],
                                             app.state.database, established.secret,
                                             established.version)
    app.state.notify_change_log = notifier.notify

    install_error_handlers(app)

    app.state.metrics = Metrics()
    app.include_router(operations.router)
    app.include_router(cases.router)
    app.include_router(partner_routes.router)
    stopncii.install(app)
    transparency.install(app)
    docs_page.install(app)

    # The self-submission page (web/), last so that API routes take precedence.
    if WEB_DIR.is_dir():
        support_config.check_file(WEB_DIR / "support.json")  # refuse to start with a broken list
        if LIBHEIF_DIR.is_dir():
            app.mount("/vendor/libheif", StaticFiles(directory=LIBHEIF_DIR), name="libheif")
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")

    # Each wraps the ones added before it (the request log is outermost): headers on every
    # answer, including the guard's refusals; the submit shortcut sees only guarded bodies. The
    # guard answers its 413/415 itself on every route, also when a streamed body is refused
    # after the app began reading it (api/body_guard.py).
    app.add_middleware(SubmitShortcut, route=cases.submit_route(),
                       exception_handlers=app.exception_handlers)
    app.add_middleware(BodyGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLog, metrics=app.state.metrics)
    return app


# Measured under bench/submit_bench.py (gc.callbacks in a worker): with CPython's defaults the
# collector took 15 % of a busy worker's CPU, most of it in full collections that walk every
# object the process made while starting (routes, models, SQLAlchemy metadata, numpy): ~100 ms
# each, a latency spike for every request in flight. Frozen, those objects are never walked
# again; the larger first threshold makes young collections rarer (a request allocates
# thousands of short-lived objects, nearly all freed by reference counting, not by the GC).
GC_THRESHOLDS = (20_000, 20, 20)


def _settle_garbage_collector() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _per_client(count: int, period_seconds: int) -> RateLimiter | None:
    return RateLimiter(count, count / period_seconds) if count > 0 else None
