"""Images by class for the decoding-rule tests (docs/hashing.md, "Decoding rule per image class"):
several files per class, made here with Pillow/numpy from the PDQ authors' photos. Deterministic.

`make_classes(folder)` returns [(class, path)]. Classes: transparency (RGBA with black, white,
colour and noise stored under transparent pixels, translucent), palettes with tRNS (PNG, GIF),
LA, 16-bit (grey, colour, grey+alpha, RGBA), colour-key tRNS, orientation (EXIF in JPEG/PNG/WebP,
XMP in JPEG/PNG/WebP), CMYK (with and without an ICC profile), animated (GIF/WebP/APNG: first
frame), AVIF, big JPEGs (the draft path: 4:2:0, 4:4:4, progressive, grey, CMYK, odd sizes,
EXIF-rotated), very wide/tall, tiny, HEIC (rotated, alpha, 10-bit); and TIFF, which the page
refuses with a message.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageDraw, PngImagePlugin

from tests.web.imageset import _grain, _photo

BROWSER_REFUSES = {"tiff"}  # classes the page cannot decode (format_not_in_browser)

XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="{}"/></rdf:RDF></x:xmpmeta>')


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _picture(index: int, width: int, height: int, seed: int | None = None) -> Image.Image:
    return _grain(_photo(index).resize((width, height), Image.Resampling.BICUBIC),
                  seed=1000 + index if seed is None else seed)


def _cutout(width: int, height: int, seed: int) -> np.ndarray:
    """Alpha of a sticker: an opaque blob, a transparent outside, a soft (translucent) rim."""
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.hypot((xx - width / 2) / (width * 0.38), (yy - height / 2) / (height * 0.38))
    rng = np.random.default_rng(seed)
    r = r + rng.normal(0, 0.02, r.shape)
    return np.clip((1.15 - r) * 1000, 0, 255).astype(np.uint8)


def _png16(array: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow writes 16-bit grey only)."""
    h, w = array.shape[:2]
    raw = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def make_classes(folder: Path) -> list[tuple[str, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, Path]] = []

    def save(cls: str, name: str, image: Image.Image | bytes, **options) -> None:
        path = folder / f"{cls}-{name}"
        if isinstance(image, bytes):
            path.write_bytes(image)
        else:
            image.save(path, **options)
        out.append((cls, path))

    # Transparency: the same cut-out with different colours stored under alpha 0.
    for i, (w, h) in enumerate([(600, 600), (1200, 900), (800, 1000)]):
        rgb = np.asarray(_picture(i, w, h))
        alpha = _cutout(w, h, seed=i)
        rng = np.random.default_rng(i)
        unders = {"black": 0, "white": 255, "colour": np.array([30, 160, 90], np.uint8),
                  "noise": rng.integers(0, 256, (h, w, 3), dtype=np.uint8)}
        for under, value in unders.items():
            stored = rgb.copy()
            hidden = alpha == 0
            stored[hidden] = value if np.ndim(value) < 3 else value[hidden]
            save("transparent", f"{under}-{w}x{h}.png", Image.fromarray(np.dstack([stored, alpha]), "RGBA"))
        save("transparent", f"lossless-{w}x{h}.webp",
             Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), lossless=True)
    # Palettes with transparency (tRNS in PNG, the transparent index in GIF).
    for i, (w, h) in enumerate([(500, 400), (900, 700), (300, 300)]):
        rgba = Image.fromarray(np.dstack([np.asarray(_picture(i + 1, w, h)), _cutout(w, h, i)]), "RGBA")
        palette = rgba.convert("RGB").quantize(255)
        mask = np.asarray(rgba)[..., 3] < 128
        indices = np.asarray(palette).copy()
        indices[mask] = 255
        pal = Image.fromarray(indices, "P")
        pal.putpalette(palette.getpalette()[: 255 * 3] + [0, 0, 0])
        save("palette-trns", f"{w}x{h}.png", pal, transparency=255)
        save("palette-trns", f"{w}x{h}.gif", pal, transparency=255)
        la = Image.fromarray(np.dstack([np.asarray(rgba.convert("L")), np.asarray(rgba)[..., 3]]), "LA")
        save("la", f"{w}x{h}.png", la)
        keyed = np.asarray(rgba.convert("RGB")).copy()
        keyed[mask] = (17, 200, 33)  # the key colour fills the outside
        save("colour-key", f"{w}x{h}.png", Image.fromarray(keyed), transparency=(17, 200, 33))
    # 16-bit samples: grey (Pillow alone would clip it to white), colour, with alpha.
    for i, (w, h) in enumerate([(640, 480), (1000, 700)]):
        rgb16 = np.asarray(_picture(i + 2, w, h)).astype(np.uint16) * 257
        rgb16 = rgb16 + np.random.default_rng(i).integers(0, 200, rgb16.shape, dtype=np.uint16)
        grey16 = (rgb16.mean(axis=2)).astype(np.uint16)
        alpha16 = _cutout(w, h, i).astype(np.uint16) * 257
        save("16bit", f"grey-{w}x{h}.png", Image.frombytes("I;16", (w, h), grey16.astype("<u2").tobytes()))
        save("16bit", f"grey-dark-{w}x{h}.png", Image.frombytes("I;16", (w, h), (grey16 // 5).astype("<u2").tobytes()))
        save("16bit", f"rgb-{w}x{h}.png", _png16(rgb16, 2))
        save("16bit", f"la-{w}x{h}.png", _png16(np.dstack([grey16, alpha16]), 4))
        save("16bit", f"rgba-{w}x{h}.png", _png16(np.dstack([rgb16, alpha16]), 6))
    # Orientation: every tag in JPEG EXIF; PNG eXIf, WebP EXIF and XMP (JPEG, PNG, WebP) for some.
    base = _picture(3, 900, 600)
    for tag in range(1, 9):
        save("orientation", f"jpeg-exif-{tag}.jpg", base, quality=92, exif=_exif(tag))
    for tag in range(2, 9):  # the page turns these itself (orient.js): every tag
        save("orientation", f"webp-exif-{tag}.webp", base, lossless=True, exif=_exif(tag))
        save("orientation", f"jpeg-xmp-{tag}.jpg", base, quality=92, xmp=XMP.format(tag).encode())
    for tag in (3, 6, 8, 5):
        save("orientation", f"png-exif-{tag}.png", base, exif=_exif(tag))
        xmp = PngImagePlugin.PngInfo()  # Pillow's png writer ignores xmp=; an iTXt chunk, zipped or not
        xmp.add_itxt("XML:com.adobe.xmp", XMP.format(tag), zip=tag % 2 == 1)
        save("orientation", f"png-xmp-{tag}.png", base, pnginfo=xmp)
        save("orientation", f"webp-xmp-{tag}.webp", base, lossless=True, xmp=XMP.format(tag).encode())
    save("orientation", "jpeg-exif1-xmp6.jpg", base, quality=92, exif=_exif(1), xmp=XMP.format(6).encode())
    # CMYK JPEG, with and without an embedded profile (neither side applies profiles).
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for i, (w, h) in enumerate([(800, 600), (1500, 1000)]):
        cmyk = _picture(i + 4, w, h).convert("CMYK")
        save("cmyk", f"{w}x{h}.jpg", cmyk, quality=90)
        save("cmyk", f"icc-{w}x{h}.jpg", cmyk, quality=90, icc_profile=icc)
    # Animated: the first frame counts.
    frames = [_picture(i, 480, 360) for i in range(3)]
    save("animated", "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=100)
    save("animated", "anim.webp", frames[0], save_all=True, append_images=frames[1:], duration=100, lossless=True)
    save("animated", "anim.png", frames[0], save_all=True, append_images=frames[1:], duration=100)
    frames = [_picture(i + 2, 700, 500) for i in range(2)]
    save("animated", "anim-lossy.webp", frames[0], save_all=True, append_images=frames[1:], duration=100, quality=85)
    # AVIF (Chromium and Pillow both decode it).
    for i, (w, h) in enumerate([(800, 600), (1200, 1600)]):
        save("avif", f"{w}x{h}.avif", _picture(i, w, h), quality=80)
    for tag in (3, 6):  # Pillow stores the EXIF orientation as AVIF's irot/imir boxes
        save("avif", f"exif-{tag}.avif", _picture(3, 640, 480), quality=80, exif=_exif(tag))
    # Big JPEGs: the decoder's DCT-scaled draft (1/2, 1/4) on both sides.
    src = _photo(1)
    big = [("4000x3000", (4000, 3000), {}), ("3024x4032", (3024, 4032), {}),
           ("4001x3003-odd", (4001, 3003), {}), ("2048x2048", (2048, 2048), {}),
           ("4100x4100-quarter", (4100, 4100), {}), ("3000x2200-444", (3000, 2200), {"subsampling": 0}),
           ("3000x2200-422", (3000, 2200), {"subsampling": 1}),
           ("3000x2200-progressive", (3000, 2200), {"progressive": True}),
           ("2400x2100-exif6", (2400, 2100), {"exif": _exif(6)}),
           ("2400x2100-exif3", (2400, 2100), {"exif": _exif(3)})]
    for name, size, options in big:
        save("big-jpeg", f"{name}.jpg", _grain(src.resize(size, Image.Resampling.BICUBIC), seed=7),
             quality=88, **options)
    save("big-jpeg", "grey-3000x2200.jpg", _grain(src.resize((3000, 2200)), seed=8).convert("L"), quality=88)
    save("big-jpeg", "cmyk-3000x2200.jpg", _grain(src.resize((3000, 2200)), seed=9).convert("CMYK"), quality=88)
    # Extreme shapes and tiny images.
    for name, size in [("wide-4000x120", (4000, 120)), ("tall-90x3000", (90, 3000)),
                       ("wide-2500x40", (2500, 40)), ("tall-40x2500", (40, 2500))]:
        save("shape", f"{name}.png", _picture(2, *size))
    for name, size in [("wide-5000x300", (5000, 300))]:
        save("shape", f"{name}.jpg", _picture(0, *size), quality=90)
    for side in (4, 8, 16, 32):
        drawing = Image.new("RGB", (side, side), (255, 255, 255))
        ImageDraw.Draw(drawing).rectangle([0, 0, side // 2, side // 2], fill=(0, 0, 0))
        save("tiny", f"{side}.png", Image.fromarray(np.asarray(_picture(side % 5, side, side))) if side > 8 else drawing)
    # Formats the browser cannot read: the page says so, the CLI hashes them.
    save("tiff", "photo.tiff", _picture(1, 800, 600))
    save("tiff", "photo-lzw.tif", _picture(2, 1200, 900), compression="tiff_lzw")
    try:
        from pillow_heif import register_heif_opener
        register_heif_opener()
        save("heic", "photo.heic", _picture(3, 1024, 768), quality=90)
        save("heic", "big-4032x3024.heic", _picture(1, 4032, 3024), quality=80)
        save("heic", "exif-6.heic", _picture(2, 800, 600), quality=90, exif=_exif(6))
        save("heic", "exif-3.heic", _picture(4, 800, 600), quality=90, exif=_exif(3))
        rgba = np.dstack([np.asarray(_picture(0, 600, 600)), _cutout(600, 600, 3)])
        save("heic", "alpha.heic", Image.fromarray(rgba, "RGBA"), quality=90)
        grey16 = (np.asarray(_picture(5, 640, 480).convert("L")).astype(np.uint16) * 256)
        save("heic", "10bit-grey.heic", Image.frombytes("I;16", (640, 480), grey16.astype("<u2").tobytes()), quality=90)
    except ImportError:  # pragma: no cover - pillow-heif is part of the video/test extras
        pass
    return out
