// vPDQ on the page: one frame a second of a video, taken from a <video> element (the browser's
// own decoder, so whatever it plays can be hashed), hashed by the page's PDQ in a worker
// (vpdq-worker.js). Only the hashes leave: the value is python-threatexchange's `vpdq` string,
// as `hashguard hash` writes it (hashing/signals/vpdq.py; docs/hashing.md, "vPDQ").
//
// Frames: the CLI, like the vPDQ authors' hasher, hashes every k-th decoded frame, k = the
// integer part of the frame rate; a page cannot read the frame rate, so it takes the frame shown
// at each whole second. For whole frame rates (24, 25, 30, 60...) these are the same frames; at
// 29.97 the CLI's drift by 0.03 s a second, which the frame-share rule tolerates on most video.

import { videoTurn } from './video-meta.js';

export const NAME = 'vpdq';
export const SECONDS_PER_HASH = 1;
export const QUALITY_THRESHOLD = 50;
export const MAX_FRAMES = 4800; // the server's limit (80 minutes at one frame a second)
// A seek lands on the frame shown at that time; a hair after the whole second keeps a frame
// whose time is rounded a microsecond late in the file from being missed for the one before.
const SEEK_AFTER = 0.001;

export class VpdqProblem extends Error {
  constructor(code) {
    super(code);
    this.name = 'VpdqProblem';
    this.code = code; // 'unplayable' | 'too_long' | 'low_quality'
  }
}

/** Three significant digits of t > 0, rounded half to even on its exact binary value as Python
 * does (JS's toPrecision rounds ties up: 1085 would be 1.09e+03 where Python writes 1.08e+03). */
function threeDigits(t) {
  const [whole, fraction] = t.toFixed(70).split('.'); // exact for 1e-4 <= t < 1e21
  const significant = (whole + fraction).replace(/^0+/, '');
  let exponent = whole !== '0' ? whole.length - 1 : -(fraction.search(/[1-9]/) + 1);
  let head = BigInt(significant.slice(0, 3).padEnd(3, '0'));
  const next = significant[3] || '0';
  const beyond = /[1-9]/.test(significant.slice(4));
  if (next > '5' || (next === '5' && (beyond || head % 2n === 1n))) head += 1n;
  if (head === 1000n) {
    head = 100n;
    exponent += 1;
  }
  return { digits: head.toString(), exponent };
}

/** Python's format(t, ".3"), the reference's spelling of a frame's seconds: "0.0", "12.0",
 * "0.968", "1.23e+02" (scientific from exponent 2 = precision - 1 on, and below 1e-4). */
export function formatSeconds(t) {
  if (t === 0) return '0.0';
  if (t < 1e-4) { // never a frame's time in practice; kept simple
    const [m, e] = t.toExponential(2).split('e');
    return `${m.replace(/\.?0+$/, '')}e-${String(Math.abs(Number(e))).padStart(2, '0')}`;
  }
  const { digits, exponent } = threeDigits(t);
  if (exponent >= 2) {
    const mantissa = `${digits[0]}.${digits.slice(1)}`.replace(/\.?0+$/, '');
    return `${mantissa}e+${String(exponent).padStart(2, '0')}`;
  }
  const whole = exponent >= 0 ? digits.slice(0, exponent + 1) : '0';
  const fraction = (exponent >= 0 ? digits.slice(exponent + 1) : '0'.repeat(-exponent - 1) + digits)
    .replace(/0+$/, '');
  return `${whole}.${fraction || '0'}`;
}

/** The wire value: a JSON array of "<hex>,<quality>,<seconds>", written as json.dumps does. */
export function encode(frames) {
  const items = frames.map((f) => JSON.stringify(`${f.hash},${f.quality},${formatSeconds(f.seconds)}`));
  return `[${items.join(', ')}]`;
}

// A file the browser neither plays nor refuses (it can stall on odd data) must not leave the
// file "being hashed" for ever: past this, the video counts as unplayable.
const WAIT_MS = 30000;

