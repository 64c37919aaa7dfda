// Streams files through the page's MD5 and SHA-256 (web/js/digests.js) as the worker does
// (Blob.slice chunks); prints [{path, md5, sha256}] as JSON.
import { readFileSync } from 'node:fs';
import { digestBlob } from '../../web/js/digests.js';

const out = [];
for (const path of process.argv.slice(2)) {
  const { md5, sha256 } = await digestBlob(new Blob([readFileSync(path)]));
  out.push({ path, md5, sha256 });
}
process.stdout.write(JSON.stringify(out));
