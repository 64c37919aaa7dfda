"""Hashing speed: our canonical pipeline vs. the raw library calls, measured in the same run.

Prints images/s for PDQ on a 1 MP and a 12 MP JPEG (made from the PDQ authors' bridge photo), and
seconds of video hashed per second for TMK+PDQF on the TMK authors' sample videos.
    python bench/hash_bench.py [--repeat N]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hashing.signals import pdq, video_tmk_pdqf  # noqa: E402

TESTDATA = ROOT.parent / "shared" / "testdata"


def timed(fn, repeat: int) -> float:
    """Median seconds of `repeat` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def decode_full(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def bench_pdq(workdir: Path, repeat: int) -> None:
    source = Image.open(TESTDATA / "pdq" / "bridge-mods" / "aaa-orig.jpg").convert("RGB")
    print(f"{'image':>7} {'ours ms':>8} {'img/s':>7} | {'raw pdqhash ms':>14} {'decode+raw ms':>13}"
          f" | {'ours/raw':>8} {'ours/(decode+raw)':>17} | bits apart")
    for label, size in (("1 MP", (1155, 866)), ("12 MP", (4000, 3000))):
        path = workdir / f"{label.replace(' ', '')}.jpg"
        source.resize(size, Image.LANCZOS).save(path, quality=92)
        full = decode_full(path)
        ours = timed(lambda: pdq.hash_file(path), repeat)
        raw = timed(lambda: pdqhash.compute(full), repeat)
        decode_raw = timed(lambda: pdqhash.compute(decode_full(path)), repeat)
        apart = pdq.distance(pdq.hash_file(path)[0].value, pdq.hash_array(full).value)
        print(f"{label:>7} {ours * 1e3:8.1f} {1 / ours:7.1f} | {raw * 1e3:14.1f} "
              f"{decode_raw * 1e3:13.1f} | {ours / raw:8.2f} {ours / decode_raw:17.2f} | {apart}")


def video_seconds(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def bench_tmk(workdir: Path, repeat: int) -> None:
    import shutil

    import tmkpy

    ffmpeg = shutil.which("ffmpeg")
    print(f"\n{'video':>30} {'length s':>8} | {'ours s':>7} {'video s/s':>9} | {'raw tmkpy s':>11}"
          f" {'video s/s':>9} | ours/raw")
    total_video = total_ours = total_raw = 0.0
    for path in sorted((TESTDATA / "tmk").glob("*.mp4")):
        length = video_seconds(path)
        ours = timed(lambda: video_tmk_pdqf.hash_file(path), repeat)
        raw = timed(lambda: tmkpy.hashVideo(str(path), ffmpeg), repeat)
        total_video, total_ours, total_raw = total_video + length, total_ours + ours, total_raw + raw
        print(f"{path.name:>30} {length:8.1f} | {ours:7.2f} {length / ours:9.1f} | {raw:11.2f} "
              f"{length / raw:9.1f} | {ours / raw:.2f}")
    print(f"{'all':>30} {total_video:8.1f} | {total_ours:7.2f} {total_video / total_ours:9.1f} | "
          f"{total_raw:11.2f} {total_video / total_raw:9.1f} | {total_ours / total_raw:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-video", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} "
          f"python={platform.python_version()} pdqhash, median of {args.repeat} runs")
    with tempfile.TemporaryDirectory() as tmp:
        bench_pdq(Path(tmp), args.repeat)
        if not args.skip_video:
            bench_tmk(Path(tmp), max(1, args.repeat // 3))


if __name__ == "__main__":
    main()
