// Validates support.json files with the page's own validator (web/js/support.js); prints
// [{path, problems}] as JSON.
import { readFileSync } from 'node:fs';
import { validateSupportConfig } from '../../web/js/support.js';

const out = process.argv.slice(2).map((path) => {
  let config;
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    return { path, problems: [`not JSON: ${error.message}`] };
  }
  return { path, problems: validateSupportConfig(config) };
});
process.stdout.write(JSON.stringify(out));
