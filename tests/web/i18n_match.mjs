// Runs the page's own language choice (web/js/i18n.js) under Node on the cases given as JSON
// on stdin ([{search, languages}]); prints the chosen language of each as a JSON list.
import { chosenLanguage, LANGUAGES, NAMES } from '../../web/js/i18n.js';

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const cases = JSON.parse(input);
  const chosen = cases.map(({ search, languages }) => chosenLanguage(search, languages));
  process.stdout.write(JSON.stringify({ chosen, languages: LANGUAGES, names: NAMES }));
});
