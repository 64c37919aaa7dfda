"""Group commit of submits on PostgreSQL (store/submit_batcher.py, hashguard_create_cases): a batch
stores exactly what the same submits one after another would, and one bad submit in a batch
fails alone."""
from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hashing.signals import Signal
from store import cases as store_cases
from store.backends import postgres as pg_writes
from store.db import Database
from store.models import Case, CaseHash, ChangeLogEntry, Hash, SharedHash
from store.submit_batcher import _Pending

# Group commit is the PostgreSQL write path (SQLite has one writer and no batches).
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def pdq(rng: random.Random) -> str:
    while True:
        value = rng.getrandbits(256)
        if 16 <= value.bit_count() <= 240:
            return f"{value:064x}"


def case_input(pathway: str, values: list[str], idempotency_digest: bytes | None = None):
    record = (store_cases.IdempotencyRecord(idempotency_digest, bytes(32), b"sealed")
              if idempotency_digest else None)
    case_values = store_cases._case_values(pathway, bytes(32), record)
    return case_values, store_cases._digest_rows([Signal("pdq", v, 90) for v in values])


def log_rows(db: Database):
    with db.read() as s:
        return [(r.op, r.value, r.pathway, r.also_shared, r.seq) for r in s.scalars(
            select(ChangeLogEntry).order_by(ChangeLogEntry.seq))]


def test_a_batch_equals_the_submits_one_by_one(db):
    rng = random.Random(7)
    h1, h2, h3, h4 = (pdq(rng) for _ in range(4))
    batch = [case_input("adult", [h1, h2]), case_input("adult", [h2, h3]),
             case_input("under18_at_capture", [h2, h4]), case_input("adult", [h1])]
    with db.connect_autocommit() as connection:
        ids = pg_writes.BACKEND.create_cases(connection, batch, 1_700_000_000, autocommit=True)
    assert len(set(ids)) == 4
    with db.read() as s:
        refs = dict(s.execute(select(Case.id, Case.ref)).all())
        assert [refs[i] for i in ids] == [v["ref"] for v, _ in batch]  # ids in input order
        links = {(c, h) for c, h in s.execute(
            select(CaseHash.case_id, Hash.value).join(Hash, Hash.id == CaseHash.hash_id))}
        shared = set(s.execute(select(Hash.value, SharedHash.pathway)
                               .join(SharedHash, SharedHash.hash_id == Hash.id)).all())
        assert s.scalar(select(func.count()).select_from(Hash)) == 4
    assert links == {(ids[0], h1), (ids[0], h2), (ids[1], h2), (ids[1], h3),
                     (ids[2], h2), (ids[2], h4), (ids[3], h1)}
    assert shared == {(h1, "adult"), (h2, "adult"), (h3, "adult"),
                      (h2, "under18_at_capture"), (h4, "under18_at_capture")}
    entries = log_rows(db)
    # Each (hash, pathway) added once; positioned (at commit) without gaps; the under-18 entry of
    # h2 knows h2 is also shared as adult, as it would after an adult submit committed first.
    assert sorted((op, v, p, a) for op, v, p, a, _ in entries) == sorted([
        ("add", h1, "adult", False), ("add", h2, "adult", False), ("add", h3, "adult", False),
        ("add", h2, "under18_at_capture", True), ("add", h4, "under18_at_capture", False)])
    seqs = [seq for *_, seq in entries]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    # Positioned pathway by pathway, each in hash-id order (as the single submits' rows were).
    with db.read() as s:
        order = s.execute(select(ChangeLogEntry.pathway, ChangeLogEntry.hash_id)
                          .order_by(ChangeLogEntry.seq)).all()
    assert [tuple(row) for row in order] == sorted(tuple(row) for row in order)


def test_a_failing_submit_fails_alone(db):
    rng = random.Random(8)
    digest = bytes(range(32))
    good, twin_a, twin_b = (_Pending(*case_input("adult", [pdq(rng)], d))
                            for d in (None, digest, digest))
    db.submit_batcher._commit([good, twin_a, twin_b])  # one batch: its statement fails
    assert all(p.result.done() for p in (good, twin_a, twin_b))
    assert good.case_id is not None and good.error is None
    outcomes = sorted([twin_a.error is None, twin_b.error is None])
    assert outcomes == [False, True]  # same Idempotency-Key: exactly one case
    assert isinstance((twin_a.error or twin_b.error), IntegrityError)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 2
        assert s.scalar(select(func.count()).select_from(ChangeLogEntry)
                        .where(ChangeLogEntry.seq.is_(None))) == 0


