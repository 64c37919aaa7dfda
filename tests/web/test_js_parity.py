"""The page's JS hashing core, run under Node, against the Python reference on the same pixels.

- PDQ (web/js/pdq.js) equals `pdqhash` bit for bit, quality included, given the same RGB pixels:
  the canonical pixels of every reference image and of the generated set.
- The JS shrink (web/js/thumbnail.js) equals Pillow's `thumbnail((512, 512))` pixel for pixel on
  the same full-size RGB(A) input, so the page's pipeline is the CLI's.
- MD5 and SHA-256 (web/js/digests.js) equal hashlib on the reference videos and edge lengths.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from hashing.media import load_canonical_image
from hashing.signals.pdq import hash_array
from tests.testdata import TMK_DIR, require_testdata
from tests.web.helpers import PROJECT_ROOT, node_available
from tests.web.imageset import reference_images

HERE = Path(__file__).resolve().parent


def _run_node(script: str, *args: str) -> list[dict]:
    done = subprocess.run([node_available(), str(HERE / script), *args], cwd=PROJECT_ROOT,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout)


def _dump(folder: Path, name: str, pixels: np.ndarray, thumbnail: bool) -> dict:
    path = folder / f"{len(list(folder.iterdir()))}.raw"
    path.write_bytes(np.ascontiguousarray(pixels).tobytes())
    return {"name": name, "path": str(path), "width": pixels.shape[1], "height": pixels.shape[0],
            "channels": pixels.shape[2], "thumbnail": thumbnail}


def _all_images(image_set: list[Path]) -> list[Path]:
    require_testdata()
    return reference_images() + image_set


def test_js_pdq_equals_pdqhash_on_the_same_pixels(tmp_path, image_set):
    manifest, expected = [], {}
    for path in _all_images(image_set):
        rgb = np.asarray(load_canonical_image(path))
        manifest.append(_dump(tmp_path, path.name, rgb, thumbnail=False))
        signal = hash_array(rgb)
        expected[path.name] = (signal.value, signal.quality)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    results = _run_node("parity.mjs", str(tmp_path / "manifest.json"))
    mismatches = [(r["name"], r["hash"], r["quality"], expected[r["name"]]) for r in results
                  if (r["hash"], r["quality"]) != expected[r["name"]]]
    assert len(results) == len(manifest) >= 90
    assert mismatches == []


def test_js_thumbnail_equals_pillow_pixel_for_pixel(tmp_path, image_set):
    """Full-size decoded pixels in, as RGBA like a canvas gives them (the 4th channel must be
    ignored), Pillow's thumbnail((512, 512)) out, byte for byte. (RGB input: the next test.)"""
    manifest, expected = [], {}
    for path in _all_images(image_set):
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        rgb = np.asarray(image)
        rgb = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
        manifest.append(_dump(tmp_path, path.name, rgb, thumbnail=True))
        image.thumbnail((512, 512))
        small = np.ascontiguousarray(np.asarray(image))
        expected[path.name] = (small.shape[1], small.shape[0],
                               hashlib.sha256(small.tobytes()).hexdigest(), hash_array(small).value)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    results = _run_node("parity.mjs", str(tmp_path / "manifest.json"))
    mismatches = [r["name"] for r in results
                  if (r["width"], r["height"], r["pixels_sha256"], r["hash"]) != expected[r["name"]]]
    assert mismatches == []


def test_js_thumbnail_shapes_and_pass_orders(tmp_path):
    """Odd sizes: partial reduce blocks, 1xN/Nx1 reduces, vertical-first and horizontal-first
    resampling, sides already within 512 px."""
    rng = np.random.default_rng(5)
    shapes = [(513, 100), (100, 513), (1025, 2047), (2049, 2047), (777, 5000), (5000, 77),
              (195, 1250), (1000, 1334), (4032, 3024), (600, 600), (520, 515), (2000, 30),
              (30, 2000), (1537, 1536), (512, 513)]
    manifest, expected = [], {}
    for w, h in shapes:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.sin(xx / 31.0) * 70 + np.cos(yy / 17.0) * 70 + 128
        noise = rng.standard_normal((h, w), dtype=np.float32)
        rgb = np.clip(np.dstack([base + noise * 35, xx * 255.0 / w, yy * 255.0 / h + noise * 12]),
                      0, 255).astype(np.uint8)
        name = f"{w}x{h}"
        manifest.append(_dump(tmp_path, name, rgb, thumbnail=True))
        image = Image.fromarray(rgb)
        image.thumbnail((512, 512))
        small = np.ascontiguousarray(np.asarray(image))
        expected[name] = (small.shape[1], small.shape[0], hashlib.sha256(small.tobytes()).hexdigest())
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    results = _run_node("parity.mjs", str(tmp_path / "manifest.json"))
    assert [r["name"] for r in results
            if (r["width"], r["height"], r["pixels_sha256"]) != expected[r["name"]]] == []


def test_js_digests_equal_hashlib(tmp_path):
    require_testdata()
    paths = sorted(TMK_DIR.glob("*.mp4"))
    rng = np.random.default_rng(3)
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 4 * 1024 * 1024 + 17):
        extra = tmp_path / f"bytes-{n}.bin"
        extra.write_bytes(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        paths.append(extra)
    results = _run_node("digests.mjs", *map(str, paths))
    for result in results:
        data = Path(result["path"]).read_bytes()
        assert result["md5"] == hashlib.md5(data).hexdigest(), result["path"]
        assert result["sha256"] == hashlib.sha256(data).hexdigest(), result["path"]
