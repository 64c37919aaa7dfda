"""The write rules (store/backends/__init__.py) on PostgreSQL: calls to the SQL functions of
store/backends/pg_functions/, with array parameters.

Why arrays and one call per step: SQLAlchemy recompiles a multi-row INSERT ... VALUES for every
distinct row count (measured ~3 ms of CPU per submit, more than the database work itself), and
each extra round trip costs a thread-pool thread a trip through the GIL. These statements take
arrays, so their text never changes and psycopg prepares them once per connection.
"""
from __future__ import annotations

import time

import psycopg
from sqlalchemy import Connection, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from store.backends import HashRow, NewCase, NewHash
from store.models import Hash

_SHARE = text("""
    SELECT * FROM hashguard_share(:pathway, CAST(:ids AS bigint[]), CAST(:states AS text[]),
        CAST(:held AS text[]), CAST(:ids AS bigint[]), CAST(:types AS text[]), CAST(:hash_values AS text[]),
        CAST(:qualities AS smallint[]), :now, false)
""")

_UNSHARE = text("""
    SELECT * FROM hashguard_unshare(:pathway, CAST(:ids AS bigint[]), CAST(:types AS text[]),
        CAST(:hash_values AS text[]), CAST(:qualities AS smallint[]), :now, false)
""")

# Inside the caller's transaction: positions are drawn by the trigger at its COMMIT.
_LINK_AND_SHARE = text("""
    SELECT hashguard_link_and_share(CAST(:case_ids AS bigint[]), CAST(:pathways AS text[]),
        CAST(:types AS text[]), CAST(:hash_values AS text[]), CAST(:qualities AS smallint[]),
        CAST(:digests AS bytea[]), :now, false)
""")

# Run on the psycopg connection itself (see create_cases), hence psycopg's parameter style.
_CREATE_CASES = """
    SELECT hashguard_create_cases(
        %(refs)s::text[], %(pathways)s::text[], %(token_verifiers)s::bytea[], %(at)s,
        %(idempotency_digests)s::bytea[], %(idempotency_requests)s::bytea[],
        %(idempotency_sealed_tokens)s::bytea[],
        %(case_of_hash)s::int[], %(types)s::text[], %(hash_values)s::text[],
        %(qualities)s::smallint[], %(digests)s::bytea[], %(now)s, %(position_now)s)
"""


