// A video's hashes on the page: the worker's digests (exact copies), then vPDQ (re-encoded
// copies: vpdq.js). vPDQ needs the browser to play the file; when it cannot (a codec it lacks,
// a video over 80 minutes, blank frames), the digests are still sent and the file says why.
import { hashVideoFile, VpdqProblem } from './vpdq.js';

// One video at a time: each plays in its own decoder with a worker beside it, and a person may
// add hundreds of files at once.
let queue = Promise.resolve();

/** `data` (the worker's answer for a video) with the vPDQ signal added when it can be made;
 * otherwise `item.vpdqProblem` names why ('unplayable' | 'too_long' | 'low_quality'). */
export function withVpdq(item, data, onProgress) {
  const job = queue.then(() => hashOne(item, data, onProgress));
  queue = job.catch(() => {});
  return job;
}

async function hashOne(item, data, onProgress) {
  const started = performance.now();
  try {
    const signal = await hashVideoFile(item.file, onProgress);
    item.vpdqFrames = signal.frames;
    return {
      ...data,
      signals: [...data.signals, { signal_type: signal.signal_type, value: signal.value }],
      ms: data.ms + (performance.now() - started),
    };
  } catch (error) {
    if (!(error instanceof VpdqProblem)) console.error(error);
    item.vpdqProblem = error instanceof VpdqProblem ? error.code : 'unplayable';
    return data;
  }
}
