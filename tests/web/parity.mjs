// Runs the page's own JS modules (web/js) under Node on pixel dumps written by test_js_parity.py.
// Input: a JSON manifest [{name, path, width, height, channels, thumbnail}] (raw interleaved 8-bit
// pixels in `path`). Output (stdout): one JSON list of {name, hash, quality, width, height,
// pixels_sha256} where width/height/pixels_sha256 describe the pixels PDQ was given.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { pdqFromRGB } from '../../web/js/pdq.js';
import { thumbnail } from '../../web/js/thumbnail.js';

const manifest = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = manifest.map((item) => {
  let pixels = readFileSync(item.path);
  let { width, height } = item;
  let channels = item.channels;
  if (item.thumbnail) {
    const small = thumbnail(pixels, width, height, channels);
    ({ pixels, width, height } = small);
    channels = 3;
  }
  const { hash, quality } = pdqFromRGB(pixels, width, height, channels);
  const rgb = channels === 3 ? pixels : null;
  return {
    name: item.name,
    hash,
    quality,
    width,
    height,
    pixels_sha256: rgb ? createHash('sha256').update(rgb).digest('hex') : null,
  };
});
process.stdout.write(JSON.stringify(results));
