"""PostgreSQL fast path of the write path: one prepared, array-parameter statement per step.

Why by hand: SQLAlchemy recompiles a multi-row INSERT ... VALUES for every distinct row count
(measured ~3 ms of CPU per submit, more than the database work itself), and each extra round trip
costs a thread-pool thread a trip through the GIL. These statements take arrays (`unnest`), so
their text never changes and psycopg prepares them once per connection. SQLite keeps the
portable Core statements in store/cases.py and store/changelog.py.
"""
from __future__ import annotations

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

# Rows in digest order: concurrent submits lock shared hash rows in the same order (no deadlock).
# DO UPDATE (not DO NOTHING) so RETURNING yields existing rows too; keeps the best quality.
_UPSERT_HASHES = text("""
    INSERT INTO hashes (signal_type, value, quality, digest, state)
    SELECT u.t, u.v, u.q, u.d, 'ok'
    FROM unnest(CAST(:types AS text[]), CAST(:hash_values AS text[]),
                CAST(:qualities AS smallint[]), CAST(:digests AS bytea[])) AS u(t, v, q, d)
    ORDER BY u.d
    ON CONFLICT (digest) DO UPDATE SET quality = CASE
        WHEN excluded.quality IS NULL THEN hashes.quality
        WHEN hashes.quality IS NULL THEN excluded.quality
        ELSE GREATEST(hashes.quality, excluded.quality) END
    RETURNING id
""")

_LINK = text("""
    INSERT INTO case_hashes (case_id, hash_id)
    SELECT :case_id, unnest(CAST(:ids AS bigint[]))
    ON CONFLICT DO NOTHING
    RETURNING hash_id
""")

# The EXISTS reads this statement's snapshot, taken after the caller holds the hashes' row
# locks: every writer that changed these hashes' shared rows held those locks and has committed.
_SHARE = text("""
    WITH added AS (
        INSERT INTO shared_hashes (hash_id, pathway)
        SELECT id, :pathway FROM hashes
        WHERE id = ANY(CAST(:ids AS bigint[])) AND state = 'ok'
        ORDER BY id
        ON CONFLICT DO NOTHING
        RETURNING hash_id)
    SELECT a.hash_id, EXISTS (SELECT 1 FROM shared_hashes o
                              WHERE o.hash_id = a.hash_id AND o.pathway <> :pathway) AS also
    FROM added a ORDER BY a.hash_id
""")

# Link, share and log in one round trip (the submit's hot path). The EXISTS and the state check
# read this statement's snapshot, taken after the caller's upsert locked the hash rows (see
# _SHARE). Change-log rows go in hash-id order; their positions are drawn at COMMIT.
_LINK_SHARE_LOG = text("""
    WITH linked AS (
        INSERT INTO case_hashes (case_id, hash_id)
        SELECT :case_id, unnest(CAST(:ids AS bigint[]))
        ON CONFLICT DO NOTHING
        RETURNING hash_id),
    added AS (
        INSERT INTO shared_hashes (hash_id, pathway)
        SELECT id, :pathway FROM hashes
        WHERE id = ANY(CAST(:ids AS bigint[])) AND state = 'ok'
        ORDER BY id
        ON CONFLICT DO NOTHING
        RETURNING hash_id),
    logged AS (
        INSERT INTO change_log (op, hash_id, signal_type, value, quality, pathway, logged_at,
                                also_shared)
        SELECT 'add', a.hash_id, h.signal_type, h.value, h.quality, :pathway, :now,
               EXISTS (SELECT 1 FROM shared_hashes o
                       WHERE o.hash_id = a.hash_id AND o.pathway <> :pathway)
        FROM added a JOIN hashes h ON h.id = a.hash_id ORDER BY a.hash_id
        RETURNING 1)
    SELECT (SELECT count(*) FROM linked), (SELECT count(*) FROM logged)
""")

_UNSHARE = text("""
    WITH removed AS (
        DELETE FROM shared_hashes
        WHERE hash_id = ANY(CAST(:ids AS bigint[])) AND pathway = :pathway
        RETURNING hash_id)
    SELECT r.hash_id, EXISTS (SELECT 1 FROM shared_hashes o
                              WHERE o.hash_id = r.hash_id AND o.pathway <> :pathway) AS also
    FROM removed r ORDER BY r.hash_id
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

HashRow = tuple[str, str, "int | None", bytes]  # signal_type, value, quality, digest


def create_cases(connection, cases: list[tuple[dict, list[HashRow]]], now: int,
                 autocommit: bool = False) -> list[int]:
    """Create cases in one statement (migrations/versions/0003-0005): per case, its columns
    (`values`, all share one created_at) and its hash rows. Returns the case ids in order.
    `autocommit`: the statement is its own transaction (one round trip, COMMIT included), so it
    positions its change-log entries itself, under the append lock it then holds only until
    its commit; otherwise the commit-time trigger positions them.

    `connection`: a psycopg connection (the submit batcher's own), or a SQLAlchemy Connection or
    Session, whose transaction it then joins. Why psycopg directly: SQLAlchemy's statement
    execution and pool checkout cost ~0.3 ms of CPU per batch (measured), more than building the
    batch's parameters, and under moderate load most batches hold one or two submits. Errors
    are SQLAlchemy's, as from every other store function."""
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
        "idempotency_sealed_tokens": bytea_array(v["idempotency_sealed_token"] for v, _ in cases),
        "case_of_hash": int_array(case_of_hash), "types": text_array(r[0] for r in rows),
        "hash_values": text_array(r[1] for r in rows), "qualities": int_array(r[2] for r in rows),
        "digests": bytea_array(r[3] for r in rows), "now": now, "position_now": autocommit}
    try:
        # prepare=True: the text never changes, so the server parses and plans it once.
        return _psycopg(connection).execute(_CREATE_CASES, parameters, prepare=True).fetchone()[0]
    except psycopg.Error as failed:  # as SQLAlchemy would wrap it (IntegrityError, ...)
        raise DBAPIError.instance(_CREATE_CASES, None, failed, psycopg.Error) from failed


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


def upsert_hashes(session: Session, rows: list[tuple[str, str, int | None, bytes]]) -> list[int]:
    """rows: (signal_type, value, quality, digest); returns the ids of all of them."""
    result = session.execute(_UPSERT_HASHES, {
        "types": [r[0] for r in rows], "hash_values": [r[1] for r in rows],
        "qualities": [r[2] for r in rows], "digests": [r[3] for r in rows]})
    return sorted(result.scalars())


def link(session: Session, case_id: int, hash_ids: list[int]) -> list[int]:
    """Link hashes to a case; returns the ids that were not linked before."""
    return sorted(session.execute(_LINK, {"case_id": case_id, "ids": hash_ids}).scalars())


def link_share_log(session: Session, case_id: int, hash_ids: list[int], pathway: str,
                   now: int) -> int:
    """Link hashes to a case and share those new to `pathway`; returns how many links were new."""
    linked, _ = session.execute(_LINK_SHARE_LOG, {"case_id": case_id, "ids": hash_ids,
                                                  "pathway": pathway, "now": now}).one()
    return linked


def share(session: Session, hash_ids: list[int], pathway: str) -> list[tuple[int, bool]]:
    """(hash id, also shared under another pathway) for each hash newly shared under `pathway`."""
    return [tuple(r) for r in session.execute(_SHARE, {"ids": hash_ids, "pathway": pathway})]


def unshare(session: Session, hash_ids: list[int], pathway: str) -> list[tuple[int, bool]]:
    return [tuple(r) for r in session.execute(_UNSHARE, {"ids": hash_ids, "pathway": pathway})]
