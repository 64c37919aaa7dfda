// PDQ perceptual hash (Meta's PDQ, 256 bits), written from the authors' description: luminance,
// two passes of Jarosz box filters ("tent"), decimation to 64x64, the first 16x16 DCT
// coefficients, a median threshold, and a quality score from the 64x64 image's gradients.
//
// Pure functions, no DOM: the page's worker and the Node parity tests import this same file.
//
// Bit-exactness with `pdqhash` (the C++ reference wrapped for Python): the reference computes in
// 32-bit floats, so every float operation here is rounded with Math.fround. A double result of
// +, -, *, / on two floats rounded once to float equals the float operation (53 >= 2*24+2), so
// this reproduces the C++ exactly, as long as the order of operations is the same.

const f = Math.fround;

// The reference computes the luminance in float64 (numpy, in pdqhash's binding) and stores float32.
const LUMA_R = 0.299;
const LUMA_G = 0.587;
const LUMA_B = 0.114;
const MIN_HASHABLE_DIM = 5;
const JAROSZ_PASSES = 2;

// 16x64 DCT-II basis rows 1..16 (row 0, the DC term, is skipped), as float32 like the reference:
// scale (a float) times cos(...) computed in double, then stored as float.
const DCT = (() => {
  const m = new Float32Array(16 * 64);
  const scale = f(Math.sqrt(2 / 64));
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      m[i * 64 + j] = scale * Math.cos((Math.PI / 2 / 64) * (i + 1) * (2 * j + 1));
    }
  }
  return m;
})();

/** Float32 luminance of an interleaved 8-bit buffer with `channels` (3: RGB, 4: RGBA) per pixel. */
export function lumaFromRGB(pixels, width, height, channels = 3) {
  const n = width * height;
  const luma = new Float32Array(n);
  for (let p = 0, q = 0; p < n; p++, q += channels) {
    luma[p] = pixels[q] * LUMA_R + pixels[q + 1] * LUMA_G + pixels[q + 2] * LUMA_B;
  }
  return luma;
}

/** Window of the box filter so that two passes cover one output cell (oldDim / 64 pixels). */
export function jaroszWindowSize(oldDimension, newDimension) {
  return Math.trunc((oldDimension + 2 * newDimension - 1) / (2 * newDimension));
}

// One 1-D running-mean box filter over `length` elements at `stride`; windows shrink at the edges.
function box1D(input, output, start, length, stride, window) {
  const half = Math.trunc((window + 2) / 2);
  const phase1 = half - 1;
  const phase2 = window - half + 1;
  const phase3 = length - window;
  const phase4 = half - 1;
  let li = start;
  let ri = start;
  let oi = start;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < phase1; i++) {
    sum = f(sum + input[ri]);
    count++;
    ri += stride;
  }
  for (let i = 0; i < phase2; i++) {
    sum = f(sum + input[ri]);
    count++;
    output[oi] = sum / count;
    ri += stride;
    oi += stride;
  }
  for (let i = 0; i < phase3; i++) {
    sum = f(sum + input[ri]);
    sum = f(sum - input[li]);
    output[oi] = sum / count;
    li += stride;
    ri += stride;
    oi += stride;
  }
  for (let i = 0; i < phase4; i++) {
    sum = f(sum - input[li]);
    count--;
    output[oi] = sum / count;
    li += stride;
    oi += stride;
  }
}

function jaroszFilter(buffer1, buffer2, rows, cols, windowAlongRows, windowAlongCols) {
  for (let pass = 0; pass < JAROSZ_PASSES; pass++) {
    for (let i = 0; i < rows; i++) box1D(buffer1, buffer2, i * cols, cols, 1, windowAlongRows);
    for (let j = 0; j < cols; j++) box1D(buffer2, buffer1, j, rows, cols, windowAlongCols);
  }
}

// Sample the centres of a 64x64 grid of cells.
function decimate64(input, rows, cols) {
  const out = new Float32Array(64 * 64);
  for (let oi = 0; oi < 64; oi++) {
    const ii = Math.trunc(((oi + 0.5) * rows) / 64);
    for (let oj = 0; oj < 64; oj++) {
      const ij = Math.trunc(((oj + 0.5) * cols) / 64);
      out[oi * 64 + oj] = input[ii * cols + ij];
    }
  }
  return out;
}

