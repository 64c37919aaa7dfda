// Streaming MD5 and SHA-256 of a file's bytes, for the `video_md5` and `video_sha256` signals.
//
// Why by hand: Web Crypto has no MD5 at all, and its SHA-256 (`crypto.subtle.digest`) takes one
// whole buffer, so a 2 GB phone video would have to sit in memory at once; it is also missing
// outside secure contexts (a self-hosted server reached over plain http on a LAN). These two
// classes take the file in chunks (Blob.slice), so memory stays at one chunk whatever the size.
// Both follow their RFCs (MD5: RFC 1321; SHA-256: FIPS 180-4) and are checked against Python's
// hashlib and Web Crypto in tests/web.

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

// Shared block buffering: subclasses implement _block(view, offset) for one 64-byte block.
class BlockHasher {
  constructor() {
    this._buffer = new Uint8Array(64);
    this._buffered = 0;
    this._length = 0; // bytes hashed so far (exact up to 2^53)
  }

  update(bytes) {
    const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    this._length += data.length;
    let i = 0;
    if (this._buffered > 0) {
      const take = Math.min(64 - this._buffered, data.length);
      this._buffer.set(data.subarray(0, take), this._buffered);
      this._buffered += take;
      i = take;
      if (this._buffered < 64) return this;
      this._block(new DataView(this._buffer.buffer), 0);
      this._buffered = 0;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (; i + 64 <= data.length; i += 64) this._block(view, i);
    if (i < data.length) {
      this._buffer.set(data.subarray(i));
      this._buffered = data.length - i;
    }
    return this;
  }

  // Padding: 0x80, zeros, then the bit length as 64 bits (little- or big-endian).
  _pad(littleEndian) {
    const bits = this._length * 8;
    const tail = new Uint8Array(this._buffered < 56 ? 64 : 128);
    tail.set(this._buffer.subarray(0, this._buffered));
    tail[this._buffered] = 0x80;
    const view = new DataView(tail.buffer);
    const lo = bits >>> 0;
    const hi = Math.floor(bits / 4294967296) >>> 0;
    if (littleEndian) {
      view.setUint32(tail.length - 8, lo, true);
      view.setUint32(tail.length - 4, hi, true);
    } else {
      view.setUint32(tail.length - 8, hi, false);
      view.setUint32(tail.length - 4, lo, false);
    }
    for (let o = 0; o < tail.length; o += 64) this._block(view, o);
  }
}

// MD5 per-round shift amounts and sine-derived constants (RFC 1321, section 3.4).
const MD5_S = new Int32Array([7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]);
// Int32 storage throughout: V8 keeps int32 values unboxed, uint32 values above 2^31 are not.
const MD5_K = Int32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0);

export class MD5 extends BlockHasher {
  constructor() {
    super();
    this._h = new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
    this._m = new Int32Array(16);
  }

  _block(view, offset) {
    const m = this._m;
    for (let i = 0; i < 16; i++) m[i] = view.getInt32(offset + i * 4, true);
    const h = this._h;
    let a = h[0];
    let b = h[1];
    let c = h[2];
    let d = h[3];
    let x;
    let t;
    for (let i = 0; i < 16; i++) {
      x = (a + ((b & c) | (~b & d)) + MD5_K[i] + m[i]) | 0;
      t = MD5_S[i & 3];
      a = d; d = c; c = b;
      b = (b + ((x << t) | (x >>> (32 - t)))) | 0;
    }
    for (let i = 16; i < 32; i++) {
      x = (a + ((d & b) | (~d & c)) + MD5_K[i] + m[(5 * i + 1) & 15]) | 0;
      t = MD5_S[4 | (i & 3)];
      a = d; d = c; c = b;
      b = (b + ((x << t) | (x >>> (32 - t)))) | 0;
    }
    for (let i = 32; i < 48; i++) {
      x = (a + (b ^ c ^ d) + MD5_K[i] + m[(3 * i + 5) & 15]) | 0;
      t = MD5_S[8 | (i & 3)];
      a = d; d = c; c = b;
      b = (b + ((x << t) | (x >>> (32 - t)))) | 0;
    }
    for (let i = 48; i < 64; i++) {
      x = (a + (c ^ (b | ~d)) + MD5_K[i] + m[(7 * i) & 15]) | 0;
      t = MD5_S[12 | (i & 3)];
      a = d; d = c; c = b;
      b = (b + ((x << t) | (x >>> (32 - t)))) | 0;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
  }

  hex() {
    this._pad(true);
    const out = new DataView(new ArrayBuffer(16));
    for (let i = 0; i < 4; i++) out.setInt32(i * 4, this._h[i], true);
    return toHex(new Uint8Array(out.buffer));
  }
}

// SHA-256 round constants (FIPS 180-4, section 4.2.2).
const SHA_K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export class SHA256 extends BlockHasher {
  constructor() {
    super();
    this._h = new Int32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this._w = new Int32Array(64);
  }

  _block(view, offset) {
    const w = this._w;
    const h = this._h;
    let a = h[0];
    let b = h[1];
    let c = h[2];
    let d = h[3];
    let e = h[4];
    let f = h[5];
    let g = h[6];
    let k = h[7];
    for (let i = 0; i < 64; i++) {
      let wi;
      if (i < 16) {
        wi = view.getInt32(offset + i * 4, false);
      } else {
        const x = w[i - 15];
        const y = w[i - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        wi = (((w[i - 16] + s0) | 0) + ((w[i - 7] + s1) | 0)) | 0;
      }
      w[i] = wi;
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (((k + S1) | 0) + ((ch + SHA_K[i]) | 0) + wi) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      k = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + S0 + maj) | 0;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0;
    h[5] = (h[5] + f) | 0;
    h[6] = (h[6] + g) | 0;
    h[7] = (h[7] + k) | 0;
  }

  hex() {
    this._pad(false);
    const out = new DataView(new ArrayBuffer(32));
    for (let i = 0; i < 8; i++) out.setInt32(i * 4, this._h[i], false);
    return toHex(new Uint8Array(out.buffer));
  }
}

function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += HEX[b];
  return s;
}

export const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * MD5 and SHA-256 of a Blob/File, read CHUNK_BYTES at a time; `progress(done, total)` after each
 * chunk. Returns { md5, sha256 } as lower-case hex.
 */
export async function digestBlob(blob, progress = () => {}) {
  const md5 = new MD5();
  const sha = new SHA256();
  for (let offset = 0; offset < blob.size; offset += CHUNK_BYTES) {
    const chunk = new Uint8Array(await blob.slice(offset, offset + CHUNK_BYTES).arrayBuffer());
    md5.update(chunk);
    sha.update(chunk);
    progress(Math.min(offset + CHUNK_BYTES, blob.size), blob.size);
  }
  return { md5: md5.hex(), sha256: sha.hex() };
}
