"""End to end on PostgreSQL: 10,000 submissions and 1,000 withdrawals in both pathways, with the
verifier of a partner entitled to both (`hashguard transparency verify`, over HTTP against a real
server: both pathways' trees) run every 500 operations; all pass. Then a row altered directly in
the database fails the next verification.

The operations go through the store's case functions (store/cases.py) in transactions of 50,
which log exactly what the HTTP routes log, rather than 11,000 HTTP calls.
"""
from __future__ import annotations

import hashlib
import os
import random

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from hashing.signals import Signal
from store import cases as store_cases
from store.models import ChangeLogEntry

SUBMISSIONS, WITHDRAWALS, VERIFY_EVERY, BATCH = 10_000, 1_000, 500, 50


def pdq(n: int) -> str:
    return hashlib.sha256(f"e2e {n}".encode()).hexdigest()


def verify(server: str, state_file, key: str, *extra: str):
    from hashing.cli import app as cli_app
    from partner_tools.cli import register

    register(cli_app)  # what the `partner` entry point does in an install with the partner extra
    return CliRunner().invoke(cli_app, ["transparency", "verify", "--server", server, "--state",
                                        str(state_file), "--key", key, *extra])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_verifier_passes_through_11000_operations_then_catches_an_altered_row(
        database_url, app, live_server, make_partner, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("the end-to-end run is specified on PostgreSQL")
    database, builder = app.state.database, app.state.transparency
    key = make_partner("auditor", "adult,under18_at_capture")
    state_file = tmp_path / "verifier.json"
    rng = random.Random(11)
    # 10 submissions then 1 withdrawal of an earlier case, 1,000 times.
    operations = []
    for n in range(SUBMISSIONS):
        operations.append(("submit", n))
        if n % 10 == 9:
            operations.append(("withdraw", None))
    open_cases: list[int] = []
    verifications = 0

    for start in range(0, len(operations), BATCH):
        with database.transaction() as session:
            for kind, n in operations[start:start + BATCH]:
                if kind == "submit":
                    pathway = "under18_at_capture" if n % 7 == 0 else "adult"
                    case = store_cases.create_case(session, pathway, [Signal("pdq", pdq(n), 100)],
                                                   os.urandom(32))
                    open_cases.append(case.id)
                else:
                    case_id = open_cases.pop(rng.randrange(len(open_cases)))
                    store_cases.withdraw(session, session.get(store_cases.Case, case_id))
        done = start + BATCH
        if done % VERIFY_EVERY == 0 or done >= len(operations):
            builder.catch_up()  # what the background builder does within a second
            result = verify(live_server, state_file, key)
            assert result.exit_code == 0, result.output
            verifications += 1

    assert verifications == len(operations) // VERIFY_EVERY
    with database.read() as session:
        logged = dict(session.execute(select(ChangeLogEntry.pathway, func.count())
                                      .group_by(ChangeLogEntry.pathway)).all())
    assert sum(logged.values()) == SUBMISSIONS + WITHDRAWALS
    output = verify(live_server, state_file, key).output
    for pathway, count in logged.items():
        assert f"{pathway} tree of {count} entries" in output

    # New entries arrive; one of them is altered in the database before the next verification.
    with database.transaction() as session:
        for n in range(SUBMISSIONS, SUBMISSIONS + 20):
            store_cases.create_case(session, "adult", [Signal("pdq", pdq(n), 100)], os.urandom(32))
    builder.catch_up()
    with database.transaction() as session:
        session.execute(text("UPDATE change_log SET value = :forged WHERE value = :logged"),
                        {"forged": pdq(-1), "logged": pdq(SUBMISSIONS + 7)})
    result = verify(live_server, state_file, key)
    assert result.exit_code == 1
    assert "verification FAILED" in result.output and "altered" in result.output

    # An entry verified long ago, altered: `--full` rechecks every entry and catches it too.
    with database.transaction() as session:
        session.execute(text("UPDATE change_log SET value = :logged WHERE value = :forged"),
                        {"forged": pdq(-1), "logged": pdq(SUBMISSIONS + 7)})
    assert verify(live_server, state_file, key).exit_code == 0
    with database.transaction() as session:
        session.execute(text("UPDATE change_log SET op = 'remove' WHERE seq = 123"))
    assert verify(live_server, state_file, key, "--full").exit_code == 1
