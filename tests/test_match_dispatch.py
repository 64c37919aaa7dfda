"""The match index as a dispatcher (partners/match_index.py): each signal type is served by the
index its module names, kept current from a real change log (PostgreSQL and SQLite), and a PDQ
merge never holds up lookups (issue 20, bug 5)."""
from __future__ import annotations

import random
import threading
import time
import types

import pytest

from hashing.signals import SIGNAL_TYPES, pdq, video_md5, video_sha256, video_tmk_pdqf
from partners import pdq_index
from partners.match_index import INDEX_CLASSES, MatchIndex, index_class
from partners.pdq_index import PdqIndex
from store.db import Database
from tests.helpers import catch_up, share, unshare, wire

ADULT, MINOR = "adult", "under18_at_capture"
# Two encodings of the same clip (they match) and another clip (it does not): the TMK authors'
# reference files.
TMK_SHARED, TMK_SAME_CLIP, TMK_OTHER_CLIP = \
    "chair-19-sd-bar", "chair-22-sd-grey-bar", "doorknob-hd-no-bar"


def random_pdq(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def near(rng: random.Random, value: str, distance: int) -> str:
    number = int(value, 16)
    for bit in rng.sample(range(256), distance):
        number ^= 1 << bit
    return f"{number:064x}"


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def test_every_signal_type_names_the_index_that_serves_it():
    index = MatchIndex(background_merge=False)
    assert set(index.indexes) == set(SIGNAL_TYPES)
    for name, signal in SIGNAL_TYPES.items():
        assert signal.MATCH_INDEX in INDEX_CLASSES, name
        assert type(index.indexes[name]) is index_class(signal) is INDEX_CLASSES[signal.MATCH_INDEX]
    assert type(index.indexes[pdq.NAME]) is PdqIndex
    # a type naming no known index is refused when the match index is built, not at a lookup
    unknown = types.ModuleType("new_signal")
    unknown.NAME, unknown.MATCH_INDEX = "new_signal", "no_such_index"
    with pytest.raises(LookupError, match="new_signal"):
        index_class(unknown)


def test_catch_up_serves_every_type_from_the_change_log(db):
    rng = random.Random(3)
    photo, md5, sha = random_pdq(rng), "ab" * 16, "cd" * 32
    tmk = video_tmk_pdqf.parse(wire(TMK_SHARED))
    ids = share(db, [(pdq.NAME, photo), (video_md5.NAME, md5), (video_sha256.NAME, sha),
                     (video_tmk_pdqf.NAME, tmk)])
    share(db, [(video_md5.NAME, "ef" * 16)], MINOR)
    index = MatchIndex(background_merge=False)
    catch_up(db, index)
    query = near(rng, photo, 30)
    assert index.match(pdq.NAME, query, [ADULT]) == [(pdq.NAME, photo, 30.0)]
    assert index.match(pdq.NAME, query, [MINOR]) == []
    assert index.match(video_md5.NAME, md5, [ADULT]) == [(video_md5.NAME, md5, 0.0)]
    assert index.match(video_md5.NAME, md5, [MINOR]) == []
    assert index.match(video_md5.NAME, "ef" * 16, [MINOR, ADULT]) == [
        (video_md5.NAME, "ef" * 16, 0.0)]
    assert index.match(video_sha256.NAME, sha, [ADULT]) == [(video_sha256.NAME, sha, 0.0)]
    same_clip = video_tmk_pdqf.parse(wire(TMK_SAME_CLIP))
    [(kind, value, distance)] = index.match(video_tmk_pdqf.NAME, same_clip, [ADULT])
    assert (kind, value) == (video_tmk_pdqf.NAME, tmk)
    assert distance == round(1 - video_tmk_pdqf.level2_score(same_clip, tmk), 6)
    assert index.match(video_tmk_pdqf.NAME, same_clip, [MINOR]) == []
    other_clip = video_tmk_pdqf.parse(wire(TMK_OTHER_CLIP))
    assert index.match(video_tmk_pdqf.NAME, other_clip, [ADULT]) == []
    unshare(db, ids)
    catch_up(db, index)
    assert index.match(pdq.NAME, query, [ADULT]) == []
    assert index.match(video_md5.NAME, md5, [ADULT]) == []
    assert index.match(video_sha256.NAME, sha, [ADULT]) == []
    assert index.match(video_tmk_pdqf.NAME, same_clip, [ADULT]) == []
    assert index.match(video_md5.NAME, "ef" * 16, [MINOR]) != []


def test_lookups_of_every_type_go_on_while_catch_up_waits_for_a_pdq_merge(db, monkeypatch):
    """Bug 5: catch_up used to wait for a PDQ merge (after a burst of adds) while holding the one
    lock that MD5, SHA-256 and TMK lookups take, so those lookups waited for the merge too."""
    rng = random.Random(5)
    monkeypatch.setattr(pdq_index, "MAX_DELTA_ROWS", 100)  # a burst is 100 delta rows here
    index = MatchIndex(background_merge=True)
    index.pdq._merge_delta_rows = 50  # a background merge starts at 50 delta rows
    photos = [random_pdq(rng) for _ in range(20)]
    md5, sha = "12" * 16, "34" * 32
    tmk = video_tmk_pdqf.parse(wire(TMK_SHARED))
    share(db, [(pdq.NAME, v) for v in photos]
          + [(video_md5.NAME, md5), (video_sha256.NAME, sha), (video_tmk_pdqf.NAME, tmk)])
    catch_up(db, index)
    index.pdq.compact()  # a main table: from now on merges run in the background

    merging, finish_merge = threading.Event(), threading.Event()
    merge_slot = PdqIndex._merge_slot

    def held_merge_slot(self, s, plan):  # the real merge, held before its first slot
        merging.set()
        finish_merge.wait(60)
        merge_slot(self, s, plan)

    monkeypatch.setattr(PdqIndex, "_merge_slot", held_merge_slot)
    burst = [random_pdq(rng) for _ in range(130)]
    share(db, [(pdq.NAME, v) for v in burst[:60]])
    catch_up(db, index)  # 60 delta rows: a merge starts, and is held
    assert merging.wait(10)
    share(db, [(pdq.NAME, v) for v in burst[60:120]])
    catch_up(db, index)  # 120 delta rows: past the burst limit
    share(db, [(pdq.NAME, v) for v in burst[120:]])
    writer = threading.Thread(target=catch_up, args=(db, index))  # must wait for the merge
    answers: dict[str, list] = {}
    same_clip = video_tmk_pdqf.parse(wire(TMK_SAME_CLIP))

    def look_up_everything():
        answers["md5"] = index.match(video_md5.NAME, md5, [ADULT])
        answers["sha"] = index.match(video_sha256.NAME, sha, [ADULT])
        answers["tmk"] = index.match(video_tmk_pdqf.NAME, same_clip, [ADULT])
        answers["pdq"] = index.match(pdq.NAME, burst[0], [ADULT])  # on the published view

    reader = threading.Thread(target=look_up_everything)
    try:
        writer.start()
        time.sleep(0.3)  # the writer is in catch_up, waiting for the merge
        assert writer.is_alive()
        started = time.monotonic()
        reader.start()
        reader.join(5)
        waited = time.monotonic() - started
        assert not reader.is_alive(), "lookups waited for the PDQ merge"
        assert writer.is_alive()  # the merge was still held throughout
    finally:
        finish_merge.set()
        writer.join(60)
        reader.join(60)
    assert waited < 5
    assert answers["md5"] == [(video_md5.NAME, md5, 0.0)]
    assert answers["sha"] == [(video_sha256.NAME, sha, 0.0)]
    assert [value for _, value, _ in answers["tmk"]] == [tmk]
    assert answers["pdq"] == [(pdq.NAME, burst[0], 0.0)]
    assert not writer.is_alive()
    for value in burst + photos:  # the writer's entries were applied once the merge finished
        assert index.match(pdq.NAME, value, [ADULT]) == [(pdq.NAME, value, 0.0)]
    index.pdq.wait_for_merge()
