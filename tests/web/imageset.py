"""The varied image set of the web parity tests, made with Pillow from the PDQ authors' photos.

Photos (crops and resizes of the reference photos, 64 px .. 12 MP, JPEG/PNG/WebP/GIF/BMP),
screenshots and drawings (flat colours, text, shapes), EXIF-rotated JPEGs (orientations 2..8),
PNGs with alpha (opaque, fully transparent and translucent areas), greyscale and palette images.
Deterministic: the same files on every run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tests.testdata import PDQ_DIR

PHOTOS = [
    "bridge-mods/aaa-orig.jpg",
    "reg-test-input/labelme-subset/q0122.jpg",
    "reg-test-input/labelme-subset/q2821.jpg",
    "reg-test-input/labelme-subset/q0746.jpg",
    "reg-test-input/labelme-subset/q1050.jpg",
    "reg-test-input/pen-and-coaster.png",
]


def reference_images() -> list[Path]:
    """Every image of the authors' PDQ reference set."""
    suffixes = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
    return sorted(p for p in PDQ_DIR.rglob("*") if p.suffix.lower() in suffixes)


def _photo(index: int) -> Image.Image:
    with Image.open(PDQ_DIR / PHOTOS[index % len(PHOTOS)]) as im:
        return im.convert("RGB")


