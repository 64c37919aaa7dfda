"""The canonical pipeline reads the formats people actually have (GIF, HEIC, WebP, PNG with alpha)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hashing.media import CANONICAL_SIZE, load_canonical_image
from hashing.signals import pdq
from tests.testdata import PDQ_DIR, require_testdata


@pytest.fixture(scope="module")
def bridge():
    require_testdata()
    return Image.open(PDQ_DIR / "bridge-mods" / "aaa-orig.jpg").convert("RGB")


def _reference(image: Image.Image) -> str:
    return pdq.hash_file(PDQ_DIR / "bridge-mods" / "aaa-orig.jpg")[0].value


@pytest.mark.parametrize("suffix,options", [
    (".png", {}), (".webp", {"quality": 90}), (".gif", {}), (".heic", {"quality": 90}),
])
def test_format_hashes_like_the_jpeg(tmp_path, bridge, suffix, options):
    if suffix == ".heic":
        pytest.importorskip("pillow_heif")
    path = tmp_path / f"bridge{suffix}"
    bridge.save(path, **options)
    assert pdq.distance(pdq.hash_file(path)[0].value, _reference(bridge)) <= 16


def test_animated_gif_uses_its_first_frame(tmp_path, bridge):
    path = tmp_path / "anim.gif"
    other = Image.open(PDQ_DIR / "misc-images" / "c.png").convert("RGB").resize(bridge.size)
    bridge.save(path, save_all=True, append_images=[other], duration=100)
    assert pdq.distance(pdq.hash_file(path)[0].value, _reference(bridge)) <= 16


def test_large_images_are_shrunk_to_the_canonical_size(tmp_path, bridge):
    path = tmp_path / "big.jpg"
    bridge.resize((4000, 2510)).save(path, quality=90)
    image = load_canonical_image(path)
    assert max(image.size) == CANONICAL_SIZE and image.mode == "RGB"
    assert pdq.distance(pdq.hash_array(np.asarray(image)).value, _reference(bridge)) <= 10
