"""The hashguard pytx extension (clients/pytx) hands pulled vPDQ values to python-threatexchange's
own vPDQ signal type unchanged (no vPDQ code in the extension: pytx's `vpdq` extension, which
HMA uses, reads hashguard's values as they are), and pytx's vPDQ index (faiss) then finds the
shared video from a re-encoded copy hashed by `hashguard hash`, and not an unrelated clip."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from threatexchange.extensions.vpdq.vpdq import VPDQSignal
from threatexchange.extensions.vpdq.vpdq_index import VPDQIndex

from hashing.signals import vpdq
from tests.video_clips import make_clips

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "pytx"))
from hashguard_pytx.exchange import (HashguardCollabConfig,  # noqa: E402
                                     HashguardSignalExchangeAPI, HashguardSignalMetadata)

pytestmark = pytest.mark.slow  # makes video clips with ffmpeg (~15 s)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("vpdq-pytx"))


def test_pytx_takes_pulled_vpdq_values_unchanged_and_its_index_matches(clips):
    [original] = vpdq.hash_file(clips["original.mp4"])
    record = HashguardSignalMetadata("vpdq", original.value, "adult", 0)
    converted = HashguardSignalExchangeAPI.naive_convert_to_signal_type(
        [VPDQSignal], HashguardCollabConfig("http://127.0.0.1:1", "hashguard"),
        {"adult/vpdq/x": record})
    assert converted == {VPDQSignal: {original.value: record}}

    index = VPDQIndex.build([(original.value, "shared")])
    [copy] = vpdq.hash_file(clips["reencode_small.mp4"])
    [other] = vpdq.hash_file(clips["other_life.mp4"])
    [found] = index.query(copy.value)
    assert found.metadata == "shared"
    assert (found.similarity_info.query_match_percent,
            found.similarity_info.compared_match_percent) == vpdq.match_percentages(
                copy.value, original.value)
    assert index.query(other.value) == []
