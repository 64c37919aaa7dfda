// Sending a case as `hashguard submit` does (hashing/client.py): hashes beyond what one request
// may carry are not refused; the first batch creates the case and the others are added to it
// (POST /v1/cases/{ref}/hashes with the case's token), so they all end in one case.
//
// The per-request limit belongs to the server (HASHGUARD_MAX_HASHES_PER_REQUEST): the page reads
// it from GET /v1/limits when it starts (useLimits). Should that answer not arrive, it starts
// from the server's default and learns from the server's own answer: a batch refused with
// `too_many_hashes` is split in two and sent again, and later batches use the smaller size.

export const DEFAULT_MAX_HASHES = 500; // used only until GET /v1/limits has answered
// As hashing/client.py: well under the server's 4 MiB body cap (the page's PDQ and video
// digests are ~100 bytes each, so the count is what splits in practice).
export const MAX_BODY_BYTES = 3 * 1024 * 1024;
// No answer, or a proxy/server that is briefly away: the same request again may well work.
const RETRY_STATUSES = new Set([0, 502, 503, 504]);
const ATTEMPTS = 3;
const BACKOFF_MS = 500;

let maxHashes = DEFAULT_MAX_HASHES;

/** Take the server's own limit (GET /v1/limits); anything unusable leaves the default. */
export function useLimits(limits) {
  const value = limits && limits.max_hashes_per_request;
  if (Number.isInteger(value) && value > 0) maxHashes = value;
}

/** The batch size the page uses now (the default until the server refused a larger one). */
export function batchSize() {
  return maxHashes;
}

/** Split hashes, in order, into batches of at most `maxCount` hashes and about `maxBytes` of
 * JSON (a single record larger than that still gets a batch of its own). */
export function chunks(hashes, maxCount = maxHashes, maxBytes = MAX_BODY_BYTES) {
  const batches = [];
  let current = [];
  let size = 0;
  for (const item of hashes) {
    const itemSize = JSON.stringify(item).length + 2;
    if (current.length && (current.length >= maxCount || size + itemSize > maxBytes)) {
      batches.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += itemSize;
  }
  if (current.length) batches.push(current);
  return batches;
}

/** True if the server refused `batch` for its size: the limit is now below it, and the caller
 * should send it again in smaller batches. */
export function learnFromRefusal(error, batch) {
  if (!error || error.code !== 'too_many_hashes' || batch.length < 2) return false;
  maxHashes = Math.min(maxHashes, Math.ceil(batch.length / 2));
  return true;
}

async function withRetries(call) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= ATTEMPTS || !RETRY_STATUSES.has(error.status)) throw error;
      await new Promise((resolve) => setTimeout(resolve, BACKOFF_MS * 2 ** (attempt - 1)));
    }
  }
}

/**
 * Add `batches` to a case, in order. `onAdded(count)` after each accepted batch. Resolves to
 * { left, error }: the batches not added (empty when all are in) and why. Adding is safe to
 * repeat: a hash already in the case is not added twice.
 */
export async function addBatches(api, ref, token, batches, onAdded) {
  const queue = [...batches];
  const path = `/v1/cases/${encodeURIComponent(ref)}/hashes`;
  while (queue.length) {
    const batch = queue[0];
    try {
      await withRetries(() => api('POST', path, { body: { hashes: batch }, token }));
    } catch (error) {
      if (learnFromRefusal(error, batch)) {
        queue.splice(0, 1, ...chunks(batch));
        continue;
      }
      return { left: queue, error };
    }
    queue.shift();
    onAdded(batch.length);
  }
  return { left: [], error: null };
}
