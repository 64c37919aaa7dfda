// vPDQ's frame hasher, off the main thread: one video frame (an ImageBitmap) in, its PDQ and
// quality out, by the page's PDQ code at the frame's full size, as the vPDQ authors' hasher does
// (no shrink first: PDQ's own filter reduces the frame). Nothing here touches the network.
import { pdqFromRGB } from './pdq.js';

self.addEventListener('message', ({ data }) => {
  const { id, bitmap } = data;
  try {
    const { width, height } = bitmap;
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
    const rgba = context.getImageData(0, 0, width, height).data;
    canvas.width = 0; // release the pixels now, not at the next GC
    const { hash, quality } = pdqFromRGB(rgba, width, height, 4);
    self.postMessage({ id, ok: true, hash, quality });
  } catch (error) {
    self.postMessage({ id, ok: false, error: String(error && error.name ? error.name : error) });
  }
});
