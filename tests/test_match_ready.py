"""The match index is built at start-up by the process's follower, not by the first match request
(issue 22): /readyz and match answer 503 until it is built, a match never waits for the build,
and once built the follower keeps it current within a second (adds and removals)."""
from __future__ import annotations

import time

from fastapi.testclient import TestClient

from store.db import Database
from tests.hashes import BRIDGE, C_PNG, Q0122
from tests.helpers import bearer, new_case, share, unshare, withdraw

QUERY = {"hashes": [{"signal_type": "pdq", "value": BRIDGE}]}


def _matches(client, key, value=BRIDGE):
    response = client.post("/v1/partner/match", headers=bearer(key),
                           json={"hashes": [{"signal_type": "pdq", "value": value}]})
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["matches"]


def test_not_ready_and_match_refused_while_the_index_builds(app, make_partner, database_url):
    key = make_partner("a", "adult")
    share(Database(database_url), [("pdq", BRIDGE)])
    follower = app.state.match_follower
    follower.step_lock.acquire()  # the documented seam: holds the start-up build
    try:
        with TestClient(app) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            started = time.monotonic()
            refused = client.post("/v1/partner/match", headers=bearer(key), json=QUERY)
            assert time.monotonic() - started < 1.0  # answered at once, not after the build
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "index_not_ready"
            assert refused.headers["Retry-After"] == "1"
            follower.step_lock.release()
            assert follower.wait_ready(10)
            assert client.get("/readyz").status_code == 200
            assert [m["value"] for m in _matches(client, key)] == [BRIDGE]
    finally:
        if follower.step_lock.locked():
            follower.step_lock.release()


def test_index_is_built_at_start_up_without_a_match_request(app, database_url):
    db = Database(database_url)
    share(db, [("pdq", BRIDGE), ("pdq", C_PNG)])
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.02)
        # Built with no request having asked for it.
        index = app.state.match_index
        assert index.applied_seq >= 2
        assert [v for _, v, _ in index.match("pdq", BRIDGE, ["adult"])] == [BRIDGE]


def test_submit_then_match_at_once_and_withdrawal(client, make_partner):
    """A submit served by this process is matchable by the very next match (the follower is
    woken and the match waits for that pass), and so is its withdrawal."""
    key = make_partner("a", "adult")
    case = new_case(client, [BRIDGE])
    assert [m["value"] for m in _matches(client, key)] == [BRIDGE]
    withdraw(client, case)
    assert _matches(client, key) == []


def _poll_until(client, key, value, predicate, timeout=1.0) -> float:
    started = time.monotonic()
    while not predicate(_matches(client, key, value)):
        assert time.monotonic() - started < timeout, "not applied within a second"
        time.sleep(0.02)
    return time.monotonic() - started


def test_another_process_commit_is_matchable_within_a_second(client, make_partner, database_url):
    """A commit this process was not told about (another worker, the CLI): PostgreSQL's LISTEN
    wakes the follower; SQLite has none, and the periodic re-check covers it."""
    key = make_partner("a", "adult")
    other = Database(database_url)  # another writer: this app's notifier is not called
    ids = share(other, [("pdq", Q0122)])
    _poll_until(client, key, Q0122, lambda found: [m["value"] for m in found] == [Q0122])
    unshare(other, ids)
    _poll_until(client, key, Q0122, lambda found: found == [])
    other.dispose()


def test_follower_stops_with_the_app_even_while_held(app):
    follower = app.state.match_follower
    follower.step_lock.acquire()
    try:
        started = time.monotonic()
        with TestClient(app):
            pass
        assert time.monotonic() - started < 5
        assert follower._thread is None
    finally:
        follower.step_lock.release()
