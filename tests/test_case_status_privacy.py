"""A case shows only its own story (issue: an abuser who has the image). An abuser who submits
the image's hash in a fresh case must not learn whether someone reported it before: the status of
a case holding an already-reported value reads exactly like that of a case holding a new one, at
creation and through the same later pulls and reports. Every request crosses real HTTP to the app
under uvicorn (tests/conftest.py, served_over_http), on PostgreSQL and SQLite."""
from __future__ import annotations

from tests.hashes import BRIDGE, C_PNG
from tests.helpers import bearer, new_case, pull_all, withdraw


def status(http_client, case) -> dict:
    response = http_client.get(f"/v1/cases/{case['case_ref']}", headers=bearer(case["token"]))
    assert response.status_code == 200, response.text
    body = response.json()
    for field in ("case_ref",):
        body.pop(field)
    for item in body["hashes"]:
        item.pop("value")  # the one field that differs by construction
    return body


def report(http_client, key, value, action):
    response = http_client.post("/v1/partner/feedback", headers=bearer(key), json={"feedback": [
        {"signal_type": "pdq", "value": value, "action": action}]})
    assert response.status_code == 200 and response.json()["accepted"] == 1, response.text


def test_a_previously_reported_value_reads_like_a_new_one(http_client, make_partner, monkeypatch):
    from partners import feed

    # Every pull is recorded (in service, at most every few seconds per partner: same for all).
    monkeypatch.setattr(feed, "ACKNOWLEDGE_EVERY_SECONDS", 0)
    platforms = [make_partner(f"platform{i}", "adult") for i in range(3)]
    # The victim's case, weeks ago: pulled by three platforms, removed by one, matched by two,
    # and stored with a better quality than the abuser's copy gives.
    new_case(http_client, [BRIDGE], quality=100)
    for key in platforms:
        pull_all(http_client, key)
        pull_all(http_client, key)
    report(http_client, platforms[0], BRIDGE, "removed")
    report(http_client, platforms[1], BRIDGE, "matched")
    report(http_client, platforms[2], BRIDGE, "matched")

    # The abuser: one fresh case with the image's hash, one with a never-seen value.
    seen = new_case(http_client, [BRIDGE], quality=60)
    unseen = new_case(http_client, [C_PNG], quality=60)
    assert status(http_client, seen) == status(http_client, unseen)

    for key in platforms:  # the same pulls reach both
        pull_all(http_client, key)
        pull_all(http_client, key)
    assert status(http_client, seen) == status(http_client, unseen)

    for value in (BRIDGE, C_PNG):  # and the same reports
        report(http_client, platforms[1], value, "removed")
    after = status(http_client, seen)
    assert after == status(http_client, unseen)
    assert after["hashes"][0]["reports"]["removed"] == 1
    assert after["hashes"][0]["reports"]["pulled"] == 3


def test_pulled_counts_the_page_a_partner_was_sent(http_client, make_partner, monkeypatch):
    """One pull that returns the case's hash counts it as pulled: the acknowledgement is what the
    partner was sent, not the cursor it came with (which left a quiet feed's newest hashes never
    counted)."""
    from partners import feed

    monkeypatch.setattr(feed, "ACKNOWLEDGE_EVERY_SECONDS", 0)
    key = make_partner("platform", "adult")
    case = new_case(http_client, [BRIDGE])
    response = http_client.get("/v1/partner/hashes", headers=bearer(key))
    assert [e["value"] for e in response.json()["entries"]] == [BRIDGE]
    assert status(http_client, case)["hashes"][0]["reports"]["pulled"] == 1


def test_log_times_are_to_the_hour_like_case_times(http_client, app, make_partner):
    """A case says only the hour it was opened; its `add` entries must not say the second."""
    from sqlalchemy import text

    key = make_partner("platform", "adult")
    case = new_case(http_client, [BRIDGE])
    withdraw(http_client, case)
    entries, _ = pull_all(http_client, key)
    assert [e["op"] for e in entries] == ["add", "remove"]
    assert all(e["logged_at"] % 3600 == 0 for e in entries)
    with app.state.database.read() as session:
        stored = session.scalars(text("SELECT logged_at FROM change_log")).all()
    assert stored and all(t % 3600 == 0 for t in stored)
