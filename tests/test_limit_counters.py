"""The shared failure budgets (store/limits.py) on both databases, in process: two apps on one
database share them, only failures are written, rows expire and are swept, and a right token is
served while its reference is attacked (tests/test_shared_limits.py does the same with two real
server processes on PostgreSQL)."""
from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from api.app import create_app
from api.settings import Settings
from partners import admin
from store.db import Database
from store.limits import SharedLimits, budget
from tests.hashes import BRIDGE, C_PNG

PER_CASE = 4


def _app(database_url, tmp_path, **limits):
    limits = {"case_writes_per_hour_per_client": 0, "token_lookups_per_minute_per_client": 0,
              "token_lookups_per_minute_per_case": PER_CASE,
              "partner_key_failures_per_minute_per_client": 0, **limits}
    settings = Settings(database_url=database_url, data_dir=tmp_path, trust_forwarded_for=True,
                        **limits)
    return create_app(settings, run_migrations=False)


@pytest.fixture
def two_apps(database_url, tmp_path):
    """Two apps on one database and one data folder (one secret), like two processes."""
    apps = [_app(database_url, tmp_path), _app(database_url, tmp_path)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        yield apps, first, second
    for app in apps:
        app.state.database.dispose()


def _case(client) -> dict:
    answer = client.post("/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "pdq", "value": BRIDGE, "quality": 100}]})
    assert answer.status_code == 201
    return answer.json()


def _auth(token: str, address: str = "203.0.113.5") -> dict:
    return {"Authorization": f"Bearer {token}", "X-Forwarded-For": address}


def test_two_apps_on_one_database_share_a_reference_s_budget(two_apps):
    _, first, second = two_apps
    case = _case(first)
    statuses = [(first, second)[i % 2].get(f"/v1/cases/{case['case_ref']}",
                                           headers=_auth("wrong", f"203.0.113.{i}")).status_code
                for i in range(2 * PER_CASE)]
    assert statuses[:PER_CASE] == [404] * PER_CASE and set(statuses[PER_CASE:]) == {429}


def test_the_right_token_is_served_on_every_route_while_its_reference_is_attacked(two_apps):
    _, first, second = two_apps
    case = _case(first)
    ref = case["case_ref"]
    for _ in range(PER_CASE + 2):
        first.get(f"/v1/cases/{ref}", headers=_auth("wrong"))
    assert second.get(f"/v1/cases/{ref}", headers=_auth("wrong")).status_code == 429
    assert second.get(f"/v1/cases/{ref}", headers=_auth(case["token"])).status_code == 200
    added = second.post(f"/v1/cases/{ref}/hashes", headers=_auth(case["token"]), json={
        "hashes": [{"signal_type": "pdq", "value": C_PNG, "quality": 100}]})
    assert added.status_code == 200, added.text
    assert first.post(f"/v1/cases/{ref}/withdraw", headers=_auth("wrong")).status_code == 429
    withdrawn = first.post(f"/v1/cases/{ref}/withdraw", headers=_auth(case["token"]))
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"


def test_an_unknown_reference_is_charged_like_a_known_one(two_apps):
    """Else a 429 would tell which references exist."""
    _, first, _ = two_apps
    known = _case(first)["case_ref"]
    unknown = "HG-ZZZZ-ZZZZ" if known != "HG-ZZZZ-ZZZZ" else "HG-YYYY-YYYY"
    for ref in (known, unknown):
        statuses = [first.get(f"/v1/cases/{ref}", headers=_auth("wrong")).status_code
                    for _ in range(PER_CASE + 1)]
        assert statuses == [404] * PER_CASE + [429]


def test_a_right_token_writes_nothing_and_reads_no_budget(two_apps):
    apps, first, _ = two_apps
    case = _case(first)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_rest):
        statements.append(statement)

    engine = apps[0].state.database.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert first.get(f"/v1/cases/{case['case_ref']}",
                         headers=_auth(case["token"])).status_code == 200
        assert not [s for s in statements if "limit_counters" in s]
        assert first.get(f"/v1/cases/{case['case_ref']}",
                         headers=_auth("wrong")).status_code == 404
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [s for s in statements if "limit_counters" in s and "INSERT" in s]


def test_a_good_partner_key_is_never_charged_and_costs_one_read(database_url, tmp_path):
    app = _app(database_url, tmp_path, partner_key_failures_per_minute_per_client=3)
    with TestClient(app) as client:
        with app.state.database.transaction() as session:
            partner = admin.add_partner(session, "p", admin.parse_pathways("adult"))
            key = admin.create_key(session, partner, app.state.server_secret)
        statements: list[str] = []
        event.listen(app.state.database.engine, "before_cursor_execute",
                     lambda _c, _cu, statement, *_r: statements.append(statement))
        for _ in range(10):
            assert client.get("/v1/partner/hashes", headers=_auth(key)).status_code == 200
        budget_statements = [s for s in statements if "limit_counters" in s]
        assert len(budget_statements) == 10 and all(
            s.lstrip().upper().startswith("SELECT") for s in budget_statements)
    app.state.database.dispose()


def test_budgets_refill_expire_and_are_swept(database_url):
    db = Database(database_url)
    limits = SharedLimits(db, b"k" * 32)
    quick = budget("test/quick", 3, 0.6)  # 3 failures per 0.6 s: one back every 0.2 s
    assert budget("test/off", 0, 60) is None
    assert [limits.charge([(quick, "subject")]) for _ in range(5)] == [False] * 3 + [True] * 2
    with db.read() as session:
        assert limits.exhausted(session, quick, "subject")
        assert not limits.exhausted(session, quick, "someone else")
    time.sleep(0.25)  # one try refilled, not two
    assert [limits.charge([(quick, "subject")]) for _ in range(2)] == [False, True]
    time.sleep(0.7)  # whole again: a client that stops is forgiven one period later
    with db.read() as session:
        assert not limits.exhausted(session, quick, "subject")
    assert limits.sweep() == 1
    with db.read() as session:
        assert session.execute(text("SELECT count(*) FROM limit_counters")).scalar_one() == 0
    db.dispose()


def test_processes_agree_on_keys_only_under_the_same_secret(database_url):
    db = Database(database_url)
    spent = budget("test/keys", 1, 60)
    one, same, other = (SharedLimits(db, s) for s in (b"a" * 32, b"a" * 32, b"b" * 32))
    assert one.key(spent, "198.51.100.1") == same.key(spent, "198.51.100.1")
    assert one.key(spent, "198.51.100.1") != other.key(spent, "198.51.100.1")
    assert one.key(spent, "198.51.100.1") != one.key(budget("test/other", 1, 60), "198.51.100.1")
    # Any text a path or header can carry is a subject (a lone surrogate would fail UTF-8).
    assert len(one.key(spent, "HG-\udc80")) == len(one.key(spent, "ＨＧ-ÿ")) == 16
    db.dispose()