function once(target, ok, fail = 'error') {
  return new Promise((resolve, reject) => {
    const settle = (outcome) => {
      clearTimeout(timer);
      target.removeEventListener(ok, done);
      target.removeEventListener(fail, failed);
      outcome();
    };
    const done = () => settle(resolve);
    const failed = () => settle(() => reject(new VpdqProblem('unplayable')));
    const timer = setTimeout(failed, WAIT_MS);
    target.addEventListener(ok, done);
    target.addEventListener(fail, failed);
  });
}

// After 'seeked', Chromium can still hand out the frame shown before the seek for a while: under
// load (average 11-17 on 2 cores) 14 of 300 seeks in a 30 s clip came back stale, 70-104 bits from
// the CLI's frame, even once two grabs 20 ms apart agreed (they were both the old frame). Where
// WebCodecs exists (secure contexts), `new VideoFrame(video)` carries the frame's own media time,
// so a stale frame is known for what it is: wait until the frame differs from the one taken
// before the seek. A video with less than one frame a second legitimately shows
// the previous frame again; after one full wait has shown that, later waits are short.
// rAF and requestVideoFrameCallback do not help on their own (the latter never fires for a
// paused, unrendered video; the former stops in a background tab).
const SETTLE_TRIES = 20;
const SETTLE_MS = 20;
const STALE_TRIES = 50; // ~1 s, then the repeat is taken as the video's own
const REPEAT_TRIES = 3; // once the video has shown a real repeat
const HAS_VIDEO_FRAME = typeof VideoFrame === 'function';

function fingerprinter() {
  const canvas = new OffscreenCanvas(16, 16);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  return (bitmap) => {
    context.drawImage(bitmap, 0, 0, 16, 16);
    return context.getImageData(0, 0, 16, 16).data.join(',');
  };
}

function aMoment() {
  return new Promise((resolve) => {
    requestAnimationFrame(() => resolve());
    setTimeout(resolve, SETTLE_MS);
  });
}

/** Without WebCodecs: a frame counts once two grabs a moment apart agree (16×16 thumbnails). */
async function settledFrame(video, fingerprint) {
  let bitmap = await createImageBitmap(video);
  let print = fingerprint(bitmap);
  for (let i = 0; i < SETTLE_TRIES; i++) {
    await aMoment();
    const next = await createImageBitmap(video);
    const nextPrint = fingerprint(next);
    bitmap.close();
    bitmap = next;
    if (nextPrint === print) break;
    print = nextPrint;
  }
  return bitmap;
}

// A phone stores portrait video as landscape frames plus a rotation (and possibly mirror) in the
// MP4/MOV track header. The CLI, like the vPDQ authors' hasher and so HMA, hashes the frames as
// stored; the browser shows them turned, and a VideoFrame taken from the <video> carries that turn
// as `rotation`/`flip`, which createImageBitmap applies (Chromium 156 even squeezes a 90° frame into
// the stored width x height). A new VideoFrame of it with the opposite turn is the stored frame,
// byte for byte (measured for 90/180/270 and the four mirrored matrices). WebCodecs composes the
// turn of such a copy with its source's; on a mirrored frame an added rotation counts the other
// way, so the same rotation with the same flip undoes it.
function asStored(frame) {
  if (!frame.rotation && !frame.flip) return frame; // upright, or a browser that never turns
  const undone = new VideoFrame(frame, {
    rotation: frame.flip ? frame.rotation : (360 - frame.rotation) % 360,
    flip: !!frame.flip,
  });
  if (undone.rotation || undone.flip) { // another composition rule: no hash that cannot match
    undone.close();
    throw new VpdqProblem('unplayable');
  }
  return undone;
}

/** The frame after a seek, known by its own media time to differ from the one taken before it
 * (`state.last`; the frame shown before the seek is what a stale grab returns). `state.repeats`
 * is set once the video has shown the same frame again after a full wait. An ImageBitmap of the
 * frame as stored (asStored). */
