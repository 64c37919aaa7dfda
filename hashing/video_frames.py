"""The frames vPDQ hashes, decoded by the ffmpeg command (no C++ build on the person's device).

The choice of frames and pixels follows the vPDQ authors' hasher (the `vpdq` package) so that
the hashes are theirs bit for bit (tests/test_vpdq.py compares them):
* the frame rate is the stream's average frame rate, or its "real" (r_frame_rate) one when the
  average is unknown;
* every k-th decoded frame is kept, k = int(seconds_per_hash * frame rate) (at least 1),
  counting frames in the order the decoder returns them, from 0;
* frames are converted to 8-bit RGB at the stream's own size by swscale's "area" method, with
  the BT.601 matrix whatever the file is tagged with (their hasher never passes the tag on), and
  without applying the rotation a phone stores beside the stream (they ignore it too);
* the timestamp of frame n is n / frame rate, computed in single precision as they do.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from hashing.signals.base import UnusableMedia


@dataclass(frozen=True)
class VideoStream:
    width: int
    height: int
    frame_rate: float


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"vPDQ needs {name} on PATH: install ffmpeg (apt-get install ffmpeg, "
                           "brew install ffmpeg, or https://ffmpeg.org/download.html)")
    return found


def _rate(text: str | None) -> Fraction:
    try:
        return Fraction(text or "0/0")
    except (ValueError, ZeroDivisionError):
        return Fraction(0)


def probe(path: Path) -> VideoStream:
    """Size and frame rate of the file's first video stream."""
    out = subprocess.run(
        [_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,avg_frame_rate,r_frame_rate", "-of", "json", "--", str(path)],
        capture_output=True, check=False)
    streams = json.loads(out.stdout or b"{}").get("streams") or []
    if out.returncode != 0 or not streams:
        raise UnusableMedia("vpdq_no_frames", "ffmpeg finds no video stream in this file")
    stream = streams[0]
    rate = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if rate <= 0 or width <= 0 or height <= 0:
        raise UnusableMedia("vpdq_no_frames", "this video's frame rate or size is unknown")
    return VideoStream(width, height, float(rate))


def frame_step(frame_rate: float, seconds_per_hash: float) -> int:
    """Every how many decoded frames one is hashed (the authors' int() truncation)."""
    return max(1, int(seconds_per_hash * frame_rate))


def timestamp(frame_number: int, frame_rate: float) -> float:
    """Seconds of frame `frame_number`, in float32 as the authors' hasher computes it."""
    return float(np.float32(frame_number) / np.float32(frame_rate))


def sampled_frames(path: str | Path, seconds_per_hash: float,
                   max_frames: int) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame number, timestamp, HxWx3 uint8 RGB) of the frames vPDQ hashes, one at a time
    (a 1080p frame is 6 MB: a whole video is never held). More than `max_frames` of them is
    refused (UnusableMedia) rather than hashed in part."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    stream = probe(path)
    step = frame_step(stream.frame_rate, seconds_per_hash)
    # Scaled to the first frame's size explicitly: a stream that changes size mid-way is
    # rescaled as their hasher does, and every frame read below has the same byte count.
    video_filter = (f"select=not(mod(n\\,{step})),"
                    f"scale=w={stream.width}:h={stream.height}:flags=area:in_color_matrix=bt601,"
                    "format=rgb24")
    command = [_tool("ffmpeg"), "-v", "error", "-nostdin", "-noautorotate", "-i", str(path),
               "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", video_filter,
               "-fps_mode", "passthrough", "-f", "rawvideo", "-"]
    frame_bytes = stream.width * stream.height * 3
    # stderr to a file, not a pipe: a broken file's many messages must not fill a pipe nobody
    # reads while frames are read from stdout (both would wait for ever).
    with tempfile.TemporaryFile() as log, \
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log) as ffmpeg:
        try:
            index = 0
            while True:
                raw = ffmpeg.stdout.read(frame_bytes)
                if len(raw) < frame_bytes:
                    break
                if index >= max_frames:
                    raise UnusableMedia("vpdq_too_long", f"a vPDQ value holds at most {max_frames} "
                                        f"frames ({max_frames * seconds_per_hash / 60:.0f} minutes "
                                        "at one frame a second); this video is longer")
                rgb = np.frombuffer(raw, dtype=np.uint8).reshape(stream.height, stream.width, 3)
                number = index * step
                yield number, timestamp(number, stream.frame_rate), rgb
                index += 1
        finally:
            ffmpeg.kill()  # at the end it has exited already; early (refused, closed) it must stop
            ffmpeg.wait()
            log.seek(0)
            errors = log.read(64 * 1024).decode(errors="replace").strip()
    if index == 0:
        last = errors.splitlines()[-1:] or [""]
        raise UnusableMedia("vpdq_no_frames", f"ffmpeg decoded no video frames {last[0][:200]}")
