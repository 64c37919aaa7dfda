"""vPDQ on the device (hashing/signals/vpdq.py): the same hashes as the vPDQ authors' `vpdq`
package and python-threatexchange's vPDQ extension, byte for byte; its wire form; and the
reference's match rule on real clips made by ffmpeg (tests/video_clips.py)."""
from __future__ import annotations

import json

import pytest
import vpdq as vpdq_package  # the vPDQ authors' C++ hasher (the `test` extra)
from threatexchange.extensions.vpdq.vpdq import VPDQSignal
from threatexchange.extensions.vpdq.vpdq_util import json_to_vpdq, vpdq_to_json
from typer.testing import CliRunner

from hashing.cli import app
from hashing.signals import InvalidHash, UnusableMedia
from hashing.signals import vpdq
from tests.video_clips import make_clips

COPIES = ["reencode_low_bitrate.mp4", "reencode_small.mp4", "reencode_mpeg4.avi", "trimmed.mp4"]
OTHERS = ["other_testsrc2.mp4", "other_life.mp4"]
HASHED = ["original.mp4", *COPIES, *OTHERS, "ntsc_bt709.mp4", "mjpeg_full_range.avi"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("vpdq-clips"))


@pytest.fixture(scope="module")
def hashes(clips):
    return {name: vpdq.hash_file(clips[name])[0].value for name in HASHED}


@pytest.mark.parametrize("name", HASHED)
def test_frames_equal_the_vpdq_package(clips, hashes, name):
    """Frame by frame: the authors' frames, PDQ bits, qualities and times (float32 as theirs,
    written with the reference's three significant digits)."""
    theirs = vpdq_package.computeHash(str(clips[name]), seconds_per_hash=1.0)
    ours = vpdq.decode(hashes[name])
    assert len(ours) == len(theirs) > 0
    for mine, reference in zip(ours, theirs):
        assert (mine.pdq_hex, mine.quality) == (reference.hex, reference.quality)
        assert str(mine) == f"{reference.hex},{reference.quality},{reference.timestamp:.3}"


@pytest.mark.parametrize("name", ["original.mp4", "ntsc_bt709.mp4", "mjpeg_full_range.avi"])
def test_value_is_python_threatexchange_s_string(clips, hashes, name):
    """What pytx's VPDQSignal (HMA's vPDQ) computes for the file is our value, character for
    character, and its parser takes our value back unchanged."""
    assert VPDQSignal.get_name() == vpdq.NAME
    assert VPDQSignal.hash_from_file(clips[name]) == hashes[name]
    assert vpdq_to_json(json_to_vpdq(hashes[name])) == hashes[name]
    assert VPDQSignal.validate_signal_str(hashes[name]) == hashes[name]


def test_frame_times_are_written_as_the_reference_does():
    frames = [vpdq.Frame("ab" * 32, 100, t) for t in (0.0, 0.9676, 12.0, 123.0, 1234.5)]
    assert json.loads(vpdq.encode(frames)) == [
        f"{'ab' * 32},100,{t}" for t in ("0.0", "0.968", "12.0", "1.23e+02", "1.23e+03")]


def test_parse_returns_the_canonical_text(hashes):
    value = hashes["original.mp4"]
    items = json.loads(value)
    loose = json.dumps([item.upper().replace(",1.0", ",1.000") for item in items], indent=2)
    assert loose != value and vpdq.parse(loose) == value
    assert vpdq.parse(value) == value


@pytest.mark.parametrize("value, code", [
    ("", "vpdq_bad_format"),
    ("{}", "vpdq_bad_format"),
    ("[" * 100_000 + "]" * 100_000, "vpdq_bad_format"),  # nesting deeper than the parser's stack
    ("[]", "vpdq_bad_length"),
    (json.dumps([f"{'ab' * 32},100,0.0"] * (vpdq.MAX_FRAMES + 1)), "vpdq_bad_length"),
    ('["ab,100,0.0"]', "vpdq_bad_frame"),
    (json.dumps([f"{'ab' * 32},101,0.0"]), "vpdq_bad_frame"),
    (json.dumps([f"{'ab' * 32},100,-1.0"]), "vpdq_bad_frame"),
    (json.dumps([f"{'ab' * 32},100,nan"]), "vpdq_bad_frame"),
    (json.dumps([f"{'ab' * 32},100,1e999"]), "vpdq_bad_frame"),
    (json.dumps([f"{'ab' * 32},100"]), "vpdq_bad_frame"),
    (json.dumps([[f"{'ab' * 32}", 100, 0.0]]), "vpdq_bad_frame"),
    (json.dumps([f"{'ab' * 32},49,0.0", f"{'cd' * 32},0,1.0"]), "vpdq_low_quality"),
    ("x" * (vpdq.MAX_VALUE_CHARS + 1), "vpdq_bad_format"),
])
def test_parse_refuses(value, code):
    with pytest.raises(InvalidHash) as refused:
        vpdq.parse(value)
    assert refused.value.code == code


@pytest.mark.parametrize("copy", COPIES)
def test_reencoded_copies_match_the_original(hashes, copy):
    query_percent, compared_percent = vpdq.match_percentages(hashes[copy], hashes["original.mp4"])
    assert vpdq.matches(hashes[copy], hashes["original.mp4"])
    assert query_percent >= vpdq.QUERY_MATCH_PERCENT
    # The reference's own compare (python-threatexchange, HMA) agrees, percentages included.
    reference = VPDQSignal.compare_hash(hashes[copy], hashes["original.mp4"])
    assert reference.match
    assert (reference.distance.query_match_percent,
            reference.distance.compared_match_percent) == (query_percent, compared_percent)


@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.parametrize("query", ["original.mp4", *COPIES])
def test_unrelated_clips_do_not_match(hashes, query, other):
    assert not vpdq.matches(hashes[query], hashes[other])
    assert not vpdq.matches(hashes[other], hashes[query])
    assert not VPDQSignal.compare_hash(hashes[query], hashes[other]).match


def test_trimmed_copy_stored_does_not_cover_the_whole_video(hashes):
    """The rule is asymmetric: six stored seconds are 75% of an eight-second query."""
    assert vpdq.match_percentages(hashes["original.mp4"], hashes["trimmed.mp4"])[0] == 75.0
    assert not vpdq.matches(hashes["original.mp4"], hashes["trimmed.mp4"])


def test_flat_video_is_refused(clips):
    with pytest.raises(UnusableMedia) as refused:
        vpdq.hash_file(clips["flat_gradients.mp4"])
    assert refused.value.code == "vpdq_low_quality"


def test_too_long_video_is_refused_not_cut(clips, monkeypatch):
    monkeypatch.setattr(vpdq, "MAX_FRAMES", 5)
    with pytest.raises(UnusableMedia) as refused:
        vpdq.hash_file(clips["original.mp4"])
    assert refused.value.code == "vpdq_too_long"


def test_not_a_video_is_unusable(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video" * 100)
    with pytest.raises(UnusableMedia) as refused:
        vpdq.hash_file(fake)
    assert refused.value.code == "vpdq_no_frames"


def test_hashguard_hash_prints_the_vpdq_value(clips, hashes):
    result = CliRunner().invoke(app, ["hash", "--json", str(clips["original.mp4"])])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    [record] = [r for r in records if r["signal_type"] == "vpdq"]
    assert record["value"] == hashes["original.mp4"] and "quality" not in record