async function frameAfter(video, state) {
  const tries = state.repeats ? REPEAT_TRIES : STALE_TRIES;
  for (let i = 0; ; i++) {
    const frame = new VideoFrame(video);
    const { timestamp } = frame;
    if (timestamp !== state.last || i >= tries) {
      if (timestamp === state.last) state.repeats = true;
      state.last = timestamp;
      let stored = frame;
      try {
        stored = asStored(frame);
        return await createImageBitmap(stored);
      } finally {
        if (stored !== frame) stored.close();
        frame.close();
      }
    }
    frame.close();
    await aMoment();
  }
}

function frameHasher() {
  const worker = new Worker(new URL('./vpdq-worker.js', import.meta.url), { type: 'module' });
  const waiting = new Map();
  let next = 0;
  worker.addEventListener('message', ({ data }) => {
    const job = waiting.get(data.id);
    waiting.delete(data.id);
    if (data.ok) job.resolve(data);
    else job.reject(new VpdqProblem('unplayable'));
  });
  const fail = (event) => {
    event.preventDefault();
    for (const job of waiting.values()) job.reject(new VpdqProblem('unplayable'));
    waiting.clear();
  };
  worker.addEventListener('error', fail);
  worker.addEventListener('messageerror', fail);
  return {
    /** `turn`: the orientation tag the bitmap was turned by (1: as stored), undone there. */
    hash(bitmap, turn) {
      const id = next++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker.postMessage({ id, bitmap, turn }, [bitmap]);
      });
    },
    stop: () => worker.terminate(),
  };
}

/**
 * The vPDQ signal of a video file: { signal_type: 'vpdq', value, frames }.
 * Rejects with VpdqProblem when the browser cannot play it, it is over MAX_FRAMES seconds, or no
 * frame reaches quality 50. `onProgress(fraction)` follows the frames.
 */
export async function hashVideoFile(file, onProgress = () => {}) {
  const url = URL.createObjectURL(file); // a local object URL: the bytes never leave the page
  const video = document.createElement('video');
  video.muted = true;
  video.preload = 'auto';
  const hasher = frameHasher();
  try {
    const loaded = once(video, 'loadeddata');
    video.src = url;
    await loaded;
    const { duration } = video;
    if (!Number.isFinite(duration) || !video.videoWidth || !video.videoHeight) {
      throw new VpdqProblem('unplayable');
    }
    const count = Math.max(1, Math.ceil(duration / SECONDS_PER_HASH));
    if (count > MAX_FRAMES) throw new VpdqProblem('too_long');
    const pending = [];
    const fingerprint = HAS_VIDEO_FRAME ? null : fingerprinter();
    // Without WebCodecs the grab is the frame as shown: the turn the file's track header gives
    // (the browser applies it) is undone in the worker. With it, asStored() gives stored frames.
    const turn = HAS_VIDEO_FRAME ? 1 : await videoTurn(file);
    const state = { last: null, repeats: false };
    for (let k = 0; k < count; k++) {
      const seconds = k * SECONDS_PER_HASH;
      const seeked = once(video, 'seeked');
      video.currentTime = Math.min(seconds + SEEK_AFTER, duration);
      await seeked;
      const bitmap = HAS_VIDEO_FRAME ? await frameAfter(video, state)
        : await settledFrame(video, fingerprint);
      // The worker hashes this frame while the next one is sought.
      pending.push(hasher.hash(bitmap, turn).then(({ hash, quality }) => {
        onProgress((k + 1) / count);
        return { hash, quality, seconds };
      }));
    }
    const frames = await Promise.all(pending);
    if (!frames.some((f) => f.quality >= QUALITY_THRESHOLD)) throw new VpdqProblem('low_quality');
    return { signal_type: NAME, value: encode(frames), frames: frames.length };
  } finally {
    hasher.stop();
    video.removeAttribute('src');
    video.load(); // drop the decoder and its buffers
    URL.revokeObjectURL(url);
  }
}
