"""The two storage backends follow the same write rules: random sequences of submits, adds,
withdrawals, disputes and operator decisions leave the same rows and the same change log on
SQLite and on PostgreSQL.

Why a property test: the rules (keep the best quality, share only hashes in state `ok`, log one
entry per change of the shared set, `also_shared`) are written once per backend — Core
statements for SQLite, SQL functions for PostgreSQL (store/backends/) — and a hand-written case
only checks the rows its author thought of. Hypothesis draws the sequences; each one runs on a
fresh database of each kind and the two end states are compared field for field.
"""
from __future__ import annotations

import shutil
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from hashing.signals import Signal
from partners import disputes, review
from store import cases as store_cases
from store import migrate
from store.db import Database
from store.models import PATHWAYS, Case
from tests.helpers import admin_connection, pg_url

# A small pool, so that sequences keep meeting the same values (duplicates, re-shares, a value
# in two pathways, a withdrawn value still held by another case).
POOL = [Signal("pdq", f"{n:02x}" * 32, None) for n in range(1, 7)] + [
    Signal("video_md5", f"{n:02x}" * 16, None) for n in range(1, 4)]

hash_choice = st.integers(0, len(POOL) - 1)
quality = st.one_of(st.none(), st.integers(0, 100))
signals = st.lists(st.tuples(hash_choice, quality), min_size=1, max_size=5)
operation = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(PATHWAYS), signals, st.booleans()),
    st.tuples(st.just("add"), st.integers(0, 20), signals),
    st.tuples(st.just("withdraw"), st.integers(0, 20)),
    st.tuples(st.just("quarantine"), hash_choice),
    st.tuples(st.just("restore"), hash_choice),
    st.tuples(st.just("reject"), hash_choice),
    st.tuples(st.just("deny"), hash_choice),
)


def _signal(index: int, q: int | None) -> Signal:
    base = POOL[index]
    # PDQ carries a quality; exact hashes never do.
    return Signal(base.signal_type, base.value, q if base.signal_type == "pdq" else None)


def _hash_id(session, index: int) -> int | None:
    base = POOL[index]
    return session.scalar(text("SELECT id FROM hashes WHERE digest = :d"),
                          {"d": store_cases.hash_digest(base.signal_type, base.value)})


def run(db: Database, operations) -> None:
    cases: list[int] = []  # ids in creation order
    for op in operations:
        kind = op[0]
        if kind == "submit":
            _, pathway, chosen, batched = op
            sigs = [_signal(i, q) for i, q in chosen]
            if batched:  # PostgreSQL: through the submit batcher's one-statement path
                cases.append(store_cases.submit(db, pathway, sigs, bytes(32)).id)
            else:
                with db.transaction() as session:
                    cases.append(store_cases.create_case(session, pathway, sigs, bytes(32)).id)
        elif kind == "add" and cases:
            _, which, chosen = op
            with db.transaction() as session:
                case = session.get(Case, cases[which % len(cases)])
                if case.status == "active":
                    store_cases.add_hashes(session, case, [_signal(i, q) for i, q in chosen])
        elif kind == "withdraw" and cases:
            with db.transaction() as session:
                store_cases.withdraw(session, session.get(Case, cases[op[1] % len(cases)]))
        elif kind in ("quarantine", "restore", "reject"):
            with db.transaction() as session:
                hash_id = _hash_id(session, op[1])
                if hash_id is None:
                    continue
                if kind == "quarantine":  # as enough disputes would, in every pathway
                    disputes.set_held(session, [(hash_id, p) for p in PATHWAYS], held=True)
                else:
                    getattr(review, kind)(session, hash_id)
        elif kind == "deny":
            with db.transaction() as session:
                review.deny(session, POOL[op[1]].signal_type, POOL[op[1]].value)


