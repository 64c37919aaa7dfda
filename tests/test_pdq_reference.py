"""Our PDQ pipeline against the PDQ authors' published hashes (shared/testdata/pdq/hashes.csv)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from hashing.signals import UnusableMedia, pdq
from tests.testdata import PDQ_DIR, pdq_reference_rows, require_testdata

ROWS = pdq_reference_rows()
AUTHORS_ROWS = [r for r in ROWS if r["authors_python_port_hex"] or r["authors_cpp_hex"]]
GOOD_ROWS = [r for r in ROWS if int(r["pdqhash_quality"]) >= 80]
LOW_ROWS = [r for r in ROWS if int(r["pdqhash_quality"]) < pdq.MIN_QUALITY]


def _ids(rows):
    return [r["path"] for r in rows]


def test_reference_vectors_are_present():
    require_testdata()
    assert len(GOOD_ROWS) >= 40 and len(AUTHORS_ROWS) >= 10 and len(LOW_ROWS) == 3


@pytest.mark.parametrize("row", [r for r in AUTHORS_ROWS if int(r["pdqhash_quality"]) >= 80],
                         ids=_ids([r for r in AUTHORS_ROWS if int(r["pdqhash_quality"]) >= 80]))
def test_within_10_bits_of_the_authors_hashes(row):
    [signal] = pdq.hash_file(PDQ_DIR / row["path"])
    for reference in (row["authors_python_port_hex"], row["authors_cpp_hex"]):
        if reference:
            assert pdq.distance(signal.value, reference) <= 10


@pytest.mark.parametrize("row", GOOD_ROWS, ids=_ids(GOOD_ROWS))
def test_pipeline_reproduces_pdqhash_after_the_512px_shrink(row):
    """The canonical pipeline (JPEG draft + EXIF + RGB + 512 px thumbnail) equals the reference
    column made with plain Pillow thumbnail: the draft shortcut costs no bits."""
    [signal] = pdq.hash_file(PDQ_DIR / row["path"])
    assert pdq.distance(signal.value, row["pdqhash_thumb512_hex"]) <= 2
    assert abs(signal.quality - int(row["pdqhash_thumb512_quality"])) <= 5


@pytest.mark.parametrize("row", LOW_ROWS, ids=_ids(LOW_ROWS))
def test_low_quality_images_are_rejected(row):
    with pytest.raises(UnusableMedia) as refused:
        pdq.hash_file(PDQ_DIR / row["path"])
    assert refused.value.code == "pdq_low_quality"


# Orientation tag -> the transpose that turns the upright picture into the stored pixels.
STORED_AS = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
             8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("tag", sorted(STORED_AS))
def test_exif_orientation_is_honoured(tmp_path, tag):
    """A phone stores pixels sideways and says so in the EXIF tag; the hash must be of the picture
    as displayed, not of the stored pixels."""
    require_testdata()
    upright_path = PDQ_DIR / "bridge-mods" / "aaa-orig.jpg"
    upright = Image.open(upright_path)
    exif = upright.getexif()
    exif[0x0112] = tag
    stored = tmp_path / f"tagged-{tag}.jpg"
    upright.transpose(STORED_AS[tag]).save(stored, quality=95, exif=exif.tobytes())
    upright_hash = pdq.hash_file(upright_path)[0].value
    assert pdq.distance(pdq.hash_file(stored)[0].value, upright_hash) <= 10
    raw_pixels = pdq.hash_array(np.asarray(Image.open(stored).convert("RGB").resize((512, 321))))
    assert not pdq.matches(raw_pixels.value, upright_hash)  # the tag really mattered


def test_authors_exif_samples_hash_as_displayed():
    require_testdata()
    for path in sorted((PDQ_DIR / "reg-test-input" / "exif-rotn").glob("*.jpg")):
        displayed = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        displayed.thumbnail((512, 512))
        assert pdq.distance(pdq.hash_file(path)[0].value,
                            pdq.hash_array(np.asarray(displayed)).value) <= 2, path.name


def test_dihedral_hashes_match_the_rotated_files():
    """compute_dihedral on the original gives hashes of its 8 rotations/mirrors: each published
    rotated file should be near one of them."""
    require_testdata()
    folder = PDQ_DIR / "reg-test-input" / "dih"
    dihedral = pdq.hash_file(folder / "bridge-1-original.jpg", dihedral=True)
    assert len(dihedral) == 8
    for rotated in sorted(folder.glob("bridge-*.jpg")):
        [signal] = pdq.hash_file(rotated)
        # Measured 0-18 bits: each file was re-encoded after rotating, the dihedral hashes were not.
        assert min(pdq.distance(signal.value, d.value) for d in dihedral) <= 20, rotated.name
