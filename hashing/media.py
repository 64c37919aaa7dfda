"""The one canonical image pipeline: decode, EXIF orientation, RGB, downscale. Every PDQ hash we make
(CLI, server-side checks, benchmarks) goes through `load_canonical_image`; the browser page
reproduces the same steps, so they are documented here and in docs/hashing.md.

Steps, in order:
1. Decode with Pillow (JPEG, PNG, WebP, GIF, BMP, TIFF; HEIC/HEIF/AVIF through pillow-heif when
   installed). Animated files (GIF, WebP, APNG) use their first frame.
2. JPEG only: ask the decoder for a DCT-scaled draft no smaller than DRAFT_BOX. This is what makes a
   12 MP photo cheap (the decoder skips 3/4 of the work); the draft is at least twice the final
   size, so the result is the same as decoding in full (measured: 0 bits apart on the bridge set).
3. Apply the EXIF orientation tag (a phone photo hashes as it is displayed).
4. Convert to 8-bit RGB (Pillow's `convert("RGB")`: alpha is dropped, palettes expanded).
5. If either side exceeds CANONICAL_SIZE, shrink with Pillow's `thumbnail((512, 512))`: aspect kept,
   bicubic with reducing_gap=2.0. The PDQ authors' tools shrink to 512 px too; with this step
   pdqhash reproduces the authors' pure-Python port hashes bit for bit (shared/testdata/pdq).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

try:  # HEIC is what iPhones save; pillow-heif is the maintained decoder for it.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - optional
    pass

CANONICAL_SIZE = 512
DRAFT_BOX = 2 * CANONICAL_SIZE  # thumbnail's reducing_gap (2.0) times the final size

IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .webp .gif .bmp .tif .tiff .heic .heif .avif".split()
)
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .avi .mkv .webm .wmv .flv .mpg .mpeg .3gp .ts .mts".split()
)


def media_kind(path: Path) -> str | None:
    """'image', 'video' or None (not media), judged by the file name's suffix."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def load_canonical_image(path: str | Path) -> Image.Image:
    """Decode `path` through the canonical pipeline; returns an RGB image at most 512 px a side."""
    with Image.open(path) as opened:
        opened.seek(0)  # first frame of an animation
        if opened.format == "JPEG":
            opened.draft("RGB", (DRAFT_BOX, DRAFT_BOX))
        return canonicalize(opened)


def canonicalize(image: Image.Image) -> Image.Image:
    """Steps 3-5 for an already opened image (also used on in-memory images by tests and benches)."""
    image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    else:
        image = image.copy()  # detach from the file so the caller's `with` can close it
    image.thumbnail((CANONICAL_SIZE, CANONICAL_SIZE))
    return image
