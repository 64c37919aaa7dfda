// What the page must know about an image file before decoding it, read from its bytes: the
// container, a JPEG's stored size (to ask the decoder for the same DCT-scaled draft as the CLI), and
// the orientation by Pillow's rule, because browsers apply only part of it (Chromium: EXIF in JPEG
// and PNG; not EXIF in WebP, never XMP).
//
// Pillow's rule (Image.getexif + ImageOps.exif_transpose), which hashing/media.py applies:
// the EXIF Orientation tag (0x0112) of the file's EXIF block (JPEG APP1, PNG eXIf, WebP EXIF;
// the first one), else `tiff:Orientation="N"` or `<tiff:Orientation>N` in its XMP packet.
// Values 2..8 change the picture; anything else means upright.
//
// Pure functions on a Uint8Array, no DOM: the worker and the Node tests import this same file.

const XMP_ORIENTATION = /tiff:Orientation(="|>)([0-9])/;

const latin1 = (bytes, start, end) => {
  let s = '';
  for (let i = start, last = Math.min(end, bytes.length); i < last; i++) s += String.fromCharCode(bytes[i]);
  return s;
};
const u16be = (b, i) => (b[i] << 8) | b[i + 1];
const u32be = (b, i) => ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];
const u32le = (b, i) => b[i] + (b[i + 1] << 8) + (b[i + 2] << 16) + ((b[i + 3] << 24) >>> 0);

/** The container, from the magic bytes (a file name can lie): jpeg, png, webp, gif, bmp, tiff,
 * heif (HEIC/HEIF/AVIF share the ISO box format; `brand` tells them apart), or null. */