class PostgresBackend:
    insert = staticmethod(postgresql.insert)  # the dialect's INSERT ... ON CONFLICT construct

    def next_event(self, session) -> int:
        """A tick of the event clock (store/models.EventClock): a sequence, so no row lock."""
        return session.execute(text("SELECT nextval('hashguard_events')")).scalar_one()

    def event_clock_now(self, session) -> int:
        # last_value is the last tick drawn by anyone (sequences are not transactional).
        return session.execute(text(
            "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
            "FROM hashguard_events")).scalar_one()

    def lock_hashes(self, session: Session, hash_ids: list[int]) -> list[HashRow]:
        if not hash_ids:
            return []
        return [HashRow(*r) for r in session.execute(
            select(Hash.id, Hash.state, Hash.signal_type, Hash.value, Hash.quality,
                   Hash.held_pathways)
            .where(Hash.id.in_(hash_ids)).order_by(Hash.digest).with_for_update())]

    def share(self, session: Session, rows: list[HashRow], pathway: str) -> list[int]:
        if not rows:
            return []
        return sorted(session.scalars(_SHARE, {**_row_arrays(rows), "pathway": pathway,
                                               "states": [r.state for r in rows],
                                               "held": [r.held_pathways for r in rows],
                                               "now": int(time.time())}))

    def unshare(self, session: Session, rows: list[HashRow], pathway: str) -> list[int]:
        if not rows:
            return []
        return sorted(session.scalars(_UNSHARE, {**_row_arrays(rows), "pathway": pathway,
                                                 "now": int(time.time())}))

    def link_and_share(self, session: Session, case_id: int, pathway: str,
                       hashes: list[NewHash]) -> int:
        return session.scalar(_LINK_AND_SHARE, {
            "case_ids": [case_id] * len(hashes), "pathways": [pathway] * len(hashes),
            "types": [h[0] for h in hashes], "hash_values": [h[1] for h in hashes],
            "qualities": [h[2] for h in hashes], "digests": [h[3] for h in hashes],
            "now": int(time.time())})

    def create_cases(self, connection, cases: list[NewCase], now: int,
                     autocommit: bool = False) -> list[int]:
        """Create cases in one statement: per case, its columns (all share one created_at) and
        its hash rows. `autocommit`: the statement is its own transaction (one round trip,
        COMMIT included), so it positions its change-log entries itself, under the append lock
        it then holds only until its commit; otherwise the commit-time trigger positions them.

        `connection`: a psycopg connection (the submit batcher's own), or a SQLAlchemy
        Connection or Session, whose transaction it then joins. Why psycopg directly:
        SQLAlchemy's statement execution and pool checkout cost ~0.3 ms of CPU per batch
        (measured), more than building the batch's parameters, and under moderate load most
        batches hold one or two submits. Errors are SQLAlchemy's, as from every other store
        function."""
        case_of_hash, rows = [], []
        for n, (_, case_rows) in enumerate(cases, start=1):
            case_of_hash += [n] * len(case_rows)
            rows += case_rows
        parameters = {
            "refs": text_array(v["ref"] for v, _ in cases),
            "pathways": text_array(v["pathway"] for v, _ in cases),
            "token_verifiers": bytea_array(v["token_verifier"] for v, _ in cases),
            "at": cases[0][0]["created_at"],
            "idempotency_digests": bytea_array(v["idempotency_digest"] for v, _ in cases),
            "idempotency_requests": bytea_array(v["idempotency_request"] for v, _ in cases),
            "idempotency_sealed_tokens": bytea_array(v["idempotency_sealed_token"]
                                                     for v, _ in cases),
            "case_of_hash": int_array(case_of_hash), "types": text_array(r[0] for r in rows),
            "hash_values": text_array(r[1] for r in rows),
            "qualities": int_array(r[2] for r in rows),
            "digests": bytea_array(r[3] for r in rows), "now": now, "position_now": autocommit}
        try:
            # prepare=True: the text never changes, so the server parses and plans it once.
            return _psycopg(connection).execute(_CREATE_CASES, parameters,
                                                prepare=True).fetchone()[0]
        except psycopg.Error as failed:  # as SQLAlchemy would wrap it (IntegrityError, ...)
            raise DBAPIError.instance(_CREATE_CASES, None, failed, psycopg.Error) from failed


def _row_arrays(rows: list[HashRow]) -> dict:
    return {"ids": [r.id for r in rows], "types": [r.signal_type for r in rows],
            "hash_values": [r.value for r in rows], "qualities": [r.quality for r in rows]}


def _psycopg(connection) -> psycopg.Connection:
    if isinstance(connection, Session):
        connection = connection.connection()
    if isinstance(connection, Connection):
        return connection.connection.driver_connection
    return connection


# Array parameters as PostgreSQL array literals (parsed by the server, in C). Why by hand:
# psycopg dumps a list parameter element by element in Python, which was 7% of the server's
# CPU per submit (py-spy, bench/submit_bench.py); a join is a fraction of that.
def text_array(items) -> str:
    return "{" + ",".join("NULL" if x is None else '"' + x.replace("\\", "\\\\")
                          .replace('"', '\\"') + '"' for x in items) + "}"


def bytea_array(items) -> str:
    return "{" + ",".join("NULL" if x is None else '"\\\\x' + x.hex() + '"'
                          for x in items) + "}"


def int_array(items) -> str:
    return "{" + ",".join("NULL" if x is None else str(int(x)) for x in items) + "}"


BACKEND = PostgresBackend()
