"""Reader/writer for the TMK authors' binary feature-vector file (`.tmk`, "FVEC").

Layout, as written by TMKFeatureVectors::writeToOutputStream in facebook/ThreatExchange
(tmk/cpp/algo/tmkfv.cpp, header struct in tmk/cpp/io/tmkiotypes.h). All numbers are
little-endian (the C++ fwrite()s native x86 structs; we pin little-endian so a big-endian
client cannot produce a different file). P = periods, C = Fourier coefficients,
D = frame-feature dimension:

    offset  size     field
    0       4        project magic  b"TMK1"
    4       4        file-type magic b"FVEC"
    8       4        frame-feature algorithm magic (b"PDQF" for TMK+PDQF)
    12      4        int32 frames per second (15)
    16      4        int32 P, number of periods (4)
    20      4        int32 C, number of Fourier coefficients (32)
    24      4        int32 D, frame-feature dimension (256)
    28      4        int32 frame-feature count (time-resampled frames hashed; informational)
    32      4*P      int32 periods
    ..      4*C      float32 Fourier coefficients
    ..      4*D      float32 pure-average feature (level-1 vector)
    ..      4*P*C*D  float32 cos features, [period][coefficient][dimension]
    ..      4*P*C*D  float32 sin features, same order

For TMK+PDQF (P=4, C=32, D=256) that is 263,344 bytes. There is no trailing data and no
checksum, so the exact length is the main structural check.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from hashing.signals.base import InvalidHash

PROJECT_MAGIC = b"TMK1"
FILE_TYPE_MAGIC = b"FVEC"

_HEADER = struct.Struct("<4s4s4s5i")
HEADER_SIZE = _HEADER.size  # 32
_F32 = np.dtype("<f4")
_I32 = np.dtype("<i4")

# Caps so a forged header cannot make us compute (or allocate for) a huge expected size;
# real files use P=4, C=32, D=256.
_MAX_DIM = 4096


@dataclass(eq=False)
class TMKFeatures:
    """One parsed `.tmk` file. Arrays are float32/int32 exactly as stored."""

    algorithm_magic: bytes
    frames_per_second: int
    frame_feature_count: int
    periods: np.ndarray  # int32[P]
    fourier_coefficients: np.ndarray  # float32[C]
    pure_average: np.ndarray  # float32[D]
    cos_features: np.ndarray  # float32[P, C, D]
    sin_features: np.ndarray  # float32[P, C, D]

    @property
    def num_periods(self) -> int:
        return int(self.periods.shape[0])

    @property
    def num_fourier_coefficients(self) -> int:
        return int(self.fourier_coefficients.shape[0])

    @property
    def frame_feature_dimension(self) -> int:
        return int(self.pure_average.shape[0])

    @classmethod
    def from_bytes(cls, data: bytes) -> "TMKFeatures":
        if len(data) < HEADER_SIZE:
            raise InvalidHash(
                "tmk_bad_length", f"TMK data is {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header"
            )
        project, file_type, algorithm, fps, p, c, d, count = _HEADER.unpack_from(data, 0)
        if project != PROJECT_MAGIC or file_type != FILE_TYPE_MAGIC:
            raise InvalidHash(
                "tmk_bad_magic", f"not a TMK feature-vector file (magic {project!r} {file_type!r})"
            )
        if not all(0 <= n <= _MAX_DIM for n in (p, c, d)):
            raise InvalidHash("tmk_bad_header", f"implausible TMK dimensions P={p} C={c} D={d}")
        expected = expected_length(p, c, d)
        if len(data) != expected:
            raise InvalidHash(
                "tmk_bad_length", f"TMK data is {len(data)} bytes; header P={p} C={c} D={d} implies {expected}"
            )

        offset = HEADER_SIZE

        def take(dtype: np.dtype, n: int) -> np.ndarray:
            nonlocal offset
            arr = np.frombuffer(data, dtype=dtype, count=n, offset=offset)
            offset += n * dtype.itemsize
            # Native-endian copies: writable, and independent of the caller's buffer.
            return arr.astype(dtype.newbyteorder("="))

        periods = take(_I32, p)
        coefficients = take(_F32, c)
        pure_average = take(_F32, d)
        cos_features = take(_F32, p * c * d).reshape(p, c, d)
        sin_features = take(_F32, p * c * d).reshape(p, c, d)
        return cls(algorithm, fps, count, periods, coefficients, pure_average, cos_features, sin_features)

    def to_bytes(self) -> bytes:
        p, c, d = self.num_periods, self.num_fourier_coefficients, self.frame_feature_dimension
        for name, arr in (("cos_features", self.cos_features), ("sin_features", self.sin_features)):
            if arr.shape != (p, c, d):
                raise ValueError(f"{name} has shape {arr.shape}, expected {(p, c, d)}")
        header = _HEADER.pack(
            PROJECT_MAGIC, FILE_TYPE_MAGIC, self.algorithm_magic,
            self.frames_per_second, p, c, d, self.frame_feature_count,
        )
        parts = [header, np.ascontiguousarray(self.periods, dtype=_I32).tobytes()]
        for arr in (self.fourier_coefficients, self.pure_average, self.cos_features, self.sin_features):
            parts.append(np.ascontiguousarray(arr, dtype=_F32).tobytes())
        return b"".join(parts)


def expected_length(num_periods: int, num_coefficients: int, dimension: int) -> int:
    p, c, d = num_periods, num_coefficients, dimension
    return HEADER_SIZE + 4 * (p + c + d + 2 * p * c * d)
