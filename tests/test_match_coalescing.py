"""Keeping the match index current must not cost a pass per commit (issue 22: the follower halved
submit throughput). Under a stream of commits the follower coalesces its passes, and the PDQ index
paces its merges (each rewrites ~700 MB of bucket starts whatever it adds), while new hashes stay
matchable at once for a match that asks (read-your-writes) and within a second otherwise."""
from __future__ import annotations

import random
import threading
import time

import numpy as np
from fastapi.testclient import TestClient

from partners import pdq_index
from partners.pdq_index import MIN_MAIN_ROWS, PdqIndex
from partners.pdq_layout import words_of_many
from tests.hashes import BRIDGE, C_PNG
from tests.helpers import bearer, new_case


def _random_values(rng: random.Random, n: int) -> list[str]:
    return [f"{rng.getrandbits(256):064x}" for _ in range(n)]


def _count_passes(follower) -> list[float]:
    """Wraps the follower's index catch-up (its pass) to record when each ran."""
    passes: list[float] = []
    catch_up = follower.index.catch_up

    def counted(session):
        passes.append(time.monotonic())
        return catch_up(session)

    follower.index.catch_up = counted
    return passes


def test_a_stream_of_commits_costs_a_few_passes_not_one_each(app):
    with TestClient(app):
        follower = app.state.match_follower
        assert follower.wait_ready(10)
        passes = _count_passes(follower)
        # 50 wake-ups 20 ms apart, as a stream of submits sends them (one per commit).
        for _ in range(50):
            app.state.notifier.notify()
            time.sleep(0.02)
        time.sleep(0.5)  # the last wake-up's pass
    # Per commit: ~50 passes. Coalesced at one per 250 ms: ~5 over the ~1 s of the stream.
    assert 1 <= len(passes) <= 14, len(passes)


def test_a_match_during_a_stream_of_commits_sees_the_latest_submit(client, make_partner, app):
    """Coalescing must not cost read-your-writes: a match waiting for currency cuts the
    follower's wait short, so it is answered after one pass, not after the interval."""
    key = make_partner("a", "adult")
    # The first lookup in a non-empty index loads the compiled kernels (seconds under load):
    # not timed.
    new_case(client, [C_PNG])
    client.post("/v1/partner/match", headers=bearer(key),
                json={"hashes": [{"signal_type": "pdq", "value": C_PNG}]})
    stop = threading.Event()

    def stream():  # other commits keep arriving meanwhile
        while not stop.is_set():
            app.state.notifier.notify()
            time.sleep(0.005)

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        new_case(client, [BRIDGE])
        started = time.monotonic()
        response = client.post("/v1/partner/match", headers=bearer(key),
                               json={"hashes": [{"signal_type": "pdq", "value": BRIDGE}]})
        assert time.monotonic() - started < 1.0
        assert response.status_code == 200, response.text
        assert [m["value"] for m in response.json()["results"][0]["matches"]] == [BRIDGE]
    finally:
        stop.set()
        streamer.join()


def _index_in_service(rng: random.Random) -> PdqIndex:
    """A background-merging index whose main table is in service (>= MIN_MAIN_ROWS rows)."""
    index = PdqIndex(background=True)
    index.bulk_load(words_of_many(_random_values(rng, MIN_MAIN_ROWS)), "adult")
    return index


def test_a_burst_of_adds_into_a_large_index_is_merged_at_a_pace(monkeypatch):
    monkeypatch.setattr(pdq_index, "MERGE_PACE_SECONDS", 60.0)
    rng = random.Random(22)
    index = _index_in_service(rng)
    merges = index.merges
    added = []
    for _ in range(6):  # 6 x 4,096 adds: a merge each before pacing
        batch = _random_values(rng, pdq_index.MERGE_DELTA_ROWS)
        index.apply_batch([(True, v, "adult") for v in batch])
        added += batch
    index.wait_for_merge()
    assert index.merges == merges  # none yet: the delta holds them, under MAX_SCAN_ROWS
    for value in rng.sample(added, 50):  # every one matchable from the delta meanwhile
        assert index.lookup(value, ["adult"]) == [(value, 0)]


def test_a_delta_reaching_the_scan_limit_is_merged_whatever_the_pace(monkeypatch):
    monkeypatch.setattr(pdq_index, "MERGE_PACE_SECONDS", 60.0)
    monkeypatch.setattr(pdq_index, "MAX_SCAN_ROWS", 6000)
    rng = random.Random(23)
    index = _index_in_service(rng)
    merges = index.merges
    added = _random_values(rng, 7000)
    index.apply_batch([(True, v, "adult") for v in added])
    index.wait_for_merge()
    assert index.merges == merges + 1
    assert index._view.delta_len == 0
    for value in rng.sample(added, 50):
        assert index.lookup(value, ["adult"]) == [(value, 0)]


