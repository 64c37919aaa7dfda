// vPDQ's frame hasher, off the main thread: one video frame (an ImageBitmap) in, its PDQ and
// quality out, by the page's PDQ code at the frame's full size, as the vPDQ authors' hasher does
// (no shrink first: PDQ's own filter reduces the frame). A frame the browser turned as the file's
// track header says (`turn`, an orientation tag; 1 when not) is turned back to the stored frame
// first, a lossless permutation of pixels. Nothing here touches the network.
import { pdqFromRGB } from './pdq.js';
import { reorient } from './orient.js';

self.addEventListener('message', ({ data }) => {
  const { id, bitmap, turn = 1 } = data;
  try {
    const { width, height } = bitmap;
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
    const shown = { pixels: context.getImageData(0, 0, width, height).data, width, height };
    canvas.width = 0; // release the pixels now, not at the next GC
    const stored = reorient(shown, turn, 1);
    const { hash, quality } = pdqFromRGB(stored.pixels, stored.width, stored.height, 4);
    self.postMessage({ id, ok: true, hash, quality });
  } catch (error) {
    self.postMessage({ id, ok: false, error: String(error && error.name ? error.name : error) });
  }
});
