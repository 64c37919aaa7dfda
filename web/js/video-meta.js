// The turn a phone records beside an MP4/MOV video's frames (the display matrix of the video
// track's header, `moov/trak/tkhd`), read from the file's bytes: the page needs it where the browser
// shows the frames turned and gives no VideoFrame that says how (vpdq.js, without WebCodecs).
// vPDQ hashes the frames as stored, as the CLI and the vPDQ authors' hasher do.
//
// The turn is given as the EXIF orientation tag (orient.js) that takes a stored frame to the shown
// one. The matrix [a b; c d] maps a stored pixel (x, y) to (a x + c y, b x + d y) in the picture's
// own y-down coordinates (ISO 14496-12 matrix order a, b, u, c, d, v, x, y, w), so its signs name
// the turn; Chromium 156 shows exactly that (measured for all eight, tests/web/test_page_vpdq.py).
// Anything that is not a quarter turn or mirror (scaled, sheared) counts as upright.
//
// Reads only box headers and the few small boxes it needs through Blob slices: the media data
// (most of the file) is never read, and a file it does not understand simply counts as upright.

const TAGS = {
  '1,0,0,1': 1, '-1,0,0,1': 2, '-1,0,0,-1': 3, '1,0,0,-1': 4,
  '0,1,1,0': 5, '0,1,-1,0': 6, '0,-1,-1,0': 7, '0,-1,1,0': 8,
};
const MAX_BOXES = 10000; // a damaged file must not keep the page reading for ever

const u32 = (v, i) => v.getUint32(i);
const text = (v, i) => String.fromCharCode(v.getUint8(i), v.getUint8(i + 1), v.getUint8(i + 2), v.getUint8(i + 3));

async function view(blob, start, end) {
  return new DataView(await blob.slice(start, Math.min(end, blob.size)).arrayBuffer());
}

/** The boxes between `start` and `end`: [{ type, body (offset of the contents), end }]. */
async function children(blob, start, end) {
  const found = [];
  for (let at = start; at + 8 <= end && found.length < MAX_BOXES;) {
    const head = await view(blob, at, at + 16);
    if (head.byteLength < 8) break;
    let size = u32(head, 0);
    let body = at + 8;
    if (size === 1) { // 64-bit size
      if (head.byteLength < 16) break;
      size = u32(head, 8) * 2 ** 32 + u32(head, 12);
      body = at + 16;
    } else if (size === 0) {
      size = end - at; // to the end of the enclosing box (or file)
    }
    if (size < body - at || at + size > end) break;
    found.push({ type: text(head, 4), body, end: at + size });
    at += size;
  }
  return found;
}

const child = (boxes, type) => boxes.find((b) => b.type === type);

/** The 2x2 part of a tkhd box's matrix, as [a, b, c, d] in 16.16 fixed point, or null. */
async function tkhdMatrix(blob, box) {
  const v = await view(blob, box.body, box.end);
  if (v.byteLength < 4) return null;
  // version/flags, times and duration (32-bit in version 0, 64-bit in 1), reserved, layer,
  // alternate group, volume, reserved: then the nine matrix entries.
  const at = 4 + (v.getUint8(0) === 1 ? 32 : 20) + 8 + 8;
  if (v.byteLength < at + 36) return null;
  return [v.getInt32(at), v.getInt32(at + 4), v.getInt32(at + 12), v.getInt32(at + 16)];
}

/** The EXIF orientation tag (1..8) of the first video track's display matrix; 1 when the file is
 * not MP4/MOV or has no such turn. */
export async function videoTurn(blob) {
  try {
    const moov = child(await children(blob, 0, blob.size), 'moov');
    if (!moov) return 1;
    for (const trak of (await children(blob, moov.body, moov.end)).filter((b) => b.type === 'trak')) {
      const parts = await children(blob, trak.body, trak.end);
      const mdia = child(parts, 'mdia');
      const hdlr = mdia && child(await children(blob, mdia.body, mdia.end), 'hdlr');
      // hdlr: version/flags, pre_defined, then the handler type ('vide' for video)
      if (!hdlr || text(await view(blob, hdlr.body + 8, hdlr.body + 12), 0) !== 'vide') continue;
      const tkhd = child(parts, 'tkhd');
      const matrix = tkhd && await tkhdMatrix(blob, tkhd);
      return (matrix && TAGS[matrix.map(Math.sign).join(',')]) || 1;
    }
  } catch {
    // a short or odd file: upright, as the browser will most likely show it
  }
  return 1;
}
