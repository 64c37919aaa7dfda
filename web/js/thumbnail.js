// Pillow's `Image.thumbnail((512, 512))` on an RGB image, reproduced pixel for pixel, so that the
// page feeds PDQ the same pixels as `hashguard hash` (hashing/media.py step 5).
//
// Written from Pillow's documented behaviour and the facts of its C code (libImaging Reduce.c and
// Resample.c): the size keeps the aspect ratio, rounded to the side whose ratio is nearest; with
// reducing_gap 2.0 the image is first reduced by whole factors (box means with Pillow's fixed-point
// rounding), then resized with its bicubic convolution (a = -0.5, support 2 widened by the scale,
// 22-bit fixed-point coefficients, one horizontal then one vertical 8-bit pass).
//
// Pure functions on interleaved pixel buffers (`channels` 3 or 4; a 4th channel is ignored, which is
// what Pillow's convert("RGB") does with alpha). Results are RGB, 3 bytes a pixel.

const f = Math.fround;
export const CANONICAL_SIZE = 512;
const REDUCING_GAP = 2.0;
const BICUBIC_SUPPORT = 2.0;
const PRECISION_BITS = 32 - 8 - 2;

/** Pillow's thumbnail size for (width, height) in a `box` square, or null when already small enough. */
export function thumbnailSize(width, height, box = CANONICAL_SIZE) {
  let x = box;
  let y = box;
  if (x >= width && y >= height) return null;
  const aspect = width / height;
  // Pillow: max(min(floor(n), ceil(n), key=error), 1); on a tie the floor wins.
  const roundAspect = (number, error) => {
    const lo = Math.floor(number);
    const hi = Math.ceil(number);
    return Math.max(error(hi) < error(lo) ? hi : lo, 1);
  };
  if (x / y >= aspect) {
    x = roundAspect(y * aspect, (n) => Math.abs(aspect - n / y));
  } else {
    y = roundAspect(x / aspect, (n) => (n === 0 ? 0 : Math.abs(aspect - x / n)));
  }
  return [x, y];
}

