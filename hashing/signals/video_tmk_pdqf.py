"""TMK+PDQF, the TMK authors' (Meta) temporal-match-kernel video hash (python-threatexchange's
`video_tmk_pdqf`), computed by the optional `tmkpy` package and compared here in numpy.

Wire encoding: the value is the standard base64 (RFC 4648 section 4, `+/` alphabet, with `=`
padding, no line breaks) of the complete `.tmk` feature-vector file exactly as the authors' C++
writes it (layout in `tmk_format`). For TMK+PDQF that file is 263,344 bytes, so a value is
351,128 characters. The encoding is lossless: decoding gives back the authors' file byte for
byte, so values can be exchanged with their tools. `parse` returns the canonical re-encoding
(surrounding whitespace stripped).

Matching follows the authors' two-level scheme and default thresholds
(tmk/cpp/bin/tmk_default_thresholds.h): level 1 is the cosine similarity of the time-averaged
frame features (cheap, indexable), level 2 the TMK score at the best time offset; a pair
matches when both are >= 0.7.
"""
from __future__ import annotations

import base64
import contextlib
import binascii
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from hashing.signals.base import InvalidHash, Signal, UnusableMedia
from hashing.signals.tmk_format import TMKFeatures, expected_length

NAME = "video_tmk_pdqf"
# served by a level-1 scan, then level 2 on the survivors (partners/match_index.py)
MATCH_INDEX = "tmk_two_level"
LEVEL1_THRESHOLD = 0.7
LEVEL2_THRESHOLD = 0.7
# Bounds on one match request's cost (issue 21: one query against 33 stored near-duplicates
# took 3.1 s). Level 2 runs on at most this many level-1 survivors per query, the most similar
# first, so a query reports at most this many matches; a query with that many matches is
# matched all the same.
LEVEL2_CANDIDATES_PER_QUERY = 16
# TMK queries answered per match request (each up to 16 level-2 scores, ~2-4 ms each); more
# are answered with the per-query error `match_query_limit`.
MAX_MATCH_QUERIES_PER_REQUEST = 8

