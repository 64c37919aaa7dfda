"""The vPDQ match index (partners/vpdq_index.py) answers exactly what the reference's
brute-force rule (hashing/signals/vpdq.match_percentages) answers over the shared videos, through
adds, removes, pathways and frames shared by several videos; and through the real change log."""
from __future__ import annotations

import hashlib
import random

import pytest

from hashing.signals import vpdq
from partners.match_index import MatchIndex
from partners.vpdq_index import MAX_MATCHES_PER_QUERY, VpdqIndex
from store.db import Database
from tests.helpers import catch_up, share, unshare

ADULT, MINOR = "adult", "under18_at_capture"


def near(rng: random.Random, value: str, distance: int) -> str:
    number = int(value, 16)
    for bit in rng.sample(range(256), distance):
        number ^= 1 << bit
    return f"{number:064x}"


def video(frames: list[tuple[str, int]]) -> str:
    return vpdq.encode([vpdq.Frame(h, q, float(i)) for i, (h, q) in enumerate(frames)])


def family(rng: random.Random, base: list[str], count: int) -> list[str]:
    """Videos made of the `base` frames: near copies (0-40 bits per frame, so some frames miss),
    cut to a random part, some frames low quality, some repeated."""
    videos = []
    for _ in range(count):
        start = rng.randrange(len(base) // 2)
        frames = [(near(rng, h, rng.choice([0, 4, 12, 25, 31, 32, 40])),
                   rng.choice([100, 100, 100, 60, 49, 10])) for h in base[start:]]
        frames += rng.sample(frames, min(2, len(frames)))
        if all(q < vpdq.QUALITY_THRESHOLD for _, q in frames):
            frames[0] = (frames[0][0], 100)
        videos.append(video(frames))
    return videos


def brute_force(query: str, shared: dict[str, set[str]], pathways) -> list[tuple[str, float]]:
    found = []
    for value, where in shared.items():
        if where & set(pathways):
            query_percent, compared_percent = vpdq.match_percentages(query, value)
            if vpdq.passes(query_percent, compared_percent):
                found.append((-query_percent, -compared_percent, value))
    found.sort(key=lambda m: (m[0], m[1], hashlib.sha256(f"vpdq:{m[2]}".encode()).digest()))
    return [(v, round(1.0 + q / 100, 6)) for q, _, v in found[:MAX_MATCHES_PER_QUERY]]


def loader(values: dict[bytes, str]):
    return lambda digests: {d: values[d] for d in digests if d in values}


def test_index_answers_as_the_brute_force_rule_through_adds_and_removes():
    rng = random.Random(17)
    bases = [[f"{rng.getrandbits(256):064x}" for _ in range(rng.randint(3, 12))] for _ in range(6)]
    videos = [v for base in bases for v in family(rng, base, 5)]
    # A frame in several unrelated videos (a shared intro): counted once per video holding it.
    intro = f"{rng.getrandbits(256):064x}"
    videos += [video([(intro, 100)] + [(f"{rng.getrandbits(256):064x}", 100)] * k)
               for k in (0, 1, 4)]
    index = VpdqIndex(vpdq, (ADULT, MINOR), background_merge=False)
    values = {hashlib.sha256(f"vpdq:{v}".encode()).digest(): v for v in videos}
    index.set_value_loader(loader(values))
    shared: dict[str, set[str]] = {}
    for step in range(60):
        batch = []
        for _ in range(rng.randint(1, 8)):
            value, pathway = rng.choice(videos), rng.choice([ADULT, MINOR])
            is_add = rng.random() < 0.65
            batch.append((is_add, value, pathway))
            where = shared.setdefault(value, set())
            (where.add if is_add else where.discard)(pathway)
            if not where:
                del shared[value]
        index.apply_batch(batch)
        for query in rng.sample(videos, 6):
            for pathways in ([ADULT], [MINOR], [ADULT, MINOR]):
                got = index.match(query, pathways)
                assert sorted(got) == sorted(brute_force(query, shared, pathways)), (step, pathways)
    assert len(index) == len(shared)


def test_catch_up_serves_vpdq_from_the_change_log(database_url):
    db = Database(database_url)
    try:
        rng = random.Random(4)
        base = [f"{rng.getrandbits(256):064x}" for _ in range(10)]
        stored = video([(h, 100) for h in base])
        copy = video([(near(rng, h, 20), 90) for h in base[2:]])
        other = video([(f"{rng.getrandbits(256):064x}", 100) for _ in range(10)])
        ids = share(db, [(vpdq.NAME, stored)])
        index = MatchIndex(background_merge=False)
        catch_up(db, index)
        assert index.match(vpdq.NAME, copy, [ADULT]) == [(vpdq.NAME, stored, 0.0)]
        assert index.match(vpdq.NAME, copy, [MINOR]) == []
        assert index.match(vpdq.NAME, other, [ADULT]) == []
        unshare(db, ids)
        catch_up(db, index)
        assert index.match(vpdq.NAME, copy, [ADULT]) == []
    finally:
        db.dispose()


@pytest.mark.parametrize("count", [MAX_MATCHES_PER_QUERY + 4])
def test_matches_per_query_are_bounded_best_first(count):
    rng = random.Random(9)
    base = [f"{rng.getrandbits(256):064x}" for _ in range(5)]
    # Video k holds the query's frames and k others: its compared share falls as k grows.
    videos = [video([(h, 100) for h in base] +
                    [(f"{rng.getrandbits(256):064x}", 100) for _ in range(k)]) for k in range(count)]
    index = VpdqIndex(vpdq, (ADULT, MINOR), background_merge=False)
    index.set_value_loader(loader({hashlib.sha256(f"vpdq:{v}".encode()).digest(): v
                                   for v in videos}))
    index.apply_batch([(True, v, ADULT) for v in videos])
    found = index.match(video([(h, 100) for h in base]), [ADULT])
    assert [v for v, _ in found] == videos[:MAX_MATCHES_PER_QUERY]
    assert all(d == 0.0 for _, d in found)
