// Decode an image file into the pixels hashing/media.py gives pdqhash before its shrink: first
// frame, the CLI's JPEG draft size, Pillow's orientation rule, transparency composited over white,
// 8-bit RGBA (the alpha byte is then 255 everywhere). The rule per image class is in
// docs/hashing.md; every step here is the browser's way to the same bytes:
//
// - Big JPEGs: the CLI asks libjpeg for a DCT-scaled draft (Pillow's draft(), 1/2, 1/4 or 1/8 so
//   that both sides stay >= 1024 px). WebCodecs' ImageDecoder with that size as desiredWidth and
//   desiredHeight makes Chromium's libjpeg-turbo decode at the same scale, and the RGB it returns
//   equals Pillow's draft byte for byte (measured; checked by the parity tests). It is also what
//   makes the page fast: a quarter of the pixels to decode, no canvas. When the decoder answers
//   another size or a YUV frame (it does for unscaled decodes), or ImageDecoder is missing (it
//   needs a secure context), the page falls back to the full decode below.
// - Everything else: createImageBitmap without colour management or premultiplication, drawn over
//   white on a 2D canvas. Skia premultiplies with exact rounding and composites over opaque white
//   as P + 255 - a, which is the CLI's round(C*a/255) + 255 - a to the byte (measured).
//   Chromium applies the EXIF orientation of JPEG and PNG itself (even with imageOrientation
//   'none'), not WebP's EXIF nor XMP: what it did not apply is applied here (orient.js).
// - HEIC/HEIF: libheif compiled to WebAssembly (heic.js, the npm package libheif-js served under
//   /vendor/libheif/), the same library pillow-heif runs for the CLI: the same bytes (measured),
//   transparency then composited over white here with the CLI's integer formula.
// - TIFF (and HEIC where the decoder is not served): UnsupportedFormat says so.

import { readImageMeta } from './image-meta.js';
import { reorient } from './orient.js';

const DRAFT_BOX = 1024; // hashing/media.py DRAFT_BOX
const RGB_FRAME_FORMATS = new Set(['RGBA', 'RGBX', 'BGRA', 'BGRX']);
const AVIF_BRANDS = new Set(['avif', 'avis']); // ISO-BMFF images the browser decodes itself

export class UnsupportedFormat extends Error {
  constructor(container) {
    super(`the browser cannot decode ${container} images`);
    this.name = 'UnsupportedFormat';
  }
}

/** Pillow's JpegImageFile.draft scale for a `width` x `height` JPEG: 8, 4, 2 or 1. */
export function draftScale(width, height) {
  const scale = Math.min(Math.floor(width / DRAFT_BOX), Math.floor(height / DRAFT_BOX));
  for (const s of [8, 4, 2]) if (scale >= s) return s;
  return 1;
}

async function jpegDraft(bytes, meta) {
  if (typeof ImageDecoder === 'undefined' || !meta.width || !meta.height) return null;
  const s = draftScale(meta.width, meta.height);
  if (s === 1) return null;
  const width = Math.ceil(meta.width / s);
  const height = Math.ceil(meta.height / s);
  let decoder = null;
  try {
    decoder = new ImageDecoder({
      data: bytes, type: 'image/jpeg', desiredWidth: width, desiredHeight: height,
      colorSpaceConversion: 'none',
    });
    const { image } = await decoder.decode({ frameIndex: 0 });
    try {
      if (image.codedWidth !== width || image.codedHeight !== height
          || !RGB_FRAME_FORMATS.has(image.format)) return null;
      const pixels = new Uint8Array(width * height * 4);
      // Copied as decoded (a conversion to RGBA costs more than the copy): the shrink treats the
      // channels alike, so BGR order is swapped back on the 512 px result (`bgr`).
      await image.copyTo(pixels);
      const bgr = image.format.startsWith('BGR');
      // VideoFrame pixels are never turned: rotation and flip are only reported.
      return { pixels, width, height, bgr, applied: 1, path: 'jpeg-draft' };
    } finally {
      image.close();
    }
  } catch {
    return null; // any refusal here: the full decode below decides
  } finally {
    if (decoder) decoder.close();
  }
}

async function viaBitmap(blob, meta) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none',
    });
  } catch (error) {
    if (meta.container === 'tiff' || meta.container === 'heif') throw new UnsupportedFormat(meta.container);
    throw error;
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.fillStyle = '#ffffff';
  context.fillRect(0, 0, width, height);
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const pixels = context.getImageData(0, 0, width, height).data;
  canvas.width = 0; // release the canvas' pixels now, not at the next GC
  return { pixels, width, height, applied: appliedByBrowser(meta, width, height), path: 'bitmap' };
}

const SWAPS_SIDES = new Set([5, 6, 7, 8]);

/** The orientation the browser applied while decoding: Chromium turns JPEG and PNG by their EXIF
 * tag and nothing else. Another browser may differ; where the tag swaps the sides and the stored
 * size is known, the decoded size tells (a square, or a mirror tag, cannot be told apart). */
function appliedByBrowser(meta, width, height) {
  const tag = meta.exifOrientation;
  if (SWAPS_SIDES.has(tag) && meta.width && meta.height && meta.width !== meta.height) {
    return width === meta.height && height === meta.width ? tag : 1;
  }
  return meta.container === 'jpeg' || meta.container === 'png' ? tag : 1;
}

/** Composite straight-alpha RGBA over white in place: round(C*a/255) + 255 - a, hashing/media.py's
 * to_rgb in the same integers (no tie: 255 is odd). */
export function flattenOverWhite(pixels) {
  for (let i = 0; i < pixels.length; i += 4) {
    const a = pixels[i + 3];
    if (a === 255) continue;
    for (let c = i; c < i + 3; c++) pixels[c] = Math.floor((2 * pixels[c] * a + 255) / 510) + 255 - a;
    pixels[i + 3] = 255;
  }
  return pixels;
}

async function viaLibheif(bytes) {
  try {
    const { decodeHeif } = await import('./heic.js');
    const image = await decodeHeif(bytes);
    flattenOverWhite(image.pixels);
    return { ...image, applied: 1, path: 'libheif' }; // libheif applies irot/imir itself
  } catch {
    return null; // decoder not served, or a file it cannot read: the browser's turn
  }
}

/** { pixels (RGBA, opaque; BGRA when `bgr`), width, height, bgr, path ('jpeg-draft', 'libheif' or
 * 'bitmap'), stages (ms) } of an
 * image Blob; UnsupportedFormat for TIFF (and HEIC/HEIF without the decoder). */
export async function decodeImage(blob) {
  const t0 = performance.now();
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const meta = await readImageMeta(bytes);
  const tRead = performance.now();
  let decoded = null;
  if (meta.container === 'jpeg') decoded = await jpegDraft(bytes, meta);
  else if (meta.container === 'heif' && !AVIF_BRANDS.has(meta.brand)) decoded = await viaLibheif(bytes);
  if (!decoded) decoded = await viaBitmap(blob, meta);
  const t1 = performance.now();
  const image = reorient(decoded, decoded.applied, meta.orientation);
  return { ...image, bgr: !!decoded.bgr, path: decoded.path, stages: { read: tRead - t0, decode: t1 - tRead, orient: performance.now() - t1 } };
}
