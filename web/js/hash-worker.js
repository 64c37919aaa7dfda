// The page's hashing worker: file in, hashes out, off the main thread so the page stays usable.
// Nothing here touches the network; the file's bytes never leave this worker.
import { pdqFromRGB } from './pdq.js';
import { thumbnail } from './thumbnail.js';
import { digestBlob } from './digests.js';

/**
 * The canonical image pipeline of hashing/media.py, in the browser:
 * 1. decode (first frame of an animation) applying the EXIF orientation, with no colour
 *    management and no premultiplication, as Pillow decodes;
 * 2. read the pixels back through a 2D canvas; its alpha channel is dropped like Pillow's
 *    convert("RGB") (a canvas stores premultiplied colours, so fully transparent pixels read as
 *    black and translucent ones within rounding of their colour: see docs/web.md);
 * 3. shrink with Pillow's thumbnail((512, 512)) rule, in JS (thumbnail.js);
 * 4. PDQ (pdq.js).
 * The CLI also asks libjpeg for a DCT-scaled draft of big JPEGs, which a browser cannot; the
 * measured effect on the hash is in docs/web.md.
 */
export async function hashImage(blob) {
  const t0 = performance.now();
  const bitmap = await createImageBitmap(blob, {
    imageOrientation: 'from-image',
    colorSpaceConversion: 'none',
    premultiplyAlpha: 'none',
  });
  const { width, height } = bitmap;
  const t1 = performance.now();
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  canvas.width = 0; // release the canvas' pixels now, not at the next GC
  const t2 = performance.now();
  const small = thumbnail(rgba, width, height, 4);
  const t3 = performance.now();
  const { hash, quality } = pdqFromRGB(small.pixels, small.width, small.height, 3);
  const t4 = performance.now();
  return {
    signals: [{ signal_type: 'pdq', value: hash, quality }],
    width,
    height,
    ms: t4 - t0,
    stages: { decode: t1 - t0, pixels: t2 - t1, shrink: t3 - t2, pdq: t4 - t3 },
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
      self.postMessage({ id, ok: false, error: String(error && error.name ? error.name : error) });
    }
  });
});
