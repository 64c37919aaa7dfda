"""The one canonical image pipeline: decode, orientation, flatten to 8-bit RGB, downscale. Every PDQ
hash we make (CLI, server-side checks, benchmarks) goes through `load_canonical_image`; the browser
page (web/js/decode.js) applies the same rule, written down per image class in docs/hashing.md.

Steps, in order:
1. Decode with Pillow (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF; HEIC/HEIF through pillow-heif when
   installed). Animated files (GIF, WebP, APNG) use their first frame.
2. JPEG only: ask the decoder for a DCT-scaled draft no smaller than DRAFT_BOX. This is what makes a
   12 MP photo cheap (the decoder skips 3/4 of the work); the draft is at least twice the final
   size, so the result is the same as decoding in full (measured: 0 bits apart on the bridge set).
   The page asks the browser's JPEG decoder for the same scaled size (web/js/decode.js).
   Then the pixels still to decode are counted: past MAX_DECODED_PIXELS the image is refused
   (ImageTooLarge) before any is decoded; a camera JPEG of any size passes, at 1/8 scale.
3. Apply the orientation Pillow reads: the EXIF tag in any container (JPEG, PNG eXIf, WebP, TIFF),
   else `tiff:Orientation` in XMP (a phone photo hashes as it is displayed).
4. Flatten to 8-bit RGB (`to_rgb`): 16-bit samples keep their high byte, transparency is composited
   over white, palettes are expanded.
5. If either side exceeds CANONICAL_SIZE, shrink with Pillow's `thumbnail((512, 512))`: aspect kept,
   bicubic with reducing_gap=2.0. The PDQ authors' tools shrink to 512 px too; with this step
   pdqhash reproduces the authors' pure-Python port hashes bit for bit (shared/testdata/pdq).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin

try:  # HEIC is what iPhones save; pillow-heif is the maintained decoder for it.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - optional
    pass

CANONICAL_SIZE = 512
DRAFT_BOX = 2 * CANONICAL_SIZE  # thumbnail's reducing_gap (2.0) times the final size
# The most pixels this device decodes for one image, counted AFTER the JPEG draft (which decodes a
# 200 MP camera JPEG at 1/8 scale, ~3 MP). It replaces Pillow's own check, which counts the full
# size the draft never decodes (so it warned at 90 MP and refused at 179 MP JPEGs that cost little
# here) and which is what turns a decompression bomb into an exception. 100 MP covers every
# phone's HEIC/PNG (48-108 MP sensors, panoramas) at ~300 MB of RGB; an image past it, which
# other formats cannot decode at reduced scale, is refused with ImageTooLarge, never decoded.
MAX_DECODED_PIXELS = 100_000_000
_JPEG_MAGIC = b"\xff\xd8\xff"

IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .webp .gif .bmp .tif .tiff .heic .heif .avif".split()
)
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .avi .mkv .webm .wmv .flv .mpg .mpeg .3gp .ts .mts".split()
)
# Pillow's modes for one 16-bit (or wider integer) grey channel; convert("RGB") would clip them at
# 255 (a 16-bit grey photo turns white), so they are narrowed here first.
_WIDE_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
# Modes that carry (or may carry, through a tRNS colour key) transparency.
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def media_kind(path: Path) -> str | None:
    """'image', 'video' or None (not media), judged by the file name's suffix."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


class ImageTooLarge(ValueError):
    """More pixels than this device decodes for one image (MAX_DECODED_PIXELS): a photo of
    extreme size, or a decompression bomb (a tiny file declaring huge dimensions)."""

    def __init__(self, pixels: int, more_than: bool = False):
        self.pixels = pixels
        size = f"{'over ' if more_than else ''}{pixels / 1e6:,.0f} megapixels"
        super().__init__(f"too large to hash on this device ({size}; the limit is "
                         f"{MAX_DECODED_PIXELS // 1_000_000})")


def load_canonical_image(path: str | Path) -> Image.Image:
    """Decode `path` through the canonical pipeline; returns an RGB image at most 512 px a side.
    ImageTooLarge (before any pixel is decoded) past MAX_DECODED_PIXELS."""
    with _open(path) as opened:
        opened.seek(0)  # first frame of an animation
        if opened.format == "JPEG":
            opened.draft("RGB", (DRAFT_BOX, DRAFT_BOX))
        width, height = opened.size  # after the draft: what will really be decoded
        if width * height > MAX_DECODED_PIXELS:
            raise ImageTooLarge(width * height)
        return canonicalize(opened)


def _open(path: str | Path) -> Image.Image:
    """Image.open, with Pillow's size check left to load_canonical_image (see MAX_DECODED_PIXELS)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError:
            # Refused on its declared size alone. A JPEG still decodes cheaply through the draft,
            # so it is opened without that check (its plug-in class, what Image.open would have
            # returned) and measured after the draft like any other; anything else is too large.
            with open(path, "rb") as file:
                if file.read(3) != _JPEG_MAGIC:  # Pillow refuses past twice its own limit
                    raise ImageTooLarge(2 * (Image.MAX_IMAGE_PIXELS or 0), more_than=True) from None
            return JpegImagePlugin.JpegImageFile(path)


def canonicalize(image: Image.Image) -> Image.Image:
    """Steps 3-5 for an already opened image (also used on in-memory images by tests and benches)."""
    image = ImageOps.exif_transpose(image)
    image = to_rgb(image)
    image.thumbnail((CANONICAL_SIZE, CANONICAL_SIZE))
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Step 4: 8-bit RGB by the decoding rule of docs/hashing.md (a new image, detached from the file).

    - 16-bit grey keeps the high byte of each sample (v >> 8), as Pillow already does for 16-bit
      colour and as browsers decode every 16-bit PNG.
    - Transparency (alpha channel, palette or colour-key tRNS) is composited over white:
      round(C * a / 255) + 255 - a, exactly what a browser canvas filled with white gives. The colour
      stored under transparent pixels is invisible and arbitrary (encoders store black, white or the
      old picture), so it must not decide the hash.
    """
    if image.mode in _WIDE_GREY_MODES:
        wide = np.asarray(image, dtype=np.int64)
        image = Image.fromarray((np.clip(wide, 0, 0xFFFF) >> 8).astype(np.uint8), "L")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint32)
        alpha = rgba[..., 3:]
        # round(C*a/255) in integers: (2*C*a + 255) // 510; never a tie, 255 being odd.
        flat = (2 * rgba[..., :3] * alpha + 255) // 510 + (255 - alpha)
        return Image.fromarray(flat.astype(np.uint8), "RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image.copy()  # detach from the file so the caller's `with` can close it