def snapshot(db: Database) -> dict:
    """Everything the write rules decide, with ids replaced by stable names (values, case order)."""
    with db.read() as session:
        q = lambda sql: [tuple(r) for r in session.execute(text(sql))]  # noqa: E731
        return {
            "cases": q("SELECT pathway, status, opened_event FROM cases ORDER BY id"),
            "hashes": q("SELECT signal_type, value, quality, state, held_pathways FROM hashes "
                        "ORDER BY value"),
            "links": q("SELECT c.id - (SELECT min(id) FROM cases), h.value, l.quality "
                       "FROM case_hashes l "
                       "JOIN cases c ON c.id = l.case_id JOIN hashes h ON h.id = l.hash_id "
                       "ORDER BY 1, 2"),
            "shared": q("SELECT h.value, s.pathway FROM shared_hashes s "
                        "JOIN hashes h ON h.id = s.hash_id ORDER BY 1, 2"),
            "log": q("SELECT op, signal_type, value, quality, pathway, also_shared FROM change_log "
                     "ORDER BY seq"),
            "log_positions": q("SELECT count(*), count(DISTINCT seq), "
                               "coalesce(max(seq) - min(seq) + 1, 0) FROM change_log"),
        }


TABLES = ("change_log", "shared_hashes", "case_hashes", "feedback", "disputes", "cases", "hashes")


@pytest.fixture(scope="module")
def backends(tmp_path_factory, request):
    """A PostgreSQL database (emptied before each example) and a migrated SQLite file (copied
    fresh for each example)."""
    template, created = request.getfixturevalue("postgres_template")
    name = f"hashguard_agree_{uuid.uuid4().hex[:8]}"
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    created.append(name)
    postgres = Database(pg_url(name))
    sqlite_template = tmp_path_factory.mktemp("agree") / "template.db"
    migrate.upgrade(f"sqlite:///{sqlite_template}")
    yield postgres, sqlite_template
    postgres.dispose()


def _fresh_postgres(db: Database) -> None:
    with db.transaction() as session:
        session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        session.execute(text("ALTER SEQUENCE change_log_position RESTART"))
        session.execute(text("ALTER SEQUENCE hashguard_events RESTART WITH 2"))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=1, max_size=12))
def test_both_backends_leave_the_same_rows_and_log(backends, tmp_path_factory, operations):
    postgres, sqlite_template = backends
    _fresh_postgres(postgres)
    sqlite_file = tmp_path_factory.mktemp("example") / "hashguard.db"
    shutil.copy(sqlite_template, sqlite_file)
    sqlite = Database(f"sqlite:///{sqlite_file}")
    try:
        run(postgres, operations)
        run(sqlite, operations)
        on_postgres, on_sqlite = snapshot(postgres), snapshot(sqlite)
    finally:
        sqlite.dispose()
    assert on_postgres == on_sqlite
    count, distinct, span = on_postgres["log_positions"][0]
    assert count == distinct == span, "log positions must be gap-free and unique"


def test_the_property_test_notices_a_difference(backends, tmp_path):
    """The comparison is not vacuous: the same operations with one quality changed differ."""
    postgres, sqlite_template = backends
    _fresh_postgres(postgres)
    shutil.copy(sqlite_template, tmp_path / "h.db")
    sqlite = Database(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        run(postgres, [("submit", "adult", [(0, 90)], False)])
        run(sqlite, [("submit", "adult", [(0, 91)], False)])
        assert snapshot(postgres) != snapshot(sqlite)
    finally:
        sqlite.dispose()


def test_postgres_runs_exactly_the_live_write_rules(backends):
    """No migration holds the only copy of live SQL: a migrated database's functions are the
    source in store/backends/pg_functions/, body for body."""
    import re

    from store.backends.pg_functions import live

    LIVE = live()

    postgres, _ = backends
    names = re.findall(r"CREATE OR REPLACE FUNCTION (\w+)\(", LIVE.create)
    bodies = re.findall(r"\$\$(.*?)\$\$", LIVE.create, flags=re.S)
    assert tuple(names) == LIVE.names and len(bodies) == len(names)
    with postgres.read() as session:
        installed = dict(session.execute(text(
            "SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(:names)"),
            {"names": list(names)}).all())
    assert installed == dict(zip(names, bodies))