// Pillow's reciprocal for a mean over `count` pixels: 2^32 / (256 * count), divided in float32.
function reduceMultiplier(count) {
  return Math.trunc(f(4294967296 / f(256 * count)));
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Pillow's `Image.reduce((fx, fy))` of the whole image: each output pixel is the rounded mean of a
 * fx-by-fy block; the last column/row averages the partial blocks that remain.
 */
export function reduce(pixels, width, height, channels, fx, fy) {
  const outW = Math.ceil(width / fx);
  const outH = Math.ceil(height / fy);
  const out = new Uint8Array(outW * outH * 3);
  const sumR = new Int32Array(outW); // block sums of one output row
  const sumG = new Int32Array(outW);
  const sumB = new Int32Array(outW);
  const fullCols = Math.trunc(width / fx);
  const tail = width - fullCols * fx;
  // RGBA canvas data read one 32-bit word a pixel: a third of the loads of byte access.
  const words = channels === 4 && LITTLE_ENDIAN && pixels.byteOffset % 4 === 0
    ? new Uint32Array(pixels.buffer, pixels.byteOffset, width * height)
    : null;
  for (let oy = 0; oy < outH; oy++) {
    sumR.fill(0);
    sumG.fill(0);
    sumB.fill(0);
    const yFrom = oy * fy;
    const yTo = Math.min(yFrom + fy, height);
    for (let y = yFrom; y < yTo; y++) {
      if (words) {
        let p = y * width;
        for (let ox = 0; ox < outW; ox++) {
          const n = ox < fullCols ? fx : tail;
          let r = 0;
          let g = 0;
          let b = 0;
          for (let i = 0; i < n; i++) {
            const v = words[p++];
            r += v & 255;
            g += (v >>> 8) & 255;
            b += (v >>> 16) & 255;
          }
          sumR[ox] += r;
          sumG[ox] += g;
          sumB[ox] += b;
        }
      } else {
        let p = y * width * channels;
        for (let ox = 0; ox < outW; ox++) {
          const n = ox < fullCols ? fx : tail;
          let r = 0;
          let g = 0;
          let b = 0;
          for (let i = 0; i < n; i++, p += channels) {
            r += pixels[p];
            g += pixels[p + 1];
            b += pixels[p + 2];
          }
          sumR[ox] += r;
          sumG[ox] += g;
          sumB[ox] += b;
        }
      }
    }
    const rows = yTo - yFrom;
    for (let ox = 0; ox < outW; ox++) {
      const count = (ox < fullCols ? fx : tail) * rows;
      const amend = Math.trunc(count / 2);
      const mult = reduceMultiplier(count);
      const o = (oy * outW + ox) * 3;
      // ((sum + amend) * mult) >> 24 in Pillow's unsigned 32-bit arithmetic (it never wraps:
      // mult is about 2^24 / count); exact in doubles.
      out[o] = Math.floor(((sumR[ox] + amend) * mult) / 16777216);
      out[o + 1] = Math.floor(((sumG[ox] + amend) * mult) / 16777216);
      out[o + 2] = Math.floor(((sumB[ox] + amend) * mult) / 16777216);
    }
  }
  return out;
}

function bicubic(x) {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc: for each output index, the first input index,
// the count, and integer weights. `in0`/`in1` are the box edges, which Pillow passes as float32.
function coefficients(inSize, in0, in1, outSize) {
  const scale = f(in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = BICUBIC_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const weights = new Float64Array(ksize);
  const invFilterscale = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let ww = 0.0;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    for (let x = 0; x < xmax; x++) {
      const w = bicubic((x + xmin - center + 0.5) * invFilterscale);
      weights[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0.0 ? weights[x] / ww : weights[x];
      kk[xx * ksize + x] = w < 0
        ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS))
        : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(ss) {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// One horizontal pass: rows [rowFrom, rowFrom + rows) of `src` (srcW wide) to outW columns.
function horizontalPass(src, srcW, channels, rowFrom, rows, outW, coeffs) {
  const { ksize, bounds, kk } = coeffs;
  const half = 1 << (PRECISION_BITS - 1);
  const out = new Uint8Array(outW * rows * 3);
  // RGBA input (the decoded picture) read one 32-bit word a pixel: a third of the loads.
  const words = channels === 4 && LITTLE_ENDIAN && src.byteOffset % 4 === 0
    ? new Uint32Array(src.buffer, src.byteOffset, srcW * (rowFrom + rows))
    : null;
  for (let yy = 0; yy < rows; yy++) {
    if (words) {
      const line = (yy + rowFrom) * srcW;
      for (let xx = 0; xx < outW; xx++) {
        const k = xx * ksize;
        const xmax = bounds[xx * 2 + 1];
        let s0 = half;
        let s1 = half;
        let s2 = half;
        for (let x = 0, p = line + bounds[xx * 2]; x < xmax; x++, p++) {
          const w = kk[k + x];
          const v = words[p];
          s0 += (v & 255) * w;
          s1 += ((v >>> 8) & 255) * w;
          s2 += ((v >>> 16) & 255) * w;
        }
        const o = (yy * outW + xx) * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
      continue;
    }
    const line = (yy + rowFrom) * srcW * channels;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2];
      const xmax = bounds[xx * 2 + 1];
      const k = xx * ksize;
      let s0 = half;
      let s1 = half;
      let s2 = half;
      for (let x = 0, p = line + xmin * channels; x < xmax; x++, p += channels) {
        const w = kk[k + x];
        s0 += src[p] * w;
        s1 += src[p + 1] * w;
        s2 += src[p + 2] * w;
      }
      const o = (yy * outW + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

// One vertical pass: `src` (srcW wide, its row 0 being source row `rowOffset`) to outH rows.
function verticalPass(src, srcW, channels, rowOffset, outH, coeffs) {
  const { ksize, bounds, kk } = coeffs;
  const half = 1 << (PRECISION_BITS - 1);
  const out = new Uint8Array(srcW * outH * 3);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2] - rowOffset;
    const ymax = bounds[yy * 2 + 1];
    const k = yy * ksize;
    for (let xx = 0; xx < srcW; xx++) {
      let s0 = half;
      let s1 = half;
      let s2 = half;
      for (let y = 0, p = (ymin * srcW + xx) * channels; y < ymax; y++, p += srcW * channels) {
        const w = kk[k + y];
        s0 += src[p] * w;
        s1 += src[p + 1] * w;
        s2 += src[p + 2] * w;
      }
      const o = (yy * srcW + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/**
 * Pillow's `im.resize((outW, outH), BICUBIC, box)` on an RGB(A) buffer: two separable 8-bit passes.
 * Pass order follows Pillow 13 (libImaging/Resample.c): vertical first when the height shrinks by
 * more than twice as many pixels as the width, else horizontal first (over only the rows the
 * vertical pass reads). Pillow 12 and older always went horizontal first; the order changes the
 * 8-bit rounding in between, so the page follows the Pillow that `hashguard hash` installs.
 */
export function resizeBicubic(pixels, width, height, channels, outW, outH, box) {
  const [x0, y0, x1, y1] = box.map(f);
  const needHorizontal = outW !== width || x0 !== 0 || x1 !== outW;
  const needVertical = outH !== height || y0 !== 0 || y1 !== outH;
  const horizontalFirst = !((height - outH) > 0 && (height - outH) > (width - outW) * 2);
  let src = pixels;
  let srcW = width;
  let srcChannels = channels;
  if (horizontalFirst) {
    const vert = coefficients(height, y0, y1, outH);
    const yFirst = vert.bounds[0];
    const yLast = vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1];
    let rowOffset = 0;
    if (needHorizontal) {
      src = horizontalPass(src, srcW, srcChannels, yFirst, yLast - yFirst, outW,
        coefficients(width, x0, x1, outW));
      srcW = outW;
      srcChannels = 3;
      rowOffset = yFirst;
    }
    if (needVertical) return verticalPass(src, srcW, srcChannels, rowOffset, outH, vert);
    return toRGB(src, srcW, height, srcChannels);
  }
  if (needVertical) {
    src = verticalPass(src, srcW, srcChannels, 0, outH, coefficients(height, y0, y1, outH));
    srcChannels = 3;
  }
  if (needHorizontal) {
    return horizontalPass(src, srcW, srcChannels, 0, outH, outW, coefficients(width, x0, x1, outW));
  }
  return toRGB(src, srcW, outH, srcChannels);
}

/**
 * The canonical shrink: Pillow's `thumbnail((512, 512))` (bicubic, reducing_gap 2.0).
 * Returns { pixels (RGB), width, height }; an image already within 512 px is returned as RGB.
 */
export function thumbnail(pixels, width, height, channels, box = CANONICAL_SIZE) {
  const size = thumbnailSize(width, height, box);
  if (size === null || (size[0] === width && size[1] === height)) {
    return { pixels: toRGB(pixels, width, height, channels), width, height };
  }
  const [outW, outH] = size;
  let src = pixels;
  let srcW = width;
  let srcH = height;
  let srcChannels = channels;
  let region = [0, 0, width, height];
  const fx = Math.trunc(width / outW / REDUCING_GAP) || 1;
  const fy = Math.trunc(height / outH / REDUCING_GAP) || 1;
  if (fx > 1 || fy > 1) {
    // Pillow widens the box by the filter's support first; for the whole image that is the image.
    src = reduce(pixels, width, height, channels, fx, fy);
    srcW = Math.ceil(width / fx);
    srcH = Math.ceil(height / fy);
    srcChannels = 3;
    region = [0, 0, width / fx, height / fy];
  }
  return {
    pixels: resizeBicubic(src, srcW, srcH, srcChannels, outW, outH, region),
    width: outW,
    height: outH,
  };
}

function toRGB(pixels, width, height, channels) {
  if (channels === 3) return pixels;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let p = 0, q = 0, o = 0; p < n; p++, q += channels, o += 3) {
    out[o] = pixels[q];
    out[o + 1] = pixels[q + 1];
    out[o + 2] = pixels[q + 2];
  }
  return out;
}
