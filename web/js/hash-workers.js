// The page's side of the hashing worker (hash-worker.js), which hashes files one at a time.
//
// A worker can stop replying for the files it holds: its script fails to load or throws as it
// starts, an exception escapes the per-file try, or a reply cannot be deserialised. The browser
// then fires `error` or `messageerror` at the Worker (never a reply), and a page that listens
// only for `message` leaves those files "being hashed" for good, with Send disabled. Here such a
// worker is ended and every file it held fails (which of them caused it cannot be known: the
// event names no file; the person can add them again). The next files get a fresh worker.

export class WorkerFailed extends Error {
  constructor(reason) {
    super(`hashing worker failed: ${reason}`);
    this.name = 'WorkerFailed';
  }
}

let current = null; // { worker, jobs: Map(id -> job), ended }

function start() {
  const worker = new Worker(new URL('./hash-worker.js', import.meta.url), { type: 'module' });
  const entry = { worker, jobs: new Map(), ended: false };
  worker.addEventListener('message', ({ data }) => {
    const job = entry.jobs.get(data.id);
    if (!job) return;
    if ('progress' in data) {
      job.onProgress(data.progress);
      return;
    }
    entry.jobs.delete(data.id);
    job.resolve(data);
  });
  const fail = (event) => {
    event.preventDefault(); // handled here, so not also reported as an uncaught page error
    if (entry.ended) return;
    entry.ended = true;
    if (current === entry) current = null;
    worker.terminate();
    const reason = event.type === 'error' && event.message ? event.message : event.type;
    for (const job of entry.jobs.values()) job.reject(new WorkerFailed(reason));
    entry.jobs.clear();
  };
  worker.addEventListener('error', fail);
  worker.addEventListener('messageerror', fail);
  return entry;
}

function post(job) {
  if (!current) current = start();
  current.jobs.set(job.id, job);
  current.worker.postMessage({ id: job.id, kind: job.kind, file: job.file });
}

/** Hash one file in the worker: resolves to the worker's reply ({ ok, signals, ... } or
 * { ok: false, error }), rejects with WorkerFailed if the worker died holding it. */
export function hashFile(id, kind, file, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    post({ id, kind, file, onProgress, resolve, reject });
  });
}

/** Stop hashing now (Quick exit): the worker and every file it holds are dropped. */
export function stopAll() {
  if (current) current.worker.terminate();
  current = null;
}
