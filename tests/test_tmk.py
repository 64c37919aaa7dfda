"""TMK+PDQF (`video_tmk_pdqf`) against the TMK authors' sample videos and .tmk files.

The .tmk files in shared/testdata/tmk/ were made by the authors' C++ hasher, so they check our
parser, our wire encoding, our hashing (tmkpy must reproduce them byte for byte) and, through
tmkpy's own C++ scorer, our numpy level-1/level-2 scores.

Tests with `slow` in their name run ffmpeg + tmkpy on videos (~1 s each); `-k "not slow"`
deselects them.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hashing.signals import video_tmk_pdqf as tmk
from hashing.signals.base import InvalidHash, Signal, UnusableMedia
from hashing.signals.tmk_format import HEADER_SIZE, TMKFeatures
from tests.helpers import wire

TMK_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "tmk"
SAMPLES = [
    "chair-19-sd-bar",
    "chair-22-sd-grey-bar",
    "chair-22-with-small-logo-bar",
    "doorknob-hd-no-bar",
    "pattern-hd-no-bar",
    "pattern-sd-grey-bar",
]
PAIRS = list(itertools.combinations(SAMPLES, 2))


def _clip(name: str) -> str:
    return name.split("-")[0]  # chair / doorknob / pattern


SAME_CLIP = [p for p in PAIRS if _clip(p[0]) == _clip(p[1])]
CROSS_CLIP = [p for p in PAIRS if _clip(p[0]) != _clip(p[1])]


def sample(name: str, ext: str) -> Path:
    path = TMK_DIR / f"{name}.{ext}"
    if not path.is_file():
        pytest.fail(
            f"TMK reference file {path} not found: the tests expect the shared test data "
            "(TMK authors' samples) in ../shared/testdata/tmk relative to the project root",
            pytrace=False,
        )
    return path


def tmk_bytes(name: str) -> bytes:
    return sample(name, "tmk").read_bytes()


def _ids(pairs):
    return [f"{a}~{b}" for a, b in pairs]


# ---------------------------------------------------------------- file format


@pytest.mark.parametrize("name", SAMPLES)
def test_tmk_file_round_trips_byte_for_byte(name):
    raw = tmk_bytes(name)
    features = TMKFeatures.from_bytes(raw)
    assert features.to_bytes() == raw
    assert len(raw) == tmk.FILE_LENGTH == 263_344
    assert features.algorithm_magic == b"PDQF" and features.frames_per_second == 15
    assert tuple(features.periods) == tmk.PERIODS
    assert features.cos_features.shape == features.sin_features.shape == (4, 32, 256)
    assert features.frame_feature_count > 0


def test_layout_offsets_match_the_authors_writer():
    """Read fields at their documented offsets by hand, independently of the parser."""
    raw = tmk_bytes("chair-19-sd-bar")
    assert raw[0:12] == b"TMK1FVECPDQF"
    fps, p, c, d, count = struct.unpack_from("<5i", raw, 12)
    assert (fps, p, c, d) == (15, 4, 32, 256)
    features = TMKFeatures.from_bytes(raw)
    assert count == features.frame_feature_count
    assert struct.unpack_from("<4i", raw, HEADER_SIZE) == tmk.PERIODS
    pure_average_at = HEADER_SIZE + 4 * (p + c)  # 176
    cos_at = pure_average_at + 4 * d  # 1200
    sin_at = cos_at + 4 * p * c * d  # 132272
    assert struct.unpack_from("<f", raw, pure_average_at)[0] == features.pure_average[0]
    assert struct.unpack_from("<f", raw, cos_at + 4 * (1 * c * d + 2 * d + 3))[0] == features.cos_features[1, 2, 3]
    assert struct.unpack_from("<f", raw, sin_at + 4 * (3 * c * d + 31 * d + 255))[0] == features.sin_features[3, 31, 255]
    # The j = 0 sine term is sin(0) = 0 for every frame.
    assert not features.sin_features[:, 0, :].any()


@pytest.mark.parametrize("name", SAMPLES)
def test_wire_value_round_trips(name):
    raw = tmk_bytes(name)
    value = wire(name)
    assert len(value) == tmk.WIRE_LENGTH
    assert tmk.parse(value) == value
    assert tmk.parse(f"  {value}\n") == value
    assert base64.b64decode(tmk.parse(value), validate=True) == raw
    assert tmk.encode(tmk.decode(value)) == value


def test_level1_vector_is_the_pure_average():
    value = wire("doorknob-hd-no-bar")
    vector = tmk.level1_vector(value)
    assert vector.dtype == np.float32 and vector.shape == (256,)
    assert np.array_equal(vector, TMKFeatures.from_bytes(tmk_bytes("doorknob-hd-no-bar")).pure_average)
    unit_a = tmk.level1_vector(value, normalized=True)
    unit_b = tmk.level1_vector(wire("chair-19-sd-bar"), normalized=True)
    assert np.linalg.norm(unit_a) == pytest.approx(1.0, abs=1e-6)
    assert float(unit_a @ unit_b) == pytest.approx(tmk.level1_score(value, wire("chair-19-sd-bar")), abs=1e-5)


# ---------------------------------------------------------------- malformed values


def _mutated(mutate) -> str:
    data = bytearray(tmk_bytes("chair-19-sd-bar"))
    mutate(data)
    return base64.b64encode(bytes(data)).decode("ascii")


def _set_f32(data: bytearray, offset: int, x: float) -> None:
    struct.pack_into("<f", data, offset, x)


_AVERAGE_AT = HEADER_SIZE + 4 * (4 + 32)
_COS_AT = _AVERAGE_AT + 4 * 256
_SIN_AT = _COS_AT + 4 * 4 * 32 * 256


def _scale_cos(data: bytearray, factor: float = 10) -> None:
    block = np.frombuffer(bytes(data[_COS_AT:_COS_AT + 4 * 32 * 256]), dtype="<f4") * factor
    data[_COS_AT:_COS_AT + block.nbytes] = block.astype("<f4").tobytes()


def _zero_features(data: bytearray) -> None:
    """Header and constants kept, every feature zero: parses, and was accepted before."""
    data[_AVERAGE_AT:] = bytes(len(data) - _AVERAGE_AT)


MALFORMED = {
    "not_a_string": (b"TMK1", "tmk_bad_format"),
    "empty": ("", "tmk_bad_length"),
    "short": ("VE1LMUZWRUM=", "tmk_bad_length"),
    "one_char_too_many": (lambda: wire("chair-19-sd-bar") + "A", "tmk_bad_length"),
    "bad_character": (lambda: "!" + wire("chair-19-sd-bar")[1:], "tmk_bad_base64"),
    "inner_newline": (lambda: wire("chair-19-sd-bar")[:100] + "\n" + wire("chair-19-sd-bar")[101:], "tmk_bad_base64"),
    # Replacing the padding "==" with data decodes to one byte too many.
    "no_padding": (lambda: wire("chair-19-sd-bar")[:-2] + "AA", "tmk_bad_length"),
    "bad_project_magic": (lambda: _mutated(lambda d: d.__setitem__(0, ord("X"))), "tmk_bad_magic"),
    "bad_file_type_magic": (lambda: _mutated(lambda d: d.__setitem__(slice(4, 8), b"FEAT")), "tmk_bad_magic"),
    "header_disagrees_with_length": (lambda: _mutated(lambda d: struct.pack_into("<i", d, 16, 5)), "tmk_bad_length"),
    "other_algorithm": (lambda: _mutated(lambda d: d.__setitem__(slice(8, 12), b"UNIT")), "tmk_unsupported"),
    "other_fps": (lambda: _mutated(lambda d: struct.pack_into("<i", d, 12, 30)), "tmk_unsupported"),
    "other_period": (lambda: _mutated(lambda d: struct.pack_into("<i", d, 32, 2730)), "tmk_unsupported"),
    "other_coefficient": (lambda: _mutated(lambda d: _set_f32(d, 48, 0.5)), "tmk_unsupported"),
    "zero_frames": (lambda: _mutated(lambda d: struct.pack_into("<i", d, 28, 0)), "tmk_empty"),
    "nan_in_average": (lambda: _mutated(lambda d: _set_f32(d, 176, float("nan"))), "tmk_bad_value"),
    "inflated_features": (lambda: _mutated(_scale_cos), "tmk_bad_norm"),
    # Issue 21, finding 5: values that parse but are not a hasher's output.
    "shrunk_features": (lambda: _mutated(lambda d: _scale_cos(d, 0.5)), "tmk_bad_norm"),
    "sine_of_zero_not_zero": (lambda: _mutated(lambda d: _set_f32(d, _SIN_AT, 0.01)), "tmk_bad_norm"),
    "all_zero_features": (lambda: _mutated(_zero_features), "tmk_degenerate"),
    "implausible_frame_count": (lambda: _mutated(lambda d: struct.pack_into("<i", d, 28, 2**31 - 1)),
                                "tmk_bad_header"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_values_raise_invalid_hash_with_a_code(case):
    value, code = MALFORMED[case]
    value = value() if callable(value) else value
    with pytest.raises(InvalidHash) as excinfo:
        tmk.parse(value)
    assert excinfo.value.code == code
    # Comparing a malformed value must fail the same way, never score it.
    with pytest.raises(InvalidHash):
        tmk.level2_score(value, wire("chair-19-sd-bar"))


@pytest.mark.parametrize("cut", [0, 10, HEADER_SIZE - 1, HEADER_SIZE, 263_343])
def test_truncated_files_are_rejected_by_the_parser(cut):
    with pytest.raises(InvalidHash) as excinfo:
        TMKFeatures.from_bytes(tmk_bytes("pattern-hd-no-bar")[:cut])
    assert excinfo.value.code == "tmk_bad_length"


# ---------------------------------------------------------------- scores


@pytest.mark.parametrize("pair", SAME_CLIP, ids=_ids(SAME_CLIP))
def test_same_clip_pairs_match(pair):
    a, b = (wire(n) for n in pair)
    assert tmk.level1_score(a, b) >= tmk.LEVEL1_THRESHOLD
    assert tmk.level2_score(a, b) >= tmk.LEVEL2_THRESHOLD
    assert tmk.matches(a, b) and tmk.matches(b, a)
    assert tmk.distance(a, b) == pytest.approx(1 - tmk.level2_score(a, b))


@pytest.mark.parametrize("pair", CROSS_CLIP, ids=_ids(CROSS_CLIP))
def test_different_clips_do_not_match(pair):
    a, b = (wire(n) for n in pair)
    assert tmk.level2_score(a, b) < 0.5  # measured at most 0.29: far below the 0.7 threshold
    assert not tmk.matches(a, b)


@pytest.mark.parametrize("name", SAMPLES)
def test_a_video_scores_one_against_itself(name):
    features = TMKFeatures.from_bytes(tmk_bytes(name))  # TMKFeatures are accepted as well as strings
    assert tmk.level1_score(features, features) == pytest.approx(1.0, abs=1e-6)
    assert tmk.level2_score(features, wire(name)) == pytest.approx(1.0, abs=1e-5)
    assert tmk.distance(features, features) == pytest.approx(0.0, abs=1e-5)


def _tmkpy_object(tmkpy, name: str):
    f = TMKFeatures.from_bytes(tmk_bytes(name))
    return tmkpy.createTMKFeatureVectors(
        f.frames_per_second, f.frame_feature_count, f.periods.tolist(),
        f.fourier_coefficients.tolist(), f.pure_average.tolist(),
        f.cos_features.tolist(), f.sin_features.tolist(),
    )


def test_numpy_scores_equal_the_authors_cpp_scores():
    """tmkpy wraps the authors' TMKFeatureVectors::computeLevel{1,2}Score; we feed it the
    parsed files (createTMKFeatureVectors) and also let its C++ reader load the .tmk files
    itself (query), so the check does not rest on our parser alone."""
    tmkpy = pytest.importorskip("tmkpy", reason="tmkpy (the `video` extra) is not installed")
    objects = {n: _tmkpy_object(tmkpy, n) for n in SAMPLES}
    for a, b in itertools.combinations_with_replacement(SAMPLES, 2):
        cpp1 = tmkpy.TMKFeatureVectors.computeLevel1Score(objects[a], objects[b])
        cpp2 = tmkpy.TMKFeatureVectors.computeLevel2Score(objects[a], objects[b])
        assert tmk.level1_score(wire(a), wire(b)) == pytest.approx(cpp1, abs=1e-4), (a, b)
        assert tmk.level2_score(wire(a), wire(b)) == pytest.approx(cpp2, abs=1e-4), (a, b)
    for a in SAMPLES:
        haystack = [str(sample(b, "tmk")) for b in SAMPLES]
        cpp_scores = tmkpy.query(str(sample(a, "tmk")), haystack, 1)
        ours = [tmk.level2_score(wire(a), wire(b)) for b in SAMPLES]
        assert np.allclose(ours, cpp_scores, atol=1e-4), (a, ours, cpp_scores)


# ---------------------------------------------------------------- hashing videos (slow)


@pytest.fixture(scope="module")
def tmkpy_available():
    return pytest.importorskip("tmkpy", reason="tmkpy (the `video` extra) is not installed")


@pytest.mark.parametrize("name", SAMPLES)
def test_slow_hash_file_reproduces_the_authors_tmk_bytes(name, tmkpy_available):
    [signal] = tmk.hash_file(sample(name, "mp4"))
    assert isinstance(signal, Signal) and signal.signal_type == "video_tmk_pdqf" and signal.quality is None
    assert base64.b64decode(signal.value) == tmk_bytes(name)
    assert signal.value == tmk.parse(signal.value)


def _ffmpeg(*args: str) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("ffmpeg is not on PATH; it is needed to hash videos", pytrace=False)
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True)


@pytest.fixture(scope="module")
def generated_videos(tmp_path_factory, tmkpy_available):
    """A synthetic clip, the same clip re-encoded smaller and at a lower bitrate, and a
    different synthetic source (a Mandelbrot zoom, unlike testsrc's colour bars and counter)."""
    d = tmp_path_factory.mktemp("tmk-videos")
    original, reencoded, other = d / "testsrc.mp4", d / "testsrc-small.mp4", d / "mandelbrot.mp4"
    x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    _ffmpeg("-f", "lavfi", "-i", "testsrc=duration=6:size=320x240:rate=25", *x264, "-b:v", "800k", str(original))
    _ffmpeg("-i", str(original), "-vf", "scale=192:144", *x264, "-b:v", "150k", str(reencoded))
    _ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=320x240:rate=25", "-t", "6", *x264, str(other))
    return original, reencoded, other


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_slow_reencoded_video_matches_and_a_different_source_does_not(generated_videos):
    original, reencoded, other = generated_videos
    assert _md5(original) != _md5(reencoded)  # an exact-hash signal would miss this copy
    [a], [b], [c] = (tmk.hash_file(p) for p in generated_videos)
    assert a.value != b.value
    assert tmk.level2_score(a.value, b.value) >= tmk.LEVEL2_THRESHOLD  # measured 0.99999
    assert tmk.matches(a.value, b.value)
    assert tmk.level2_score(a.value, c.value) < tmk.LEVEL2_THRESHOLD  # measured 0.03
    assert not tmk.matches(a.value, c.value) and not tmk.matches(b.value, c.value)


def test_slow_hash_file_is_safe_with_shell_characters_in_the_path(generated_videos, tmp_path, monkeypatch):
    """tmkpy puts the path into a shell command unquoted; hash_file must hide it."""
    monkeypatch.chdir(tmp_path)  # where an injected `touch PWNED` would land
    original = generated_videos[0]
    hostile = tmp_path / "my clip; touch PWNED; x.mp4"  # runs `touch PWNED` if unprotected
    shutil.copyfile(original, hostile)
    [signal] = tmk.hash_file(hostile)
    assert signal.value == tmk.hash_file(original)[0].value
    assert not (tmp_path / "PWNED").exists()


def test_slow_hash_file_rejects_a_file_that_is_not_a_video(tmp_path, tmkpy_available):
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"this is not a video\n" * 100)
    with pytest.raises(UnusableMedia) as excinfo:
        tmk.hash_file(junk)
    assert excinfo.value.code == "tmk_no_frames"


def test_hash_file_explains_a_missing_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr(tmk.shutil, "which", lambda name: None)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0")
    with pytest.raises(RuntimeError, match="ffmpeg"):
        tmk.hash_file(video)
