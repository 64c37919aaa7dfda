"""The PDQ match index (partners/pdq_index.py and its layers) against a brute-force reference:
incremental adds and removes answer like a rebuild, recall at every distance 0..31 (adversarial
bit spreads included), nothing at 32+, real PDQ hashes of transformed test images, pathways,
concurrency."""
from __future__ import annotations

import math
import random
import threading
import time

import numpy as np
import pytest
from PIL import Image

from hashing.signals import pdq
from hashing.signals.base import UnusableMedia
from partners import pdq_buckets, pdq_index, pdq_layout
from partners.match_index import MatchIndex
from partners.pdq_buckets import build_slot
from partners.pdq_index import PdqIndex
from partners.pdq_layout import SLOT_BITS, SLOT_FLIPS, SLOT_START, hex_of
from store import changelog
from store.db import Database
from tests.testdata import PDQ_DIR, require_testdata

ADULT, MINOR = "adult", "under18_at_capture"


def random_value(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip(value: str, bits) -> str:
    number = int(value, 16)
    for bit in bits:  # bit 0 = most significant, as in the index's slots
        number ^= 1 << (255 - bit)
    return f"{number:064x}"


class Reference:
    """The shared set as a dict, matched by a straightforward scan."""

    def __init__(self) -> None:
        self.pathways: dict[str, set[str]] = {}

    def apply(self, is_add: bool, value: str, pathway: str) -> None:
        shared = self.pathways.setdefault(value, set())
        (shared.add if is_add else shared.discard)(pathway)
        if not shared:
            del self.pathways[value]

    def lookup(self, query: str, pathways) -> list[tuple[str, int]]:
        q = int(query, 16)
        found = [(v, (int(v, 16) ^ q).bit_count()) for v, p in self.pathways.items()
                 if p.intersection(pathways)]
        return sorted([(v, d) for v, d in found if d <= pdq.MATCH_THRESHOLD],
                      key=lambda m: (m[1], m[0]))


def near(rng: random.Random, value: str, distance: int) -> str:
    return flip(value, rng.sample(range(256), distance))


def apply_both(index: PdqIndex, reference: Reference, batch) -> None:
    """Apply a batch of (is_add, value, pathway) to the index and to the reference."""
    index.apply_batch(batch)
    for entry in batch:
        reference.apply(*entry)


def near_adds(rng: random.Random, bases: list[str], count: int, pathway: str = ADULT):
    """`count` adds of values within distance 0..39 of random bases."""
    return [(True, near(rng, rng.choice(bases), rng.randrange(0, 40)), pathway)
            for _ in range(count)]


def rebuilt(reference: Reference) -> PdqIndex:
    index = PdqIndex(background=False)
    index.apply_batch([(True, v, p) for v, ps in reference.pathways.items() for p in sorted(ps)])
    index.compact()
    return index


@pytest.mark.parametrize("background", [False, True])
def test_incremental_adds_and_removes_answer_like_a_rebuild(background):
    rng = random.Random(7 + background)
    index = PdqIndex(background=background, merge_delta_rows=64)
    reference = Reference()
    bases = [random_value(rng) for _ in range(40)]
    known: list[str] = []
    for step in range(60):
        batch = []
        for _ in range(rng.randrange(1, 40)):
            kind = rng.random()
            if kind < 0.45 or not known:  # new value, often a near-duplicate of a base
                value = near(rng, rng.choice(bases), rng.randrange(0, 40)) \
                    if rng.random() < 0.7 else random_value(rng)
                known.append(value)
            else:  # re-add or remove a value seen before (also ones removed already)
                value = rng.choice(known)
            is_add = kind < 0.45 or rng.random() < 0.4
            batch.append((is_add, value, rng.choice([ADULT, MINOR])))
        apply_both(index, reference, batch)
        if step % 13 == 12:
            index.compact()  # merges the delta and drops tombstones; rows get reused after
        for _ in range(8):
            query = near(rng, rng.choice(bases + known), rng.randrange(0, 36))
            pathways = rng.choice([[ADULT], [MINOR], [ADULT, MINOR]])
            assert index.lookup(query, pathways) == reference.lookup(query, pathways)
    index.wait_for_merge()
    assert index.merges > 3
    fresh = rebuilt(reference)
    for value in bases + known[:200]:
        for pathways in ([ADULT], [MINOR], [ADULT, MINOR]):
            query = near(rng, value, rng.randrange(0, 33))
            expected = reference.lookup(query, pathways)
            assert index.lookup(query, pathways) == expected
            assert fresh.lookup(query, pathways) == expected
    assert len(index) == len(reference.pathways) == len(fresh)


def adversarial_flips(rng: random.Random, chunks: list[tuple[int, int]], per_chunk: list[int]):
    """Bits to flip: per_chunk[i] distinct bits inside chunks[i] = (start, length)."""
    bits = []
    for (start, length), count in zip(chunks, per_chunk):
        bits += rng.sample(range(start, start + length), count)
    return bits


@pytest.fixture(scope="module")
def loaded():
    """100,000 random values in the main table (bulk_load) and 2,000 in the delta."""
    rng = np.random.default_rng(3)
    index = PdqIndex(background=False, merge_delta_rows=10**9)
    words = rng.integers(0, 2**64, size=(100_000, 4), dtype=np.uint64)
    index.bulk_load(words, ADULT)
    delta = [hex_of(w) for w in rng.integers(0, 2**64, size=(2_000, 4), dtype=np.uint64)]
    index.apply_batch([(True, v, ADULT) for v in delta])
    return index, [hex_of(w) for w in words[:500]], delta


def test_recall_at_every_distance_and_nothing_beyond(loaded):
    index, main_values, delta_values = loaded
    rng = random.Random(11)
    for tier, values in (("main", main_values), ("delta", delta_values)):
        for distance in range(0, 48):
            for base in rng.sample(values, 6):
                query = near(rng, base, distance)
                found = dict(index.lookup(query, [ADULT]))
                if distance <= 31:
                    assert found.get(base) == distance, (tier, distance)
                else:
                    assert base not in found, (tier, distance)
                # whatever else comes back is genuinely within 31
                assert all(pdq.distance(v, query) == d <= 31 for v, d in found.items())


def test_adversarial_spreads_at_distance_31_and_32(loaded):
    index, main_values, _ = loaded
    rng = random.Random(5)
    sixteen = [(16 * i, 16) for i in range(16)]
    ours = list(zip(SLOT_START, SLOT_BITS))
    for base in main_values[:60]:
        # 16 x 16-bit chunks: 15 chunks with 2 flips, one with 1 (the worst case for 16x16)
        lone = rng.randrange(16)
        bits = adversarial_flips(rng, sixteen, [1 if i == lone else 2 for i in range(16)])
        assert len(bits) == 31
        assert dict(index.lookup(flip(base, bits), [ADULT])).get(base) == 31
        # this index's slots: every slot one flip past what it is probed with, except one slot
        # (each in turn) exactly at it -- d = 31, and only that one slot can find it
        for lone in range(len(ours)):
            per_slot = [t + (0 if i == lone else 1) for i, t in enumerate(SLOT_FLIPS)]
            bits = adversarial_flips(rng, ours, per_slot)
            assert len(bits) == 31
            assert dict(index.lookup(flip(base, bits), [ADULT])).get(base) == 31, lone
        # distance 32 with every slot past its probes: must not be reported
        bits = adversarial_flips(rng, ours, [t + 1 for t in SLOT_FLIPS])
        assert len(bits) == 32
        assert base not in dict(index.lookup(flip(base, bits), [ADULT]))


def test_probes_are_exact_by_generalised_pigeonhole():
    """Any distance <= 31 leaves some slot within its flips (sum of flips + 1 over the slots
    exceeds 31), and every key within a slot's flips is probed exactly once."""
    assert sum(t + 1 for t in SLOT_FLIPS) == pdq_layout.THRESHOLD + 1
    for s, (bits, most) in enumerate(zip(SLOT_BITS, SLOT_FLIPS)):
        flips = pdq_layout.PROBE_FLIP[pdq_layout.PROBE_SLOT == s]
        assert len(set(flips.tolist())) == len(flips) == sum(math.comb(bits, k)
                                                            for k in range(most + 1))
        assert all(int(f).bit_count() <= most and int(f) < (1 << bits) for f in flips)


def _hash(path) -> str | None:
    try:
        return pdq.hash_file(path)[0].value
    except UnusableMedia:  # below the quality gate: the service would refuse it too
        return None


def _transformed_hashes(tmp_path) -> dict[str, list[str]]:
    """Original image -> PDQ of its transformed copies (resize, JPEG q70, crop, and the test
    data's own modifications)."""
    require_testdata()
    originals = [PDQ_DIR / "bridge-mods" / "aaa-orig.jpg", PDQ_DIR / "misc-images" / "c.png"]
    originals += sorted((PDQ_DIR / "reg-test-input" / "labelme-subset").glob("*"))[:4]
    out = {}
    for path in originals:
        image = Image.open(path).convert("RGB")
        w, h = image.size
        variants = {
            "resize": image.resize((max(64, w // 2), max(64, h // 2))),
            "jpeg70": image,
            "crop": image.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
        }
        hashes = []
        for name, variant in variants.items():
            target = tmp_path / f"{path.stem}-{name}.jpg"
            variant.save(target, quality=70 if name == "jpeg70" else 90)
            hashes.append(_hash(target))
        if path.name == "aaa-orig.jpg":
            hashes += [_hash(mod) for mod in sorted((PDQ_DIR / "bridge-mods").glob("*.jpg"))]
        original = _hash(path)
        if original is not None:
            out[original] = [h for h in hashes if h is not None]
    return out


def test_real_image_hashes_planted_among_random_ones_are_found(loaded, tmp_path):
    index, _, _ = loaded
    planted = _transformed_hashes(tmp_path)
    index.apply_batch([(True, original, ADULT) for original in planted])
    index.compact()  # into the main table (the delta is covered by the recall test)
    checked = 0
    for original, variants in planted.items():
        for variant in variants:
            found = dict(index.lookup(variant, [ADULT]))
            if pdq.distance(original, variant) <= 31:
                assert found.get(original) == pdq.distance(original, variant)
                checked += 1
            else:
                assert original not in found
    assert checked >= 15


def test_pathways_filter_and_removal():
    index = PdqIndex(background=False)
    rng = random.Random(2)
    value = random_value(rng)
    index.apply_batch([(True, value, ADULT)])
    query = near(rng, value, 10)
    assert index.lookup(query, [ADULT]) == [(value, 10)]
    assert index.lookup(query, [MINOR]) == []
    index.apply_batch([(True, value, MINOR), (False, value, ADULT)])
    assert index.lookup(query, [ADULT]) == []
    assert index.lookup(query, [MINOR, ADULT]) == [(value, 10)]
    index.compact()
    assert index.lookup(query, [MINOR]) == [(value, 10)]
    index.apply_batch([(False, value, MINOR)])
    index.compact()  # tombstone dropped, row freed
    assert index.lookup(query, [MINOR, ADULT]) == []
    index.apply_batch([(True, value, ADULT)])  # back again (a fresh row)
    assert index.lookup(query, [ADULT]) == [(value, 10)]


def test_lookups_run_while_adds_removes_and_merges_happen():
    rng = random.Random(9)
    index = PdqIndex(background=True, merge_delta_rows=200)
    stable = [random_value(rng) for _ in range(50)]
    index.apply_batch([(True, v, ADULT) for v in stable])
    index.compact()  # a main table exists: from now on every 200 delta rows start a merge
    stop = threading.Event()
    failures = []

    def reader(seed):
        local = random.Random(seed)
        while not stop.is_set():
            base = local.choice(stable)
            distance = local.randrange(0, 32)
            if dict(index.lookup(near(local, base, distance), [ADULT])).get(base) != distance:
                failures.append((base, distance))

    def checked_reader(seed):
        local = random.Random(seed)
        while not stop.is_set():
            base = local.choice(stable)
            distance = local.randrange(0, 32)
            query = near(local, base, distance)
            found = index.lookup(query, [ADULT])
            # each value once, at its true distance, never a value removed before we started
            if (dict(found).get(base) != distance or len(set(found)) != len(found)
                    or any(pdq.distance(v, query) != d for v, d in found)
                    or any(v in gone for v, _ in found)):
                failures.append((base, distance, found))

    gone = set()
    for _ in range(5):  # values removed for good (tombstones that merges drop)
        batch = [random_value(rng) for _ in range(40)]
        index.apply_batch([(True, v, ADULT) for v in batch])
        index.apply_batch([(False, v, ADULT) for v in batch])
        gone.update(batch)
    readers = [threading.Thread(target=reader, args=(s,)) for s in range(2)]
    readers.append(threading.Thread(target=checked_reader, args=(99,)))
    for thread in readers:
        thread.start()
    churn = []
    for _ in range(60):
        batch = [(True, random_value(rng), ADULT) for _ in range(100)]
        churn += [v for _, v, _ in batch]
        batch += [(False, v, ADULT) for v in rng.sample(churn, 50)]
        index.apply_batch(batch)
    stop.set()
    for thread in readers:
        thread.join()
    index.wait_for_merge()
    assert not failures
    assert index.merges >= 2  # each merge rewrites the ~117 M-entry bucket table (seconds)


def _csr(keys: np.ndarray, ids: np.ndarray, buckets: int) -> list[list[int]]:
    """Bucket -> sorted ids, the straightforward way."""
    table = [[] for _ in range(buckets)]
    for key, row in zip(keys.tolist(), ids.tolist()):
        table[key].append(row)
    return [sorted(bucket) for bucket in table]


def _buckets(ids: np.ndarray, starts: np.ndarray) -> list[list[int]]:
    return [sorted(ids[starts[g]:starts[g + 1]].tolist()) for g in range(len(starts) - 1)]


@pytest.mark.parametrize("chunk", [7, 1 << 18])
@pytest.mark.parametrize("old_n,add_n,drop", [(0, 300, False), (500, 0, True), (500, 200, False),
                                              (500, 200, True), (500, 0, False)])
def test_build_slot_equals_a_table_built_from_scratch(monkeypatch, old_n, add_n, drop, chunk):
    monkeypatch.setattr(pdq_buckets, "CHUNK", chunk)
    rng = np.random.default_rng(old_n + add_n + drop)
    buckets = 64
    key_of = rng.integers(0, buckets, size=old_n + add_n)  # row -> its key in this slot
    old_rows = np.arange(old_n)
    order = np.argsort(key_of[old_rows], kind="stable")
    old_ids = old_rows[order].astype(np.int32)
    old_starts = np.searchsorted(key_of[old_ids], np.arange(buckets + 1)).astype(np.int32)
    add = np.arange(old_n, old_n + add_n)
    packed = np.sort((key_of[add].astype(np.uint64) << np.uint64(32)) | add.astype(np.uint64))
    alive = rng.random(old_n + add_n) > 0.3 if drop else None
    keep = alive[old_ids] if drop else None
    out_ids = np.full(old_n + add_n + 5, -1, dtype=np.int32)
    out_starts = np.full(buckets + 1, -1, dtype=np.int32)
    count = build_slot(old_ids, old_starts, keep, packed, out_ids, out_starts)
    kept = [r for r in old_rows.tolist() if not drop or alive[r]]
    expected_rows = np.array(kept + add.tolist(), dtype=int)
    assert count == len(expected_rows)
    assert out_starts[0] == 0 and out_starts[-1] == count
    assert _buckets(out_ids, out_starts) == _csr(key_of[expected_rows], expected_rows, buckets)


@pytest.mark.parametrize("chunk", [3, 1 << 18])
def test_bucket_starts_with_long_runs_and_small_chunks(monkeypatch, chunk):
    monkeypatch.setattr(pdq_buckets, "CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    keys = np.sort(np.concatenate([np.full(40, 7), np.full(9, 63), rng.integers(0, 64, 30)]))
    out = np.full(65, -1, dtype=np.int32)
    pdq_buckets.count_below(keys.astype(np.uint32), out)
    assert out.tolist() == np.searchsorted(keys, np.arange(65)).tolist()
    pdq_buckets.count_below(np.zeros(0, dtype=np.uint32), out)
    assert not out.any()


def _populated(rng: random.Random, reference: Reference, index: PdqIndex):
    """Values near a few bases in the main table, some removed (tombstones), more in the delta.
    Returns the bases and the values removed from the main table."""
    bases = [random_value(rng) for _ in range(30)]
    values = bases + [near(rng, rng.choice(bases), rng.randrange(1, 40)) for _ in range(400)]
    entries = [(True, v, rng.choice([ADULT, MINOR])) for v in values]
    index.apply_batch(entries)
    index.compact()
    removed = [(False, v, p) for _, v, p in rng.sample(entries, 120)]
    delta = near_adds(rng, bases, 150)
    index.apply_batch(removed)
    index.apply_batch(delta)
    for entry in entries + removed + delta:
        reference.apply(*entry)
    return bases, sorted({v for _, v, _ in removed} - set(reference.pathways))


def _assert_same_answers(index, reference, rng, bases, count=60):
    for _ in range(count):
        query = near(rng, rng.choice(bases + list(reference.pathways)), rng.randrange(0, 36))
        pathways = rng.choice([[ADULT], [MINOR], [ADULT, MINOR]])
        assert index.lookup(query, pathways) == reference.lookup(query, pathways)


def _assert_all_findable(index, reference):
    for value, pathways in reference.pathways.items():
        for pathway in pathways:
            assert (value, 0) in index.lookup(value, [pathway])
    assert len(index) == len(reference.pathways)


def test_every_state_between_slots_of_a_merge_answers_exactly(monkeypatch):
    """A merge publishes slot by slot: after each slot, rows being merged are in the delta and in
    some slots, tombstones being dropped are gone from some slots only. Lookups, and writes made
    in between, must see one consistent shared set throughout."""
    rng = random.Random(21)
    index = PdqIndex(background=False)
    reference = Reference()
    bases, main_dead = _populated(rng, reference, index)
    assert len(main_dead) > 50
    removed = sorted(v for v in {near(rng, b, 2) for b in bases} if v not in reference.pathways)
    index.apply_batch([(True, v, ADULT) for v in removed])  # tombstones in the delta
    index.apply_batch([(False, v, ADULT) for v in removed])
    dropping = [v for pair in zip(removed, main_dead) for v in pair]  # tombstones in both tiers
    states = []
    original = PdqIndex._merge_slot

    def write_some(index):
        gone = rng.sample(sorted(reference.pathways), 10)
        batch = [(False, v, p) for v in gone for p in sorted(reference.pathways[v])]
        batch += [(True, near(rng, rng.choice(bases), 5), MINOR) for _ in range(10)]
        # values whose tombstones are being dropped, back: they must get fresh rows
        batch += [(True, v, MINOR) for v in dropping[:4]]
        del dropping[:4]
        apply_both(index, reference, batch)

    def merge_slot_then_check(self, s, plan):
        if s == 0:  # planned, nothing published yet
            write_some(self)
        original(self, s, plan)
        states.append(s)
        _assert_same_answers(self, reference, rng, bases, count=15)
        if s in (0, 4):  # writes while the merge is under way
            write_some(self)
            _assert_same_answers(self, reference, rng, bases, count=15)

    monkeypatch.setattr(PdqIndex, "_merge_slot", merge_slot_then_check)
    index.compact()  # merges the delta and drops the tombstones
    assert states == list(range(len(SLOT_BITS)))
    monkeypatch.setattr(PdqIndex, "_merge_slot", original)
    _assert_all_findable(index, reference)
    _assert_same_answers(index, reference, rng, bases)
    index.compact()
    _assert_all_findable(index, reference)
    _assert_same_answers(index, reference, rng, bases)


def test_a_slow_lookup_holds_back_the_reuse_of_what_a_merge_retired(monkeypatch):
    """Memory a merge retires (a slot's old regions) is written again only after every lookup
    that might still read it has finished."""
    rng = random.Random(8)
    index = PdqIndex(background=False)
    reference = Reference()
    bases, _ = _populated(rng, reference, index)
    query = near(rng, bases[0], 6)
    has_view, go_on = threading.Event(), threading.Event()
    original = PdqIndex._lookup

    def slow_lookup(view, value, want, threshold):
        if value == query:
            has_view.set()
            go_on.wait(10)
        return original(view, value, want, threshold)

    monkeypatch.setattr(PdqIndex, "_lookup", staticmethod(slow_lookup))
    result = {}
    reader = threading.Thread(target=lambda: result.update(found=index.lookup(query, [ADULT])))
    reader.start()
    assert has_view.wait(10)
    published = index._readers.published
    merge = threading.Thread(target=index.compact)
    merge.start()
    deadline = time.monotonic() + 10
    while index._readers.published == published and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    # slot 0 is published; rebuilding slot 1 would reuse slot 0's old region: it waits
    assert index._readers.published == published + 1 and merge.is_alive()
    go_on.set()
    reader.join(10)
    merge.join(30)
    assert not merge.is_alive()
    assert result["found"] == reference.lookup(query, [ADULT])
    _assert_same_answers(index, reference, rng, bases)


def test_growing_the_id_arena_and_the_rows_keeps_answers(monkeypatch):
    monkeypatch.setattr(pdq_index, "MIN_ID_CAPACITY", 1024)
    monkeypatch.setattr(pdq_index, "INITIAL_ROWS", 1024)
    rng = random.Random(12)
    index = PdqIndex(background=False)
    reference = Reference()
    bases = [random_value(rng) for _ in range(20)]
    capacities = set()
    for _ in range(6):
        apply_both(index, reference, near_adds(rng, bases, 700))
        index.compact()
        capacities.add((index._arenas.id_capacity, len(index._view.rows)))
        _assert_same_answers(index, reference, rng, bases, count=20)
    assert len({ids for ids, _ in capacities}) > 1 and len({rows for _, rows in capacities}) > 1


def test_a_burst_of_adds_waits_for_merges_instead_of_growing_the_delta(monkeypatch):
    monkeypatch.setattr(pdq_index, "MAX_DELTA_ROWS", 300)
    rng = random.Random(13)
    index = PdqIndex(background=True, merge_delta_rows=100)
    reference = Reference()
    bases = [random_value(rng) for _ in range(20)]
    index.apply_batch([(True, v, ADULT) for v in bases])
    index.compact()  # a main table: every 100 delta rows start a merge from now on
    for entry in ((True, v, ADULT) for v in bases):
        reference.apply(*entry)
    largest = 0
    for _ in range(15):
        apply_both(index, reference, near_adds(rng, bases, 200))
        largest = max(largest, index._view.delta_len)
    assert largest <= 300 + 200
    index.wait_for_merge()
    _assert_all_findable(index, reference)
    _assert_same_answers(index, reference, rng, bases)


def test_match_index_catch_up_keeps_pdq_exact_and_the_interface(database_url):
    # On the real store (it read a list posing as a session before catch-up read bounded pages).
    from tests.helpers import share, unshare

    rng = random.Random(4)
    a, b = random_value(rng), random_value(rng)
    md5 = "0" * 31 + "1"
    database = Database(database_url)
    try:
        [id_a] = share(database, [("pdq", a)], ADULT)
        [id_b] = share(database, [("pdq", b)], MINOR)
        share(database, [("video_md5", md5)], ADULT)
        with database.transaction() as session:
            changelog.share_many(session, [id_b], ADULT)
        unshare(database, [id_b], MINOR)
        index = MatchIndex(background_merge=False)
        with database.read() as session:
            index.catch_up(session)
            assert index.applied_seq == changelog.last_seq(session)
        assert index.match("pdq", near(rng, a, 31), [ADULT]) == [("pdq", a, 31.0)]
        assert index.match("pdq", b, [MINOR]) == []
        assert index.match("pdq", b, [ADULT]) == [("pdq", b, 0.0)]
        assert index.match("video_md5", md5, [ADULT]) == [("video_md5", md5, 0.0)]
        assert index.match("video_md5", md5, [MINOR]) == []
        unshare(database, [id_a], ADULT)
        with database.read() as session:
            index.catch_up(session)
        assert index.match("pdq", a, [ADULT]) == []
    finally:
        database.dispose()
