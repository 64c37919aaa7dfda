"""Disputes that a minority cannot abuse (issue: hostile partners). Each test performs the attack
a red team performed with only partner keys, over real HTTP against the app under uvicorn
(tests/conftest.py, served_over_http) on PostgreSQL and SQLite. The operator's side (registering
partners, review decisions) runs in process or through the CLI, as the operator's would.

The rules under test (partners/disputes.py): a dispute only ever affects pathways the disputing
partner is entitled to; quarantining a (hash, pathway) takes disputes from distinct partners made
since its last restore; each partner's disputes act only within its budget, past it they wait
for the operator; a restore is not undone by the same partners disputing again.
"""
from __future__ import annotations

import random
import time

import pytest

from api.settings import Settings
from partners import review
from tests.helpers import bearer, new_case, pull_all

BUDGET = 5  # per partner per day, small so the tests are quick


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path,
                    case_writes_per_hour_per_client=0, token_lookups_per_minute_per_client=0,
                    partner_requests_per_second=100_000, dispute_budget_per_day=BUDGET)


def values(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        bits = rng.getrandbits(256)
        if 16 <= bits.bit_count() <= 240:
            out.append(f"{bits:064x}")
    return out


def dispute(http_client, key, hashes: list[str]) -> None:
    response = http_client.post("/v1/partner/feedback", headers=bearer(key), json={"feedback": [
        {"signal_type": "pdq", "value": v, "action": "not_violating"} for v in hashes]})
    assert response.status_code == 200, response.text


def shared_values(http_client, key) -> set[str]:
    """What a partner holds after applying every entry of its feed."""
    held: set[str] = set()
    entries, _ = pull_all(http_client, key)
    for entry in entries:
        (held.add if entry["op"] == "add" else held.discard)(entry["value"])
    return held


def test_two_partners_cannot_empty_the_list_past_their_budget(http_client, make_partner):
    listed = values(40, seed=1)
    for chunk in (listed[:20], listed[20:]):
        new_case(http_client, chunk)
    observer = make_partner("observer", "adult")
    first, second = make_partner("hostile1", "adult"), make_partner("hostile2", "adult")
    assert shared_values(http_client, observer) == set(listed)
    dispute(http_client, first, listed)
    dispute(http_client, second, listed)
    held = shared_values(http_client, observer)
    assert len(listed) - len(held) <= BUDGET, "more hashes left the list than the budget allows"
    metrics = http_client.get("/metrics").text
    assert f"hashguard_partner_disputes_queued_total {2 * (40 - BUDGET)}.0" in metrics


def test_over_budget_disputes_wait_for_the_operator_and_say_who(http_client, app, make_partner):
    listed = values(12, seed=2)
    new_case(http_client, listed)
    first, second = make_partner("hostile1", "adult"), make_partner("hostile2", "adult")
    dispute(http_client, first, listed)
    dispute(http_client, second, listed)
    with app.state.database.read() as session:
        summary = review.summary(session)
        queue = review.queue(session)
    assert {row.partner: row.queued for row in summary} == {"hostile1": 12 - BUDGET,
                                                            "hostile2": 12 - BUDGET}
    assert len(queue) == BUDGET
    assert all(set(item.disputed_by) == {"hostile1", "hostile2"} for item in queue)


def test_adult_partners_cannot_touch_the_under18_list(http_client, make_partner):
    value = values(1, seed=3)[0]
    new_case(http_client, [value], pathway="adult")
    new_case(http_client, [value], pathway="under18_at_capture")
    minors = make_partner("minors", "under18_at_capture")
    before, cursor = pull_all(http_client, minors)
    for name in ("hostile1", "hostile2"):
        dispute(http_client, make_partner(name, "adult"), [value])
    after, _ = pull_all(http_client, minors, cursor)
    assert after == [], "adult-only partners' disputes changed the under-18 list"
    adult = make_partner("adultwatcher", "adult")
    assert value not in shared_values(http_client, adult)  # the adult list did act on them


def test_a_restore_survives_the_same_partners_disputing_again(http_client, app, make_partner):
    value = values(1, seed=4)[0]
    new_case(http_client, [value])
    observer = make_partner("observer", "adult")
    keys = [make_partner("hostile1", "adult"), make_partner("hostile2", "adult")]
    for key in keys:
        dispute(http_client, key, [value])
    assert value not in shared_values(http_client, observer)
    with app.state.database.transaction() as session:
        [item] = review.queue(session)
        assert review.restore(session, item.hash_id)
    assert value in shared_values(http_client, observer)
    for key in keys:  # the same partners, the same dispute, posted again
        dispute(http_client, key, [value])
    assert value in shared_values(http_client, observer), "a restored hash was re-quarantined"


def test_a_dispute_made_before_a_restore_does_not_count_after_it(http_client, app, make_partner):
    value = values(1, seed=5)[0]
    new_case(http_client, [value])
    observer = make_partner("observer", "adult")
    first, second = make_partner("hostile1", "adult"), make_partner("hostile2", "adult")
    dispute(http_client, first, [value])
    dispute(http_client, second, [value])
    with app.state.database.transaction() as session:
        [item] = review.queue(session)
        review.restore(session, item.hash_id)
    third = make_partner("third", "adult")
    dispute(http_client, third, [value])  # one fresh dispute: with old ones counted, that makes 3
    assert value in shared_values(http_client, observer)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.slow  # ~20 s
def test_bulk_restore_of_2000_hashes_takes_seconds(http_client, app, make_partner):
    listed = values(2000, seed=6)
    for start in range(0, 2000, 500):
        new_case(http_client, listed[start:start + 500])
    app.state.settings.dispute_budget_per_day = 10_000
    first, second = make_partner("hostile1", "adult"), make_partner("hostile2", "adult")
    dispute(http_client, first, listed)
    dispute(http_client, second, listed)
    observer = make_partner("observer", "adult")
    assert shared_values(http_client, observer) == set()
    started = time.perf_counter()
    with app.state.database.transaction() as session:
        restored = review.restore_by_partner(session, "hostile1")
    took = time.perf_counter() - started
    assert restored == 2000
    print(f"bulk restore of 2,000 hashes: {took:.2f} s")
    assert took < 10, f"bulk restore of 2,000 hashes took {took:.1f} s"
    assert shared_values(http_client, observer) == set(listed)


def test_the_operator_sees_who_and_decides_in_bulk_from_the_cli(http_client, app, make_partner,
                                                                 settings):
    from typer.testing import CliRunner

    from tests.helpers import cli_app

    listed = values(8, seed=7)
    new_case(http_client, listed)
    observer = make_partner("observer", "adult")
    first, second = make_partner("hostile1", "adult"), make_partner("hostile2", "adult")
    dispute(http_client, first, listed)
    dispute(http_client, second, listed)
    env = {"HASHGUARD_DATA_DIR": str(settings.data_dir)}
    url = ["--database-url", settings.database_url]
    run = lambda *args: CliRunner().invoke(cli_app(), [*args, *url], env=env)  # noqa: E731
    shown = run("review", "list")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert sum("by: hostile1,hostile2" in line for line in lines) == BUDGET
    assert "summary\thostile1\tacting today: 5\tqueued: 3\toverruled: 0" in lines
    assert run("review", "dismiss", "--partner", "hostile2").exit_code == 0
    restored = run("review", "restore", "--partner", "hostile1")
    assert restored.exit_code == 0 and f"restored {BUDGET} hashes" in restored.stdout
    assert shared_values(http_client, observer) == set(listed)
    accepted = run("review", "accept", "--partner", "hostile1")
    assert accepted.exit_code == 0, accepted.output
    # hostile1's 3 queued disputes now act, but hostile2's were dismissed: nothing is held.
    assert shared_values(http_client, observer) == set(listed)
    after = run("review", "list").stdout.splitlines()
    assert "summary\thostile2\tacting today: 0\tqueued: 0\toverruled: 8" in after


def _two_bursts(http_client, make_partner, settings, monkeypatch):
    """Two partners dispute two values two hours ago and two more a minute ago (every one held).
    Returns (early, burst, observer key, now, run: the operator's CLI)."""
    import types

    from typer.testing import CliRunner

    from partners import disputes
    from tests.helpers import cli_app

    early, burst = values(4, seed=8)[:2], values(4, seed=8)[2:]
    new_case(http_client, early + burst)
    observer = make_partner("observer", "adult")
    first, second = make_partner("hostile1", "adult"), make_partner("hostile2", "adult")
    now = int(time.time())
    clock = types.SimpleNamespace(time=lambda: now - 7200)  # the disputes' clock only
    monkeypatch.setattr(disputes, "time", clock)
    dispute(http_client, first, early)
    dispute(http_client, second, early)
    clock.time = lambda: now - 60
    dispute(http_client, first, burst)
    dispute(http_client, second, burst)
    assert shared_values(http_client, observer) == set()
    env = {"HASHGUARD_DATA_DIR": str(settings.data_dir)}
    url = ["--database-url", settings.database_url]
    run = lambda *args: CliRunner().invoke(cli_app(), [*args, *url], env=env)  # noqa: E731
    return early, burst, observer, now, run


def test_the_operator_restores_one_burst_by_time_window(http_client, make_partner, settings,
                                                        monkeypatch):
    """A burst is undone by partner and time window (`review restore --partner NAME --since T
    --until T`): the hashes disputed in the window come back, those disputed outside it stay
    held for the operator."""
    early, burst, observer, now, run = _two_bursts(http_client, make_partner, settings, monkeypatch)
    restored = run("review", "restore", "--partner", "hostile1", "--since", str(now - 3600),
                   "--until", str(now))
    assert restored.exit_code == 0 and "restored 2 hashes" in restored.stdout, restored.output
    assert shared_values(http_client, observer) == set(burst)
    restored = run("review", "restore", "--partner", "hostile2", "--until", str(now - 3600))
    assert restored.exit_code == 0 and "restored 2 hashes" in restored.stdout, restored.output
    assert shared_values(http_client, observer) == set(early + burst)


def test_the_operator_rejects_one_burst_by_partner_and_time_window(http_client, make_partner,
                                                                   settings, monkeypatch):
    """The disputes of a window were right (`review reject --partner NAME --since T`): those
    hashes stay out and leave the review list; the others still wait for a decision."""
    early, burst, observer, now, run = _two_bursts(http_client, make_partner, settings, monkeypatch)
    rejected = run("review", "reject", "--partner", "hostile1", "--since", str(now - 3600))
    assert rejected.exit_code == 0 and "rejected 2 hashes" in rejected.stdout, rejected.output
    listed = run("review", "list").stdout
    assert all(value[:64] in listed for value in early)
    assert not any(value[:64] in listed for value in burst)
    assert shared_values(http_client, observer) == set()
    for key in ("hostile1", "hostile2"):  # deciding again finds nothing left to decide
        assert run("review", "reject", "--partner", key, "--since",
                   str(now - 3600)).stdout.startswith("rejected 0 hashes")