def test_concurrent_submits_are_batched_and_all_stored(db):
    rng = random.Random(9)
    inputs = [[pdq(rng) for _ in range(3)] for _ in range(60)]
    shared_value = pdq(rng)  # in every case: added to the log once
    start = threading.Barrier(20)

    def submit(values):
        try:
            start.wait(timeout=5)
        except threading.BrokenBarrierError:
            pass
        signals = [Signal("pdq", v, 80) for v in values + [shared_value]]
        return store_cases.submit(db, "adult", signals, bytes(32))

    with ThreadPoolExecutor(20) as pool:
        created = list(pool.map(submit, inputs))
    assert len({c.id for c in created}) == 60
    assert db.submit_batcher.largest_batch > 1  # concurrent submits did share a commit
    with db.read() as s:
        for case, values in zip(created, inputs):
            linked = set(s.scalars(select(Hash.value).join(CaseHash, CaseHash.hash_id == Hash.id)
                                   .where(CaseHash.case_id == case.id)))
            assert linked == set(values) | {shared_value}
    entries = log_rows(db)
    assert len(entries) == 60 * 3 + 1
    assert sorted(v for _, v, *_ in entries) == sorted(sum(inputs, []) + [shared_value])
    seqs = [seq for *_, seq in entries]
    assert None not in seqs and len(set(seqs)) == len(seqs)


def test_array_literals_round_trip(db):
    from sqlalchemy import text

    texts = ["plain", None, 'quote " and \\ backslash', "", "NULL", "{braces},comma"]
    blobs = [bytes(range(256)), None, b"", b"\\\""]
    ints = [0, None, -5, 2**40]
    with db.read() as s:
        got = s.execute(text("SELECT CAST(:t AS text[]), CAST(:b AS bytea[]), CAST(:i AS bigint[])"),
                        {"t": pg_writes.text_array(texts), "b": pg_writes.bytea_array(blobs),
                         "i": pg_writes.int_array(ints)}).one()
    assert list(got[0]) == texts
    assert [None if x is None else bytes(x) for x in got[1]] == blobs
    assert list(got[2]) == ints


def test_a_batch_never_scans_a_whole_table_on_a_new_database(db):
    """PL/pgSQL keeps a plan per statement for the connection's life; one made while the tables
    were empty must not turn into a scan of every hash as the tables grow (migration 0005)."""
    rng = random.Random(10)
    with db.connect_autocommit() as connection:
        for _ in range(30):  # past the point where PL/pgSQL settles on its generic plans
            batch = [case_input("adult", [pdq(rng) for _ in range(10)]) for _ in range(2)]
            pg_writes.BACKEND.create_cases(connection, batch, 1_700_000_000, autocommit=True)
        connection.execute("BEGIN")
        pg_writes.BACKEND.create_cases(connection, [case_input("under18_at_capture", [pdq(rng)])],
                               1_700_000_000)
        scans = dict(connection.execute(
            "SELECT relname, seq_scan FROM pg_stat_xact_user_tables WHERE relname IN "
            "('cases', 'hashes', 'case_hashes', 'shared_hashes', 'change_log')").fetchall())
        connection.execute("ROLLBACK")
    assert set(scans.values()) == {0}, scans


def test_the_writer_reconnects_after_losing_its_connection(db):
    """The batcher keeps one connection; when the server drops it (a restart, an idle timeout),
    at most the batch in flight fails, with a database error, and the next one reconnects."""
    from sqlalchemy.exc import OperationalError

    rng = random.Random(11)

    def submit():
        return store_cases.submit(db, "adult", [Signal("pdq", pdq(rng), 90)], bytes(32))

    submit()
    with db.connect_autocommit() as connection:
        connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    try:
        submit()
    except OperationalError:
        pass  # the batch that met the dropped connection
    created = submit()
    with db.read() as s:
        assert s.get(Case, created.id) is not None


def test_a_cancelled_submit_does_not_strand_the_rest_of_its_batch(db):
    """A request that goes away (client gone, shutdown) while its submit waits in the queue must
    not stop the writer: the other submits of its batch are answered, and later ones too.

    Deterministic: an open transaction holds the row lock of a hash the first submit also
    sends, so the writer waits on it while three more submits queue up behind; one of those is
    cancelled before the writer takes them as one batch."""
    import asyncio

    rng = random.Random(11)
    held = pdq(rng)
    blocker = Database(db.engine.url.render_as_string(hide_password=False))
    try:
        with blocker.transaction() as session:
            store_cases.create_case(session, "adult", [Signal("pdq", held, 90)], bytes(32))
            session.flush()

            async def scenario():
                first = asyncio.ensure_future(store_cases.submit_async(
                    db, "adult", [Signal("pdq", held, 90)], bytes(32)))
                await asyncio.sleep(0.5)  # the writer is now waiting on the held row lock
                queued = [asyncio.ensure_future(store_cases.submit_async(
                    db, "adult", [Signal("pdq", pdq(rng), 90)], bytes(32))) for _ in range(3)]
                await asyncio.sleep(0.1)
                queued[1].cancel()
                return first, queued

            loop = asyncio.new_event_loop()
            first, queued = loop.run_until_complete(scenario())
        # The blocker commits here; the writer finishes the first submit and takes the rest.

        async def outcomes():
            return await asyncio.wait_for(asyncio.gather(first, queued[0], queued[2]), 20)

        created = loop.run_until_complete(outcomes())
        loop.close()
        assert len({c.id for c in created}) == 3
        # And the writer is still alive for the next submit.
        assert store_cases.submit(db, "adult", [Signal("pdq", pdq(rng), 90)], bytes(32)).id
    finally:
        blocker.dispose()
