// Runs the page's pure functions on the cases named in argv[2] (JSON) and prints the results as
// JSON: token.js (normalizeToken, tokenPieces) and support.js (supportSections, validation,
// placeholderLines). tests/web/test_page_units.py holds the expectations.
import { normalizeToken, tokenPieces } from '../../web/js/token.js';
import { placeholderLines, supportSections, validateSupportConfig } from '../../web/js/support.js';

const input = JSON.parse(process.argv[2]);
const out = {
  tokens: input.tokens.map((typed) => normalizeToken(typed)),
  pieces: input.tokens.map((typed) => tokenPieces(normalizeToken(typed))),
  sections: input.configs.map(([config, lang]) => supportSections(config, lang)),
  problems: input.configs.map(([config]) => validateSupportConfig(config)),
  placeholders: input.configs.map(([config]) => placeholderLines(config)),
};
process.stdout.write(JSON.stringify(out));
