"""PDQ survives everyday edits (resize, re-encode, small crop, mirror) and separates unrelated images."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from hashing.media import canonicalize
from hashing.signals import pdq
from tests.testdata import PDQ_DIR, require_testdata

ORIGINAL = PDQ_DIR / "bridge-mods" / "aaa-orig.jpg"
UNRELATED = [
    PDQ_DIR / "misc-images" / "c.png",
    PDQ_DIR / "reg-test-input" / "pen-and-coaster.png",
    *sorted((PDQ_DIR / "reg-test-input" / "labelme-subset").glob("q[0-9]*.jpg"))[2:],
]


def _hash(image: Image.Image) -> str:
    return pdq.hash_array(np.asarray(canonicalize(image))).value


def _jpeg_roundtrip(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


@pytest.fixture(scope="module")
def original():
    require_testdata()
    return Image.open(ORIGINAL).convert("RGB")


TRANSFORMS = {
    "resize_half": lambda im: im.resize((im.width // 2, im.height // 2)),
    "resize_to_300px": lambda im: im.resize((300, int(300 * im.height / im.width))),
    "jpeg_quality_70": lambda im: _jpeg_roundtrip(im, 70),
    # PDQ is crop-sensitive (measured on this photo: 1% a side = 10 bits, 2% = 24, 2.5% = 32).
    "crop_1_percent_each_side": lambda im: im.crop((im.width // 100, im.height // 100,
                                                    im.width - im.width // 100,
                                                    im.height - im.height // 100)),
    "greyscale": lambda im: ImageOps.grayscale(im),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transformed_copy_still_matches(original, name):
    assert pdq.matches(_hash(original), _hash(TRANSFORMS[name](original)))


def test_mirror_matches_through_the_dihedral_hashes(original):
    mirrored = _hash(ImageOps.mirror(original))
    assert not pdq.matches(_hash(original), mirrored)  # PDQ alone is not mirror-invariant
    dihedral = pdq.hash_array_dihedral(np.asarray(canonicalize(original)))
    assert min(pdq.distance(mirrored, d.value) for d in dihedral) <= pdq.MATCH_THRESHOLD


@pytest.mark.parametrize("path", UNRELATED, ids=lambda p: Path(p).name)
def test_unrelated_images_do_not_match(original, path):
    assert not pdq.matches(_hash(original), pdq.hash_file(path)[0].value)


def test_parse_accepts_canonical_and_rejects_malformed():
    value = "D8F8F0CCE0F4A84F0E370A22028F67F0B36E2ED596623E1D33E6B39C4E9C9B22"
    assert pdq.parse(value) == value.lower()
    for bad, code in [("zz", "pdq_bad_format"), ("0" * 64, "pdq_degenerate"),
                      ("f" * 64, "pdq_degenerate"), ("0" * 63 + "1", "pdq_degenerate"),
                      (value + "00", "pdq_bad_format"), (None, "pdq_bad_format")]:
        with pytest.raises(pdq.InvalidHash) as refused:
            pdq.parse(bad)
        assert refused.value.code == code


def test_blank_image_is_rejected_by_the_quality_gate(tmp_path):
    Image.new("RGB", (640, 480), (200, 30, 30)).save(tmp_path / "flat.png")
    with pytest.raises(pdq.UnusableMedia):
        pdq.hash_file(tmp_path / "flat.png")
