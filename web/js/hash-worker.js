// The page's hashing worker: file in, hashes out, off the main thread so the page stays usable.
// Nothing here touches the network; the file's bytes never leave this worker.
import { pdqFromRGB } from './pdq.js';
import { thumbnail } from './thumbnail.js';
import { digestBlob } from './digests.js';
import { decodeImage, UnsupportedFormat } from './decode.js';

/**
 * The canonical image pipeline of hashing/media.py, in the browser:
 * 1. decode.js: first frame, the CLI's JPEG draft size, orientation by Pillow's rule,
 *    transparency over white, 8-bit (docs/hashing.md, per image class);
 * 2. shrink with Pillow's thumbnail((512, 512)) rule, in JS (thumbnail.js);
 * 3. PDQ (pdq.js).
 */
// Every step before PDQ treats the three channels alike, so a BGR decode is put right at 512 px.
function swapRedBlue(rgb) {
  for (let i = 0; i < rgb.length; i += 3) {
    const r = rgb[i + 2];
    rgb[i + 2] = rgb[i];
    rgb[i] = r;
  }
}

export async function hashImage(blob) {
  const t0 = performance.now();
  const { pixels, width, height, bgr, path, stages } = await decodeImage(blob);
  const t1 = performance.now();
  const small = thumbnail(pixels, width, height, 4);
  if (bgr) swapRedBlue(small.pixels);
  const t2 = performance.now();
  const { hash, quality } = pdqFromRGB(small.pixels, small.width, small.height, 3);
  const t3 = performance.now();
  return {
    signals: [{ signal_type: 'pdq', value: hash, quality }],
    width,
    height,
    ms: t3 - t0,
    stages: { ...stages, shrink: t2 - t1, pdq: t3 - t2, path },
  };
}

export async function hashVideo(blob, progress) {
  const started = performance.now();
  const { md5, sha256 } = await digestBlob(blob, progress);
  return {
    signals: [
      { signal_type: 'video_md5', value: md5 },
      { signal_type: 'video_sha256', value: sha256 },
    ],
    ms: performance.now() - started,
  };
}

// One job at a time: a 12 MP photo needs ~100 MB while it is decoded.
let queue = Promise.resolve();

self.addEventListener('message', (event) => {
  const { id, kind, file } = event.data;
  queue = queue.then(async () => {
    try {
      const result = kind === 'image'
        ? await hashImage(file)
        : await hashVideo(file, (done, total) => self.postMessage({ id, progress: done / total }));
      self.postMessage({ id, ok: true, ...result });
    } catch (error) {
      // A format the browser cannot read gets its own message (files.format_not_in_browser).
      const problem = error instanceof UnsupportedFormat ? 'format_not_in_browser' : null;
      self.postMessage({ id, ok: false, problem, error: String(error && error.name ? error.name : error) });
    }
  });
});
