// HEIC/HEIF (the iPhone's photo format) in the page: libheif, the decoder pillow-heif wraps for the
// CLI, compiled to WebAssembly by the npm package libheif-js (LGPL-3.0, version in package.json,
// served unmodified by hashguard under /vendor/libheif/; docs/web.md). Measured: the same RGB bytes
// as pillow-heif, orientation (irot/imir) applied by libheif on both sides. Loaded only when a
// HEIC file is hashed (2 MB); a server without the package answers 404 and the page says it
// cannot read HEIC.

const BUNDLE = '/vendor/libheif/libheif-bundle.mjs';
let libheif = null;

async function load() {
  if (!libheif) {
    const { default: factory } = await import(BUNDLE);
    libheif = factory();
  }
  return libheif;
}

/** { pixels (RGBA, straight alpha), width, height } of the primary image of a HEIF file. */
export async function decodeHeif(bytes) {
  const lib = await load();
  const decoder = new lib.HeifDecoder();
  const images = decoder.decode(bytes);
  if (!images.length) throw new Error('no image in this HEIF file');
  const image = images.find((candidate) => candidate.is_primary()) || images[0];
  const width = image.get_width();
  const height = image.get_height();
  const target = { data: new Uint8ClampedArray(width * height * 4), width, height };
  const shown = await new Promise((resolve) => image.display(target, resolve));
  for (const other of images) other.free();
  if (!shown) throw new Error('HEIF decode failed');
  return { pixels: shown.data, width, height };
}
