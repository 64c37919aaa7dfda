"""Database fixtures: every database test runs on real PostgreSQL and on SQLite.

PostgreSQL: one throwaway database per test run, migrated once, used as a template so each test
gets a fresh copy in milliseconds; all are dropped at the end. The server is found through
HASHGUARD_TEST_POSTGRES (default: postgresql://postgres@127.0.0.1:5432/test).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from store import migrate
from tests.helpers import ADMIN_URL, admin_connection, pg_url, served_url

# The suite starts hundreds of apps in one process: freezing each one's heap would keep it
# alive for good (tests/test_gc_tuning.py covers the setting itself).
os.environ.setdefault("HASHGUARD_TUNE_GARBAGE_COLLECTOR", "0")
RUN_ID = uuid.uuid4().hex[:8]

# Test kinds, so that `make test-fast` can leave out what takes minutes (`make test` runs all):
#   browser      tests/web: the page in headless Chromium and its JS under Node
#   reliability  tests/reliability: load, crash, fuzzing, properties against real servers
#   peers        tests/peers: the real HMA and python-threatexchange against hashguard
#   slow         anything over ~20 s on this 2-core machine, marked where it is defined
_KIND_BY_FOLDER = {"web": "browser", "reliability": "reliability", "peers": "peers"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = item.path.relative_to(config.rootpath).parts
        if len(parts) > 2 and parts[0] == "tests" and parts[1] in _KIND_BY_FOLDER:
            item.add_marker(_KIND_BY_FOLDER[parts[1]])
    # Long files first: `make test` runs files on two workers (pytest-xdist, one file per worker
    # at a time, --no-loadscope-reorder keeps this order), and a worker that draws a 5-minute
    # browser file last leaves the other core idle. Stable: same order in every worker.
    long_files = {item.path for item in items
                  if _LONG_KINDS & {mark.name for mark in item.iter_markers()}}
    items.sort(key=lambda item: item.path not in long_files)


_LONG_KINDS = {"browser", "peers", "reliability", "slow"}


def _without_playwright_loop(item):
    """Playwright's sync API (tests/web, one browser per worker for the whole run) leaves its
    event loop marked as running in the main thread after its first use. A later test in the
    same worker that runs its own loop (asyncio.run or asyncio.Runner: tests/reliability/asgi.py,
    the shortcut, equivalence and body-guard tests, in the test or in its fixtures' setup and
    teardown) would fail with "cannot be called from a running event loop" only because of the
    order the worker drew its files in. Outside the browser tests the mark is lifted for each
    phase of the test and put back after."""
    loop = asyncio.events._get_running_loop()
    if loop is None or "browser" in item.keywords:
        return (yield)
    asyncio.events._set_running_loop(None)
    try:
        return (yield)
    finally:
        asyncio.events._set_running_loop(loop)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _without_playwright_loop(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _without_playwright_loop(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    return (yield from _without_playwright_loop(item))


@pytest.fixture(scope="session")
def postgres_template():
    try:
        conn = admin_connection()
    except psycopg.OperationalError as down:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL}: {down}", pytrace=False)
    template = f"hashguard_tpl_{RUN_ID}"
    with conn:
        conn.execute(f'CREATE DATABASE "{template}"')
    migrate.upgrade(pg_url(template))
    created = [template]
    yield template, created
    with admin_connection() as conn:
        for name in reversed(created):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hashguard.db'}"
        migrate.upgrade(url)
        return url
    template, created = request.getfixturevalue("postgres_template")
    name = f"hashguard_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    created.append(name)
    return pg_url(name)


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    # Per-client limits off: every TestClient request comes from one address; the limits have
    # their own tests (tests/test_abuse_limits.py).
    return Settings(database_url=database_url, data_dir=tmp_path,
                    case_writes_per_hour_per_client=0, token_lookups_per_minute_per_client=0,
                    partner_key_failures_per_minute_per_client=0)


@pytest.fixture
def app(settings):
    application = create_app(settings, run_migrations=False)
    yield application
    application.state.database.dispose()


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        # The match index builds in the background at start-up (partners/match_follower.py);
        # tests start from a built one (tests/test_match_ready.py covers the wait itself).
        assert app.state.match_follower.wait_ready(30), "match index not built"
        yield test_client


@pytest.fixture
def make_partner(app):
    """Register a partner straight in the store; returns its freshly created key."""
    from partners import admin

    def make(name: str, pathways: str = "adult,under18_at_capture") -> str:
        with app.state.database.transaction() as session:
            partner = admin.add_partner(session, name, admin.parse_pathways(pathways))
            return admin.create_key(session, partner, app.state.server_secret)

    return make


@pytest.fixture
def live_server(app):
    """The app under a real uvicorn on a free loopback port (for clients that need real HTTP)."""
    with served_url(app) as url:
        yield url


@contextlib.contextmanager
def served_over_http(app, wait_for_match_index: bool = True):
    """The app served as `hashguard serve` serves it (api/serving.py: uvicorn, its read
    timeouts, no proxy headers, no access log), on a free loopback port in a thread; yields an
    httpx.Client speaking real HTTP to it, with the get/post interface the tests use.

    Attack tests use this rather than TestClient (issue 21: "against a real server"): the
    requests cross a socket, uvicorn's h11 parser and the ASGI server, and a server error comes
    back as the 500 an attacker would see instead of being raised into the test.
    wait_for_match_index=False skips the wait for tests that never match (it costs a start-up's
    index build per app on a loaded machine)."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from api.serving import TimedH11Protocol, timeouts

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_config=None,
                            http=TimedH11Protocol, proxy_headers=False, server_header=False)
    config.hashguard_read_timeouts = timeouts(app.state.settings)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        # As the `client` fixture: start from a built match index (tests/test_match_ready.py).
        if wait_for_match_index:
            assert app.state.match_follower.wait_ready(30), "match index not built"
        # Generous timeout: a TMK match or a page of TMK values takes seconds on a loaded box.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def http_client(app):
    """httpx.Client to the `app` fixture under a real uvicorn (served_over_http)."""
    with served_over_http(app) as http:
        yield http


@pytest.fixture
def serve_over_http():
    """For tests that build their own app: `with serve_over_http(app) as http: ...`."""
    return served_over_http
