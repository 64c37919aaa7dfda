// Turn decoded pixels the way an EXIF orientation tag says, exactly as Pillow's
// ImageOps.exif_transpose does (a lossless permutation of pixels, so both sides get the same bytes).
// Used where the browser did not apply the tag itself (WebP EXIF, XMP, the JPEG draft decoder).
//
// Each tag maps a pixel (x, y) of the displayed W'xH' picture to the stored WxH one:
//   2 mirror (W-1-x, y)   3 rotate 180 (W-1-x, H-1-y)   4 flip (x, H-1-y)
//   5 transpose (y, x)    6 90° clockwise (y, H-1-x)    7 transverse (W-1-y, H-1-x)
//   8 90° counter-clockwise (W-1-y, x)
// Pure functions on RGBA buffers (one 32-bit word a pixel), no DOM.

const SWAPS_SIDES = new Set([5, 6, 7, 8]);
const INVERSE = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6 };

/** Apply orientation `tag` (1..8) to RGBA `pixels` of width x height; returns a new
 * { pixels, width, height } (or the same object for 1). */
export function orient(image, tag) {
  if (!(tag >= 2 && tag <= 8)) return image;
  const { width: w, height: h } = image;
  const src = new Uint32Array(image.pixels.buffer, image.pixels.byteOffset, w * h);
  const [ow, oh] = SWAPS_SIDES.has(tag) ? [h, w] : [w, h];
  const out = new Uint32Array(ow * oh);
  // The stored index is linear in (x, y) for every tag: base + x * dx + y * dy.
  const last = (h - 1) * w;
  const [base, dx, dy] = {
    2: [w - 1, -1, w], 3: [last + w - 1, -1, -w], 4: [last, 1, -w], 5: [0, w, 1],
    6: [last, -w, 1], 7: [last + w - 1, -w, -1], 8: [w - 1, w, -1],
  }[tag];
  for (let y = 0, o = 0; y < oh; y++) {
    for (let x = 0, i = base + y * dy; x < ow; x++, i += dx) out[o++] = src[i];
  }
  return { pixels: new Uint8Array(out.buffer), width: ow, height: oh };
}

/** Pixels the browser already turned by `applied` (1 when it did not), turned to `wanted`. */
export function reorient(image, applied, wanted) {
  if (applied === wanted) return image;
  return orient(orient(image, INVERSE[applied] || 1), wanted);
}