def test_merge_kernel_equals_the_numpy_construction():
    """partners/pdq_kernel.insert_sorted against the vectorised form it replaced, on buckets
    with runs, empty buckets and new keys at both ends."""
    from partners.pdq_kernel import insert_sorted

    rng = np.random.default_rng(5)
    buckets = 1 << 10
    old_keys = np.sort(rng.integers(0, buckets, 5000))
    old_ids = rng.permutation(5000).astype(np.int32)
    old_starts = np.searchsorted(old_keys, np.arange(buckets + 1)).astype(np.int32)
    keys = np.sort(np.concatenate([[0, 0, buckets - 1], rng.integers(0, buckets, 700)])
                   ).astype(np.uint32)
    rows = np.arange(5000, 5000 + len(keys), dtype=np.uint32)
    total = len(old_ids) + len(keys)
    out_ids = np.full(total + 3, -1, dtype=np.int32)
    out_starts = np.full(buckets + 1, -1, dtype=np.int32)
    assert insert_sorted(old_ids, old_starts, keys, rows, out_ids, out_starts) == total
    at = old_starts[keys.astype(np.intp) + 1] + np.arange(len(keys))
    expected = np.empty(total, dtype=np.int32)
    is_old = np.ones(total, dtype=bool)
    is_old[at] = False
    expected[is_old], expected[at] = old_ids, rows
    assert out_ids[:total].tolist() == expected.tolist()
    assert (out_ids[total:] == -1).all()
    assert out_starts.tolist() == (old_starts + np.searchsorted(keys, np.arange(buckets + 1))
                                   ).tolist()


def test_a_catch_up_pass_that_gets_everything_asks_the_log_once(database_url, monkeypatch):
    """Submits stream in; the follower's pass reads what they logged. A pass whose one read
    returned everything (fewer rows than its bound) must not ask the log again: the second,
    empty read was a round trip and a statement per pass, a few times a second, on the submit
    path's CPU (issue 22). Batches bounded by rows or bytes still cover every entry."""
    from sqlalchemy import event

    from partners import match_index
    from partners.match_index import MatchIndex
    from store import changelog
    from store.db import Database
    from tests.helpers import share, unshare

    rng = random.Random(22)
    database = Database(database_url)
    reads: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if "change_log" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        first = _random_values(rng, 5)
        ids = share(database, [("pdq", v) for v in first])
        share(database, [("video_md5", "0" * 31 + "1")])
        index = MatchIndex(background_merge=False)
        reads.clear()  # (the writes above read the log too, on SQLite)
        with database.read() as session:
            index.catch_up(session)
            pass_reads = len(reads)
            head = changelog.last_seq(session)
        assert index.applied_seq == head
        assert pass_reads == 1, reads  # was 2: the entries, then an empty read
        assert index.match("video_md5", "0" * 31 + "1", ["adult"])

        # Bounded batches (2 rows; or 100 bytes, i.e. the row crossing it and the one before)
        # still reach the head, removals included.
        unshare(database, ids[:2], "adult")
        more = _random_values(rng, 7)
        share(database, [("pdq", v) for v in more])
        for rows, size in ((2, match_index.CATCH_UP_BYTES), (50_000, 100)):
            monkeypatch.setattr(match_index, "CATCH_UP_ROWS", rows)
            monkeypatch.setattr(match_index, "CATCH_UP_BYTES", size)
            fresh = MatchIndex(background_merge=False)
            reads.clear()
            with database.read() as session:
                fresh.catch_up(session)
                head = changelog.last_seq(session)
            assert fresh.applied_seq == head
            assert len(reads) >= 6  # 15 entries, 2 per read
            for value in first[2:] + more:
                assert [m[1] for m in fresh.match("pdq", value, ["adult"])] == [value]
            for value in first[:2]:
                assert fresh.match("pdq", value, ["adult"]) == []
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
        database.dispose()


def test_a_stream_of_adds_nobody_matches_against_is_not_merged_at_every_pace(monkeypatch):
    """Submits stream in and no partner matches meanwhile: each merge (~0.3 s of CPU at 500 k
    rows) would buy nothing, since only lookups scan the delta. So the delta is merged at the
    scan limit, not at every pace; once lookups have scanned enough of it, paced merges are
    back, and every value stays matchable throughout."""
    monkeypatch.setattr(pdq_index, "MERGE_PACE_SECONDS", 0.0)  # every batch past 4,096 rows
    monkeypatch.setattr(pdq_index, "MERGE_SCAN_BUDGET_ROWS", 50_000, raising=False)
    rng = random.Random(24)
    index = _index_in_service(rng)
    merges = index.merges
    added = []
    for _ in range(3):  # 3 x 4,096 adds, no lookups: was a merge each
        batch = _random_values(rng, pdq_index.MERGE_DELTA_ROWS)
        index.apply_batch([(True, v, "adult") for v in batch])
        added += batch
        index.wait_for_merge()
    assert index.merges == merges, "merged a delta no lookup had scanned"
    for value in added[:5]:  # 5 lookups x 12,288 delta rows: past the budget
        assert index.lookup(value, ["adult"]) == [(value, 0)]
    more = _random_values(rng, 10)
    index.apply_batch([(True, v, "adult") for v in more])
    index.wait_for_merge()
    assert index.merges == merges + 1
    assert index._view.delta_len == 0
    for value in rng.sample(added, 30) + more:
        assert index.lookup(value, ["adult"]) == [(value, 0)]