/** The authors' heuristic: the sum of quantised gradients of the 64x64 image, scaled to 0..100. */
export function qualityOf64(b) {
  let sum = 0;
  for (let i = 0; i < 63; i++) {
    for (let j = 0; j < 64; j++) {
      const d = Math.trunc(f(f(f(b[i * 64 + j] - b[(i + 1) * 64 + j]) * 100) / 255));
      sum += Math.abs(d);
    }
  }
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 63; j++) {
      const d = Math.trunc(f(f(f(b[i * 64 + j] - b[i * 64 + j + 1]) * 100) / 255));
      sum += Math.abs(d);
    }
  }
  return Math.min(100, Math.trunc(sum / 90));
}

// B = D A D^T, keeping only the 16x16 low-frequency block; float sums in the reference's order.
function dct64To16(a) {
  const t = new Float32Array(16 * 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      let sum = 0;
      for (let k = 0; k < 64; k++) sum = f(sum + f(DCT[i * 64 + k] * a[k * 64 + j]));
      t[i * 64 + j] = sum;
    }
  }
  const b = new Float32Array(256);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      let sum = 0;
      for (let k = 0; k < 64; k++) sum = f(sum + f(t[i * 64 + k] * DCT[j * 64 + k]));
      b[i * 16 + j] = sum;
    }
  }
  return b;
}

/**
 * Median by Torben Mogensen's method, as the reference computes it. The "half" is the integer
 * (n + 1) / 2 = 128 for n = 256: dividing in floating point (128.5) changes which element is
 * picked, and with it one bit of every hash (the bug of an earlier public port).
 */
export function torbenMedian(m) {
  const n = m.length;
  const half = Math.trunc((n + 1) / 2);
  let min = m[0];
  let max = m[0];
  for (let i = 1; i < n; i++) {
    if (m[i] < min) min = m[i];
    if (m[i] > max) max = m[i];
  }
  let less, greater, equal, guess, maxLtGuess, minGtGuess;
  for (;;) {
    guess = f(f(min + max) / 2);
    less = 0;
    greater = 0;
    equal = 0;
    maxLtGuess = min;
    minGtGuess = max;
    for (let i = 0; i < n; i++) {
      if (m[i] < guess) {
        less++;
        if (m[i] > maxLtGuess) maxLtGuess = m[i];
      } else if (m[i] > guess) {
        greater++;
        if (m[i] < minGtGuess) minGtGuess = m[i];
      } else {
        equal++;
      }
    }
    if (less <= half && greater <= half) break;
    if (less > greater) max = maxLtGuess;
    else min = minGtGuess;
  }
  if (less >= half) return maxLtGuess;
  if (less + equal >= half) return guess;
  return minGtGuess;
}

/** 256 bits (bit k = coefficient k of the 16x16 block above the median) as 64 hex characters,
 * bit 255 first: the form pdqhash's vector, python-threatexchange and HMA use. */
function bitsToHex(coefficients, median) {
  let hex = '';
  for (let word = 15; word >= 0; word--) {
    let w = 0;
    for (let bit = 15; bit >= 0; bit--) {
      w = (w << 1) | (coefficients[word * 16 + bit] > median ? 1 : 0);
    }
    hex += w.toString(16).padStart(4, '0');
  }
  return hex;
}

/** PDQ of a float32 luminance image (row-major). Consumes (overwrites) `luma`. */
export function pdqFromLuma(luma, width, height) {
  if (width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM) {
    return { hash: '0'.repeat(64), quality: 0 };
  }
  let cells;
  if (width === 64 && height === 64) {
    cells = Float32Array.from(luma);
  } else {
    const scratch = new Float32Array(width * height);
    jaroszFilter(luma, scratch, height, width,
      jaroszWindowSize(width, 64), jaroszWindowSize(height, 64));
    cells = decimate64(luma, height, width);
  }
  const quality = qualityOf64(cells);
  const coefficients = dct64To16(cells);
  return { hash: bitsToHex(coefficients, torbenMedian(coefficients)), quality };
}

/** PDQ of interleaved 8-bit pixels (channels 3: RGB or 4: RGBA, alpha ignored). */
export function pdqFromRGB(pixels, width, height, channels = 3) {
  return pdqFromLuma(lumaFromRGB(pixels, width, height, channels), width, height);
}

/** Hamming distance between two 64-hex PDQ hashes. */
export function hammingDistance(a, b) {
  let d = 0;
  for (let i = 0; i < 64; i += 8) {
    let x = (parseInt(a.slice(i, i + 8), 16) ^ parseInt(b.slice(i, i + 8), 16)) >>> 0;
    while (x) {
      x &= x - 1;
      d++;
    }
  }
  return d;
}
