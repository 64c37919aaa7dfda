"""Real video clips for the vPDQ tests, made by ffmpeg from its built-in sources (no stored
media): an original, its re-encodes (lower bitrate, smaller size, trimmed, another codec) and
unrelated clips. Made once per test session into a temporary folder. Also the original as a phone
stores portrait or mirrored video: the same frames with a display matrix in the track header."""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

SECONDS = 8
SIZE = "640x360"
# name -> (ffmpeg input arguments, output arguments); "original" is the input of the re-encodes.
SOURCES = {
    # A zoom into the Mandelbrot set: detailed frames that change every second.
    "original.mp4": (["-f", "lavfi", "-i", f"mandelbrot=size={SIZE}:rate=25"],
                     ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]),
    "other_testsrc2.mp4": (["-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate=25"],
                           ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]),
    "other_life.mp4": (["-f", "lavfi", "-i", f"life=size={SIZE}:rate=25:mold=10:ratio=0.3:"
                                             "seed=7:life_color=white:death_color=black"],
                       ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]),
    # Soft colour gradients: PDQ quality below 50 in every frame.
    "flat_gradients.mp4": (["-f", "lavfi", "-i", f"gradients=size={SIZE}:rate=25:seed=5:speed=0.05"],
                           ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]),
    # 29.97 frames a second and tagged BT.709: the frame step (29) and the colour matrix the
    # vPDQ authors' hasher uses are not the obvious ones.
    "ntsc_bt709.mp4": (["-f", "lavfi", "-i", "mandelbrot=size=320x240:rate=30000/1001"],
                       ["-c:v", "libx264", "-colorspace", "bt709", "-color_primaries", "bt709",
                        "-color_trc", "bt709"]),
    # Full-range (JPEG) YUV at 10 frames a second in AVI.
    "mjpeg_full_range.avi": (["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10"],
                             ["-c:v", "mjpeg"]),
}
REENCODES = {
    "reencode_low_bitrate.mp4": ([], ["-c:v", "libx264", "-preset", "veryfast", "-crf", "40"]),
    "reencode_small.mp4": ([], ["-vf", "scale=320:180", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]),
    # Another codec (MPEG-4 part 2, fast to encode) at a coarse quantiser.
    "reencode_mpeg4.avi": ([], ["-c:v", "mpeg4", "-q:v", "12"]),
    # The last six seconds (decoding starts at 2 s; re-encoded, so frames are exact).
    "trimmed.mp4": (["-ss", "2"], ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]),
}

# The original's frames, stream-copied, with the turn a phone records beside them. ffmpeg 5.1's
# `rotate` tag is written as the tkhd display matrix (ffprobe shows it as side data); it cannot
# write a mirror (-display_hflip is ffmpeg 6), so the four mirrored matrices are written into the
# track header directly: (a, b, c, d) of the 16.16 matrix [a b; c d] as ISO 14496-12 orders it.
ROTATED = {"rotate_90.mp4": 90, "rotate_180.mp4": 180, "rotate_270.mp4": 270}
_ONE = 1 << 16
MIRRORED = {
    "mirror_horizontal.mp4": (-_ONE, 0, 0, _ONE),
    "mirror_vertical.mp4": (_ONE, 0, 0, -_ONE),
    "mirror_transpose.mp4": (0, _ONE, _ONE, 0),
    "mirror_transverse.mp4": (0, -_ONE, -_ONE, 0),
}


def _ffmpeg(*args: str) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("the vPDQ tests need ffmpeg (apt-get install ffmpeg; `make test` installs it)",
                    pytrace=False)
    subprocess.run([ffmpeg, "-v", "error", "-y", *args], check=True)


def make_clips(folder: Path) -> dict[str, Path]:
    """Every clip above in `folder`, by name."""
    clips = {}
    for name, (inputs, outputs) in SOURCES.items():
        clips[name] = folder / name
        _ffmpeg(*inputs, "-t", str(SECONDS), "-pix_fmt",
                "yuvj420p" if name.endswith(".avi") else "yuv420p", *outputs, str(clips[name]))
    for name, (inputs, outputs) in REENCODES.items():
        clips[name] = folder / name
        _ffmpeg(*inputs, "-i", str(clips["original.mp4"]), "-an", *outputs, str(clips[name]))
    return clips


def _with_matrix(source: Path, target: Path, abcd: tuple[int, int, int, int]) -> None:
    """`source` with the display matrix of its (only) track header replaced: the same bytes
    otherwise, so the same stored frames."""
    data = bytearray(source.read_bytes())
    at = data.index(b"tkhd") + 4
    # version/flags, then times and durations (32-bit in version 0, 64-bit in 1), 8 reserved bytes,
    # layer, alternate group, volume and 2 reserved bytes: the matrix follows.
    at += 4 + (20 if data[at] == 0 else 32) + 8 + 8
    a, b, c, d = abcd
    data[at:at + 36] = struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 1 << 30)
    target.write_bytes(bytes(data))


def make_turned_clips(folder: Path, original: Path) -> dict[str, Path]:
    """ROTATED and MIRRORED copies of `original` in `folder`, by name."""
    clips = {}
    for name, degrees in ROTATED.items():
        clips[name] = folder / name
        _ffmpeg("-i", str(original), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}",
                str(clips[name]))
    for name, abcd in MIRRORED.items():
        clips[name] = folder / name
        _with_matrix(original, clips[name], abcd)
    return clips