# The one parameter set the authors' hasher (and tmkpy) produces: PDQ-float frame features,
# 15 frames/s, Poullot periods and coefficients (tmkfv.cpp). Values with other parameters are
# refused, so any two accepted values are comparable.
ALGORITHM_MAGIC = b"PDQF"
FRAMES_PER_SECOND = 15
PERIODS = (2731, 4391, 9767, 14653)
NUM_COEFFICIENTS = 32
DIMENSION = 256
FILE_LENGTH = expected_length(len(PERIODS), NUM_COEFFICIENTS, DIMENSION)  # 263,344
WIRE_LENGTH = 4 * -(-FILE_LENGTH // 3)  # 351,128
# The header's frame count is informational (it does not change a score), so only its
# plausibility is checked: 48 hours at 15 frames/s.
MAX_FRAME_COUNT = 48 * 3600 * FRAMES_PER_SECOND


def _poullot_coefficients(beta: float = 32.0, m: int = NUM_COEFFICIENTS) -> np.ndarray:
    """Poullot's Fourier coefficients a_0 = (I_0(b) - e^-b) / (2 sinh b), a_n = I_n(b) / sinh b.

    The authors tabulate these; we derive them (modified Bessel I_n by its integral
    (1/pi) * int_0^pi e^{b cos t} cos(nt) dt, scaled by e^-b to stay in range) so the check
    below does not depend on a copied table. The trapezoid rule is spectrally accurate here.
    """
    steps = 4096
    t = np.linspace(0.0, np.pi, steps + 1)
    integrand = np.exp(beta * (np.cos(t) - 1.0)) * np.cos(np.arange(m)[:, None] * t)
    trapezoid = (integrand.sum(axis=1) - (integrand[:, 0] + integrand[:, -1]) / 2.0) * (np.pi / steps)
    bessel_scaled = trapezoid / np.pi
    sinh_scaled = (1.0 - np.exp(-2.0 * beta)) / 2.0
    coefficients = bessel_scaled / sinh_scaled
    coefficients[0] = (bessel_scaled[0] - np.exp(-2.0 * beta)) / (2.0 * sinh_scaled)
    return coefficients


COEFFICIENTS = _poullot_coefficients()
# Level-2 scores divide by a_0 + 2 * sum(a_j), which makes a video score 1.0 against itself.
_PAIR_SCORE_NORMALIZER = float(COEFFICIENTS[0] + 2.0 * COEFFICIENTS[1:].sum())


def _check_profile(f: TMKFeatures) -> TMKFeatures:
    """Refuse values that are well-formed but not comparable, or could inflate scores."""
    if f.algorithm_magic != ALGORITHM_MAGIC or f.frames_per_second != FRAMES_PER_SECOND:
        raise InvalidHash(
            "tmk_unsupported",
            f"only TMK+PDQF at {FRAMES_PER_SECOND} fps is supported "
            f"(got {f.algorithm_magic!r} at {f.frames_per_second} fps)",
        )
    if (
        tuple(int(p) for p in f.periods) != PERIODS
        or f.num_fourier_coefficients != NUM_COEFFICIENTS
        or f.frame_feature_dimension != DIMENSION
        or not np.allclose(f.fourier_coefficients, COEFFICIENTS, rtol=1e-6, atol=0.0)
    ):
        raise InvalidHash(
            "tmk_unsupported", "TMK periods, coefficients or dimension are not the standard ones"
        )
    if f.frame_feature_count <= 0:
        raise InvalidHash("tmk_empty", "this TMK value was computed from zero frames")
    if f.frame_feature_count > MAX_FRAME_COUNT:
        raise InvalidHash("tmk_bad_header", f"a TMK value of more than {MAX_FRAME_COUNT} frames "
                                            "(48 hours at 15 frames/s) is not a real video's")
    arrays = (f.pure_average, f.cos_features, f.sin_features)
    if not all(np.isfinite(a).all() for a in arrays):
        raise InvalidHash("tmk_bad_value", "TMK value contains NaN or infinite numbers")
    if not f.pure_average.any():
        # The level-1 key would be the zero vector: such a value can never match anything, so
        # storing and serving its 351 KB buys nothing.
        raise InvalidHash("tmk_degenerate", "this TMK value's average frame feature is all zeros")
    _check_norms(f)
    return f


def _check_norms(f: TMKFeatures) -> None:
    """The hasher L2-normalizes each cos/sin vector and scales it by sqrt(a_j), so each has norm
    sqrt(a_j) exactly (float32 rounding aside; the authors' samples are within 1e-6), except the
    j = 0 sine term, sin(0) = 0 for every frame. A zero vector is allowed too (what normalizing
    an all-zero sum leaves). Larger vectors would push level-2 scores above 1 against
    everything, i.e. forge matches; other sizes mean the value is not the hasher's output."""
    expected = np.sqrt(COEFFICIENTS)[None, :]
    for name, features in (("cos", f.cos_features), ("sin", f.sin_features)):
        norms = np.linalg.norm(features.astype(np.float64), axis=2)
        if (norms > expected * (1.0 + 1e-3) + 1e-6).any():
            raise InvalidHash("tmk_bad_norm",
                              "TMK cos/sin features are not normalized as the hasher writes them")
        if (np.abs(norms - expected) > expected * 1e-3)[norms > 0].any():
            raise InvalidHash("tmk_bad_norm", f"TMK {name} features have norms the hasher never "
                                              "writes (each is 0 or sqrt of its coefficient)")
    if f.sin_features[:, 0, :].any():
        raise InvalidHash("tmk_bad_norm", "TMK j = 0 sine features are not zero (sin 0 = 0)")


def _decode(value: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidHash("tmk_bad_format", "a video_tmk_pdqf value is a base64 string")
    text = value.strip()
    # Length first: cheap, and it keeps oversized input from being decoded at all.
    if len(text) != WIRE_LENGTH:
        raise InvalidHash(
            "tmk_bad_length",
            f"a video_tmk_pdqf value is {WIRE_LENGTH} base64 characters (got {len(text)})",
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidHash("tmk_bad_base64", f"video_tmk_pdqf value is not valid base64: {exc}") from None


def decode(value: str) -> TMKFeatures:
    """Wire value -> validated TMKFeatures (raises InvalidHash)."""
    return _check_profile(TMKFeatures.from_bytes(_decode(value)))


def encode(features: TMKFeatures) -> str:
    return base64.b64encode(features.to_bytes()).decode("ascii")


def parse(value: str) -> str:
    """Canonical form of a video_tmk_pdqf value, or InvalidHash."""
    raw = _decode(value)
    _check_profile(TMKFeatures.from_bytes(raw))
    return base64.b64encode(raw).decode("ascii")


def _features(x: str | TMKFeatures) -> TMKFeatures:
    return _check_profile(x) if isinstance(x, TMKFeatures) else decode(x)


def decode_stored(value: str) -> TMKFeatures:
    """Features of a value that passed `parse` when it was stored (the match index's
    candidates): parsed, not checked again. Scoring passes the result to the functions below,
    which still check it; the saving is for callers that hold many candidates."""
    return TMKFeatures.from_bytes(base64.b64decode(value))


# ---------------------------------------------------------------- hashing

# tmkpy 0.1.1 pastes the input and ffmpeg paths unquoted into a shell command (popen), so only
# paths made of these characters may reach it; the input is linked under a fixed name first.
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_./+-]+")
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


@contextlib.contextmanager
def _native_stderr_to(log: Path):
    """tmkpy runs ffmpeg with its banner and progress on our stderr (file descriptor 2, below
    Python's sys.stderr); send them to `log` so `hashguard hash` output stays readable."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "wb") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def hash_file(path: str | Path) -> list[Signal]:
    """TMK+PDQF of a video file, byte-identical to the authors' `tmk-hash-video` output.

    Needs ffmpeg on PATH and the optional `tmkpy` package.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError(
            "video_tmk_pdqf needs ffmpeg on PATH: install it (apt-get install ffmpeg, "
            "brew install ffmpeg, or https://ffmpeg.org/download.html)"
        )
    try:
        import tmkpy  # optional extra: a C++ build, so the rest of hashing works without it
    except ImportError:
        raise RuntimeError(
            "video_tmk_pdqf needs the optional `tmkpy` package (pip install tmkpy; building it "
            "needs a C++ compiler and swig)"
        ) from None
    if not _SHELL_SAFE.fullmatch(ffmpeg):
        raise RuntimeError(f"ffmpeg path {ffmpeg!r} has characters tmkpy cannot pass to a shell")

    with tempfile.TemporaryDirectory(prefix="hashguard-tmk-") as tmp:
        suffix = path.suffix if _SAFE_SUFFIX.fullmatch(path.suffix) else ""
        link = Path(tmp) / f"input{suffix}"  # ffmpeg uses the extension as a format hint
        if not _SHELL_SAFE.fullmatch(str(link)):
            raise RuntimeError(f"temporary directory {tmp!r} has characters tmkpy cannot pass to a shell")
        try:
            os.symlink(path.resolve(), link)
        except OSError:  # e.g. Windows without symlink rights
            shutil.copyfile(path, link)
        with _native_stderr_to(Path(tmp) / "ffmpeg.log") as log:
            vectors = tmkpy.hashVideo(str(link), ffmpeg)
        # tmkpy reports a failed decode only on stderr; it returns an empty object.
        if vectors.getFrameFeatureCount() <= 0:
            last = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            raise UnusableMedia("tmk_no_frames",
                                f"ffmpeg decoded no video frames from this file {last[0][:200]}")
        out = Path(tmp) / "out.tmk"
        # Let the authors' writer serialize, so the bytes are theirs, not our re-encoding.
        if not vectors.writeToOutputFile(str(out), "hashguard"):
            raise RuntimeError("tmkpy failed to write the .tmk file")
        raw = out.read_bytes()
    return [Signal(NAME, parse(base64.b64encode(raw).decode("ascii")), None)]


# ---------------------------------------------------------------- comparison

def level1_vector(value: str | TMKFeatures, normalized: bool = False) -> np.ndarray:
    """The 256-float time-averaged frame feature, the key for a level-1 (cosine) index.

    With `normalized`, it is scaled to unit length so inner product equals level1_score.
    """
    vector = _features(value).pure_average.astype(np.float32)
    if normalized:
        norm = np.linalg.norm(vector)
        if norm > 0:
            vector = vector / norm
    return vector


def level1_score(a: str | TMKFeatures, b: str | TMKFeatures) -> float:
    """Cosine similarity of the pure-average features (TMKFeatureVectors::computeLevel1Score)."""
    u = _features(a).pure_average.astype(np.float64)
    v = _features(b).pure_average.astype(np.float64)
    denominator = np.linalg.norm(u) * np.linalg.norm(v)
    return float(u @ v / denominator) if denominator > 0 else 0.0


def level2_score(a: str | TMKFeatures, b: str | TMKFeatures) -> float:
    """TMK score at the best time offset (TMKFeatureVectors::computeLevel2Score).

    For each period T the kernel at offset delta = 2*pi*k/T (k = 0..T-1) is
        K(delta) = cc_0 + sum_{j>=1} cos(j delta) (cc_j + ss_j) + sin(j delta) (sc_j - cs_j)
    where cc_j = <a.cos[T,j], b.cos[T,j]>, ss_j = <a.sin, b.sin>, sc_j = <a.sin, b.cos>,
    cs_j = <a.cos, b.sin>. The score is the largest K over all periods and offsets, divided by
    a_0 + 2 sum a_j. The C++ steps cos/sin(j delta) by a float32 recurrence; we evaluate them
    directly in float64, which agrees to ~1e-6.

    K over the T offsets is a trigonometric polynomial sampled at T equally spaced points, so
    one inverse FFT per period evaluates it: K = cc_0 + Re(T * ifft(X)) with X_j = e_j - i o_j.
    That is O(T log T) time and O(T) memory, where evaluating cos/sin(j delta) for every offset
    took a (T x 31) matrix per period and per score (issue 21: 33 candidates took 3.1 s).
    """
    fa, fb = _features(a), _features(b)
    ca, sa = fa.cos_features.astype(np.float64), fa.sin_features.astype(np.float64)
    cb, sb = fb.cos_features.astype(np.float64), fb.sin_features.astype(np.float64)
    cc = np.einsum("pjd,pjd->pj", ca, cb)
    even = cc[:, 1:] + np.einsum("pjd,pjd->pj", sa, sb)[:, 1:]
    odd = np.einsum("pjd,pjd->pj", sa, cb)[:, 1:] - np.einsum("pjd,pjd->pj", ca, sb)[:, 1:]
    best = -np.inf
    for i, period in enumerate(PERIODS):
        spectrum = np.zeros(period, dtype=np.complex128)
        spectrum[1:NUM_COEFFICIENTS] = even[i] - 1j * odd[i]
        kernel = cc[i, 0] + period * np.fft.ifft(spectrum).real
        best = max(best, float(kernel.max()))
    return best / _PAIR_SCORE_NORMALIZER


def distance(a: str | TMKFeatures, b: str | TMKFeatures) -> float:
    """1 - level-2 score: 0 for identical videos, larger for less similar ones."""
    return 1.0 - level2_score(a, b)


def matches(a: str | TMKFeatures, b: str | TMKFeatures) -> bool:
    fa, fb = _features(a), _features(b)  # decode once for both levels
    return level1_score(fa, fb) >= LEVEL1_THRESHOLD and level2_score(fa, fb) >= LEVEL2_THRESHOLD