export function sniffContainer(b) {
  if (b.length < 12) return null;
  if (b[0] === 0xff && b[1] === 0xd8) return 'jpeg';
  if (b[0] === 0x89 && latin1(b, 1, 4) === 'PNG') return 'png';
  if (latin1(b, 0, 4) === 'RIFF' && latin1(b, 8, 12) === 'WEBP') return 'webp';
  if (latin1(b, 0, 4) === 'GIF8') return 'gif';
  if (b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  const head = latin1(b, 0, 4);
  if (head === 'II*\0' || head === 'MM\0*') return 'tiff';
  if (latin1(b, 4, 8) === 'ftyp') return 'heif';
  return null;
}

/** The major brand of an ISO-BMFF file ('heic', 'mif1', 'avif', ...). */
export function heifBrand(b) {
  return latin1(b, 8, 12);
}

/** Orientation tag of a TIFF-structured EXIF block starting at `start` (after any "Exif\0\0"). */
function exifOrientation(b, start, end) {
  if (latin1(b, start, start + 6) === 'Exif\0\0') start += 6;
  if (end - start < 8) return null;
  const little = b[start] === 0x49;
  const u16 = (i) => (little ? b[i] + (b[i + 1] << 8) : u16be(b, i));
  const u32 = (i) => (little ? u32le(b, i) : u32be(b, i));
  const ifd = start + u32(start + 4);
  if (ifd + 2 > end) return null;
  const count = u16(ifd);
  for (let k = 0; k < count; k++) {
    const entry = ifd + 2 + 12 * k;
    if (entry + 12 > end) return null;
    if (u16(entry) !== 0x0112) continue;
    const type = u16(entry + 2);
    if (type === 3) return u16(entry + 8); // SHORT, the type the standard gives the tag
    if (type === 4) return u32(entry + 8);
    return null;
  }
  return null;
}

async function inflate(deflated) {
  const stream = new Blob([deflated]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function xmpOrientation(text) {
  const match = XMP_ORIENTATION.exec(text);
  return match ? Number(match[2]) : null;
}

function readJpeg(b, meta) {
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return;
    const marker = b[i + 1];
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { i += 2; continue; }
    if (marker === 0xd9 || marker === 0xda) return; // end, or the scan: no more headers
    const length = u16be(b, i + 2);
    const body = i + 4;
    const end = Math.min(b.length, i + 2 + length);
    if (marker === 0xe1) {
      if (latin1(b, body, body + 6) === 'Exif\0\0' && meta.exif === undefined) {
        meta.exif = exifOrientation(b, body, end);
      } else if (latin1(b, body, body + 29) === 'http://ns.adobe.com/xap/1.0/\0') {
        meta.xmp = xmpOrientation(latin1(b, body + 29, end));
      }
    }
    // SOF0..SOF15 except DHT (c4), JPG (c8), DAC (cc): height and width of the frame.
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      meta.height = u16be(b, body + 1);
      meta.width = u16be(b, body + 3);
      meta.components = b[body + 5];
    }
    i += 2 + length;
  }
}

function readPng(b, meta) {
  let i = 8;
  while (i + 8 <= b.length) {
    const length = u32be(b, i);
    const type = latin1(b, i + 4, i + 8);
    const body = i + 8;
    const end = Math.min(b.length, body + length);
    if (type === 'IHDR') {
      meta.width = u32be(b, body);
      meta.height = u32be(b, body + 4);
    } else if (type === 'eXIf' && meta.exif === undefined) {
      meta.exif = exifOrientation(b, body, end);
    } else if (type === 'iTXt' && latin1(b, body, body + 18) === 'XML:com.adobe.xmp\0') {
      // keyword\0, compression flag, method, language\0, translated keyword\0, text (zlib when
      // the flag is set: Pillow reads both, so readImageMeta inflates it).
      let t = body + 20;
      for (let zeros = 0; zeros < 2 && t < end; t++) if (b[t] === 0) zeros++;
      if (b[body + 18] === 0) meta.xmp = xmpOrientation(latin1(b, t, end));
      else meta.xmpDeflated = b.subarray(t, end);
    } else if (type === 'IEND') {
      return;
    }
    i = body + length + 4;
  }
}

function readWebp(b, meta) {
  let i = 12;
  while (i + 8 <= b.length) {
    const type = latin1(b, i, i + 4);
    const length = u32le(b, i + 4);
    const body = i + 8;
    const end = Math.min(b.length, body + length);
    if (type === 'VP8X') { // the extended header, present whenever EXIF or XMP is: canvas size
      meta.width = 1 + b[body + 4] + (b[body + 5] << 8) + (b[body + 6] << 16);
      meta.height = 1 + b[body + 7] + (b[body + 8] << 8) + (b[body + 9] << 16);
    } else if (type === 'EXIF' && meta.exif === undefined) meta.exif = exifOrientation(b, body, end);
    else if (type === 'XMP ') meta.xmp = xmpOrientation(latin1(b, body, end));
    i = body + length + (length & 1); // chunks are padded to even sizes
  }
}

/**
 * { container, brand, width, height, orientation, exifOrientation } of a file's bytes; width and
 * height (as stored) for JPEG, PNG and extended WebP; orientation by Pillow's rule (1 when none);
 * exifOrientation: the EXIF tag alone, ignoring XMP.
 */
export async function readImageMeta(bytes) {
  const container = sniffContainer(bytes);
  const meta = { container, brand: container === 'heif' ? heifBrand(bytes) : null };
  if (container === 'jpeg') readJpeg(bytes, meta);
  else if (container === 'png') readPng(bytes, meta);
  else if (container === 'webp') readWebp(bytes, meta);
  if (meta.xmpDeflated) {
    try {
      meta.xmp = xmpOrientation(latin1(await inflate(meta.xmpDeflated), 0, Infinity));
    } catch {
      // a corrupt packet: Pillow would not read it either
    }
    delete meta.xmpDeflated;
  }
  const valid = (tag) => (tag >= 2 && tag <= 8 ? tag : 1);
  meta.orientation = valid(meta.exif != null ? meta.exif : meta.xmp);
  meta.exifOrientation = valid(meta.exif); // what Chromium applies itself (JPEG and PNG only)
  delete meta.exif;
  delete meta.xmp;
  return meta;
}