def _grain(image: Image.Image, seed: int, amount: float = 6.0) -> Image.Image:
    """Sensor-like noise, so upscaled photos keep detail at every scale."""
    rng = np.random.default_rng(seed)
    a = np.asarray(image).astype(np.float32)
    a += rng.standard_normal(a.shape, dtype=np.float32) * np.float32(amount)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def _drawing(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(180, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(width // 10, width // 2)), y0 + int(rng.integers(height // 10, height // 2))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1, y1], outline=color, width=max(2, width // 100))
        else:
            draw.rectangle([x0, y0, x1, y1], fill=color)
        draw.line([x0, y1, x1, y0], fill=(0, 0, 0), width=max(1, width // 200))
    return image


def _screenshot(width: int, height: int, seed: int) -> Image.Image:
    """A UI-like picture: bars, panels, lines of text."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, width, height // 12], fill=(40, 90, 170))
    y = height // 10
    line = max(12, height // 40)
    while y < height - line:
        indent = int(rng.integers(10, width // 5))
        text = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(8, 40))))
        draw.text((indent, y), text, fill=(20, 20, 20))
        if rng.random() < 0.2:
            draw.rectangle([indent, y, indent + width // 3, y + line * 3], outline=(120, 120, 120))
            y += line * 3
        y += line
    return image


def make_image_set(folder: Path) -> list[Path]:
    """Write the generated images into `folder`; returns their paths (>= 50 files)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []

    # Photos: crops and resizes, 64 px .. 12 MP, several formats.
    sizes = [(64, 64), (96, 80), (200, 150), (333, 500), (512, 384), (513, 400), (640, 480),
             (800, 1200), (1024, 768), (1500, 1000), (2048, 1536), (2500, 1700), (3000, 2000),
             (1200, 4000), (5000, 900), (150, 2000), (1080, 1920), (1440, 1080), (48, 64)]
    for i, (w, h) in enumerate(sizes):
        photo = _photo(i)
        crop = photo.crop((i * 7 % 50, i * 11 % 40, photo.width - i * 5 % 30, photo.height - i * 3 % 20))
        image = _grain(crop.resize((w, h), Image.Resampling.LANCZOS), seed=i)
        fmt = ["JPEG", "PNG", "WEBP", "JPEG", "BMP"][i % 5]
        suffix = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp"}[fmt]
        options = {"quality": 90} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
        out.append(_save(image, folder / f"photo-{w}x{h}.{suffix}", **options))

    # 12 MP photos (the size a phone takes), JPEG, 4:3 both ways.
    for i, (w, h) in enumerate([(4000, 3000), (3024, 4032), (4032, 3024)]):
        image = _grain(_photo(i + 1).resize((w, h), Image.Resampling.BICUBIC), seed=100 + i, amount=8)
        out.append(_save(image, folder / f"photo-12mp-{w}x{h}.jpg", quality=88))

    # EXIF-rotated JPEGs: every orientation that changes the picture.
    base = _photo(2).resize((900, 600))
    for orientation in range(2, 9):
        out.append(_save(base, folder / f"exif-orientation-{orientation}.jpg", quality=92,
                         exif=_exif_orientation(orientation)))
    big = _grain(_photo(0).resize((3200, 2400)), seed=7)
    out.append(_save(big, folder / "exif-orientation-6-3200x2400.jpg", quality=90,
                     exif=_exif_orientation(6)))

    # Screenshots and drawings (PNG, flat colours and hard edges).
    for i, (w, h) in enumerate([(390, 844), (1280, 800), (1920, 1080), (2560, 1600), (750, 1334)]):
        out.append(_save(_screenshot(w, h, seed=i), folder / f"screenshot-{w}x{h}.png"))
    for i, (w, h) in enumerate([(300, 300), (800, 600), (1600, 1200), (2000, 700), (4000, 3000)]):
        out.append(_save(_drawing(w, h, seed=i), folder / f"drawing-{w}x{h}.png"))
    out.append(_save(_drawing(1024, 1024, seed=9).filter(ImageFilter.GaussianBlur(2)),
                     folder / "drawing-blurred-1024.jpg", quality=85))

    # PNG with alpha: opaque picture, transparent border (RGB under it zero), translucent patch.
    for i, (w, h) in enumerate([(600, 400), (1200, 1200), (2000, 1500)]):
        rgb = np.asarray(_grain(_photo(i + 3).resize((w, h)), seed=200 + i))
        alpha = np.full((h, w), 255, np.uint8)
        alpha[: h // 8, :] = 0
        alpha[:, : w // 10] = 0
        alpha[h // 2: h // 2 + h // 5, w // 2: w // 2 + w // 4] = 128
        rgba = np.dstack([rgb, alpha])
        rgba[alpha == 0, :3] = 0
        out.append(_save(Image.fromarray(rgba, "RGBA"), folder / f"alpha-{w}x{h}.png"))
    logo = Image.new("RGBA", (700, 700), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    draw.ellipse([50, 50, 650, 650], fill=(200, 30, 30, 255))
    draw.rectangle([200, 250, 500, 450], fill=(255, 255, 255, 255))
    draw.text((260, 330), "LOGO", fill=(0, 0, 0, 255))
    out.append(_save(logo, folder / "alpha-logo-700.png"))
    out.append(_save(logo.resize((1400, 1400)), folder / "alpha-logo-1400.webp", lossless=True))

    # Greyscale, palette (GIF and PNG), and a small JPEG.
    out.append(_save(_photo(4).convert("L").resize((1000, 750)), folder / "grey-1000x750.jpg", quality=90))
    out.append(_save(_photo(5).convert("L").resize((640, 640)), folder / "grey-640.png"))
    out.append(_save(_photo(1).resize((800, 600)).convert("P", palette=Image.Palette.ADAPTIVE),
                     folder / "palette-800x600.gif"))
    out.append(_save(_drawing(900, 500, seed=3).convert("P", palette=Image.Palette.ADAPTIVE),
                     folder / "palette-drawing-900x500.png"))
    out.append(_save(_photo(3).resize((128, 96)), folder / "small-128x96.jpg", quality=90))
    progressive = _grain(_photo(0).resize((2200, 1400)), seed=11)
    out.append(_save(progressive, folder / "progressive-2200x1400.jpg", quality=85, progressive=True))
    return out


if __name__ == "__main__":  # pragma: no cover - handy for looking at the set
    import sys

    paths = make_image_set(Path(sys.argv[1]))
    print(len(paths), "images")
