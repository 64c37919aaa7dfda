"""Per-file problems stay one plain line for that file, and the run goes on (issue 18).

A 200-megapixel camera JPEG crashed the whole run with a traceback ending in Pillow's
`DecompressionBombError`, and a 96 MP one printed Pillow's "could be decompression bomb DOS attack"
warning. Both are now hashed (the JPEG draft decodes them at 1/8 scale); a decompression-bomb PNG
(a tiny file declaring a huge picture) is refused before any pixel is decoded, with one line. The
CLI runs as the installed console script, as a person runs it.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from hashing.signals import pdq
from tests.testdata import PDQ_DIR, require_testdata

EXE = Path(sys.executable).with_name("hashguard")
PILLOW_WORDS = ("DecompressionBomb", "decompression bomb DOS", "Traceback")


def _png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit PNG of width x height, all black: a few hundred kB that decode to
    width*height pixels (the RGB a pipeline makes of it: 3 bytes each)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    packer = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    require_testdata()
    folder = tmp_path_factory.mktemp("large")
    source = Image.open(PDQ_DIR / "bridge-mods" / "aaa-orig.jpg").convert("L")
    source.save(folder / "source.png")
    made = {"source": folder / "source.png"}
    for name, size in (("mp200", (20000, 10000)), ("mp96", (12000, 8000))):
        big = source.resize(size, Image.BILINEAR)
        big.save(folder / f"{name}.jpg", quality=75)
        made[name] = folder / f"{name}.jpg"
        del big
    # Past Pillow's refusal (2 x ~89.5 MP) and between its warning and this device's limit.
    made["bomb"] = _png_bomb(folder / "bomb.png", 30000, 30000)
    made["bomb120"] = _png_bomb(folder / "bomb120.png", 12000, 10000)
    assert made["bomb"].stat().st_size < 200_000
    made["ok"] = folder / "ok.png"
    Image.open(PDQ_DIR / "misc-images" / "c.png").save(made["ok"])
    return made


def _hash_json(*paths: Path) -> tuple[subprocess.CompletedProcess, dict[str, list[dict]]]:
    out = subprocess.run([str(EXE), "hash", "--json", *map(str, paths)], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "COLUMNS": "80"},
                         stdin=subprocess.DEVNULL)
    records: dict[str, list[dict]] = {}
    for line in out.stdout.splitlines():
        record = json.loads(line)
        records.setdefault(Path(record["path"]).stem, []).append(record)
    return out, records


@pytest.mark.slow
def test_huge_photos_are_hashed_and_bombs_refused_one_line_each(files):
    order = ("bomb", "mp200", "bomb120", "mp96", "ok", "source")
    out, records = _hash_json(*(files[name] for name in order))
    assert not any(word in out.stderr for word in PILLOW_WORDS), out.stderr
    assert set(records) == set(order), out.stderr  # every file has its record: the run went on
    [source] = records["source"]
    for name in ("mp200", "mp96"):
        [big] = records[name]
        assert big["quality"] >= 50, big
        # the same picture, 200 and 96 MP: its hash is the source's, within matching distance
        assert pdq.distance(big["value"], source["value"]) <= 16, (name, big, source)
    for name, megapixels in (("bomb", "over 179 megapixels"), ("bomb120", "120 megapixels")):
        [bomb] = records[name]
        assert bomb["error_code"] == "too_large" and "value" not in bomb, bomb
        assert bomb["error"].startswith("too large to hash on this device"), bomb
        assert megapixels in bomb["error"], bomb
    [ok] = records["ok"]
    assert ok["quality"] == 100
    assert out.returncode == 1  # a file could not be hashed: not a clean run
    human = subprocess.run([str(EXE), "hash", str(files["bomb"]), str(files["ok"])],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "80"}, stdin=subprocess.DEVNULL)
    [line] = human.stderr.splitlines()  # one line for the bomb, whole
    assert "bomb.png" in line and "too large to hash on this device" in line
    assert ok["value"] in human.stdout


def test_a_broken_file_among_good_ones_is_one_line(tmp_path):
    require_testdata()
    (tmp_path / "a-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    (tmp_path / "b-truncated.png").write_bytes(
        (PDQ_DIR / "misc-images" / "c.png").read_bytes()[:300])
    Image.open(PDQ_DIR / "misc-images" / "c.png").save(tmp_path / "c-ok.png")
    out, records = _hash_json(tmp_path)
    assert "Traceback" not in out.stderr
    assert records["a-broken"][0]["error_code"] == "unreadable"
    assert records["a-broken"][0]["error"].startswith("unreadable")
    assert records["b-truncated"][0]["error_code"] == "unreadable"
    assert records["c-ok"][0]["quality"] == 100
