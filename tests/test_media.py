"""The canonical pipeline reads the formats people actually have (GIF, HEIC, WebP, PNG with alpha)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

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


# The decoding rule per image class (docs/hashing.md); the page applies the same rule
# (tests/web/test_decode_classes.py compares them).

def _png16_grey(path, grey16: np.ndarray) -> None:
    h, w = grey16.shape
    Image.frombytes("I;16", (w, h), grey16.astype("<u2").tobytes()).save(path)


def test_16bit_grey_keeps_its_picture(tmp_path, bridge):
    """Pillow's convert("RGB") clips 16-bit grey at 255 (a white, refused image); the rule keeps
    the high byte of each sample, as for 16-bit colour and as browsers decode."""
    grey8 = np.asarray(bridge.convert("L"), dtype=np.uint16)
    path = tmp_path / "grey16.png"
    _png16_grey(path, grey8 * 256 + 100)  # high byte = the 8-bit picture
    as8 = tmp_path / "grey8.png"
    Image.fromarray(grey8.astype(np.uint8), "L").save(as8)
    [signal] = pdq.hash_file(path)
    assert signal.value == pdq.hash_file(as8)[0].value


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_hash_alike_whatever_colour_is_stored_under_them(tmp_path, bridge, mode):
    """Transparency is composited over white: the invisible colour stored under alpha 0 (black,
    white, anything) does not change the hash."""
    rgb = np.asarray(bridge.resize((600, 400)))
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :200] = 0
    alpha[100:200, 300:400] = 100
    hashes = set()
    for under in (0, 255, 77):
        stored = rgb.copy()
        stored[alpha == 0] = under
        image = Image.fromarray(np.dstack([stored, alpha]), "RGBA")
        if mode == "LA":
            image = image.convert("LA")
        path = tmp_path / f"{mode}-{under}.png"
        if mode == "P":
            pal = Image.fromarray(rgb).quantize(255)  # the same palette for every `under`
            indices = np.asarray(pal).copy()
            indices[alpha == 0] = 255
            image = Image.fromarray(indices, "P")
            image.putpalette(pal.getpalette()[: 255 * 3] + [under] * 3)
            image.save(path, transparency=255)
        else:
            image.save(path)
        hashes.add(pdq.hash_file(path)[0].value)
    assert len(hashes) == 1
    # and over white exactly: the same as the picture with white painted where it is transparent
    flat = rgb.astype(np.uint32)
    a = alpha[..., None].astype(np.uint32)
    white = ((2 * flat * a + 255) // 510 + 255 - a).astype(np.uint8)
    if mode == "RGBA":
        Image.fromarray(white).save(tmp_path / "white.png")
        assert hashes == {pdq.hash_file(tmp_path / "white.png")[0].value}


@pytest.mark.parametrize("where", ["webp-exif", "heic-exif", "jpeg-xmp", "png-xmp", "webp-xmp"])
def test_orientation_is_read_from_any_container_and_from_xmp(tmp_path, bridge, where):
    if where.startswith("heic"):  # pillow-heif turns the EXIF tag into irot/imir and back
        pytest.importorskip("pillow_heif")
    upright = bridge.resize((600, 400))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # displayed after a 90° clockwise turn
    container, kind = where.split("-")
    path = tmp_path / f"turned.{container}"
    if kind == "exif":
        exif = Image.Exif()
        exif[0x0112] = 6
        stored.save(path, exif=exif.tobytes(), **({"lossless": True} if container == "webp" else {"quality": 95}))
    else:
        xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
               b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
               b' tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
        if container == "png":  # Pillow's PNG writer ignores xmp=: the iTXt chunk XMP lives in
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", xmp.decode(), zip=True)
            stored.save(path, pnginfo=info)
        else:
            stored.save(path, xmp=xmp, **({"lossless": True} if container == "webp" else {"quality": 95}))
    reference = tmp_path / "upright.png"
    upright.save(reference)
    assert pdq.distance(pdq.hash_file(path)[0].value, pdq.hash_file(reference)[0].value) <= 8
