// The operator's file web/support.json: where Quick exit goes, and the support lines of the
// country (or countries) the service is run for. The lines follow where the person is, not the
// page's language: a foreign resident of Japan reading English needs Japan's numbers, explained
// in English. So each line carries its label and description per language, with English as the
// fallback for a language the operator did not write. Validated before use (and by the server
// at start, api/support_config.py, which mirrors these rules), so a mistake in the file shows as
// one clear message instead of a page that silently lists nothing.
//
// The older form, `locales.<lang>.items` (a list per page language), still loads.
export const REQUIRED_LANGUAGES = ['ja', 'en']; // the old form's required lists
export const FALLBACK_LANGUAGE = 'en';
const NUMBER = /^[0-9#+\-() ]*$/;
const COUNTRY = /^[A-Z]{2}$/;
// Words that mark a line the operator was meant to replace. The server refuses to start with
// such a line unless it is told the deployment is a demo.
const PLACEHOLDER = /placeholder|operator to fill in/i;

const isText = (v) => typeof v === 'string' && v.trim().length > 0;
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function checkTexts(problems, where, texts, { required }) {
  if (!isObject(texts)) {
    if (required) problems.push(`${where} must be an object of texts by language ({"en": "..."})`);
    return;
  }
  if (!isText(texts[FALLBACK_LANGUAGE])) {
    problems.push(`${where}.${FALLBACK_LANGUAGE} must be a non-empty string (the fallback text)`);
  }
  for (const [lang, text] of Object.entries(texts)) {
    if (typeof text !== 'string') problems.push(`${where}.${lang} must be a string`);
  }
}

function validateCountries(countries, problems) {
  if (!Array.isArray(countries) || countries.length === 0) {
    problems.push('countries must be a non-empty list');
    return;
  }
  countries.forEach((country, c) => {
    const where = `countries[${c}]`;
    if (!isObject(country)) {
      problems.push(`${where} must be an object`);
      return;
    }
    if (typeof country.code !== 'string' || !COUNTRY.test(country.code)) {
      problems.push(`${where}.code must be a two-letter country code ("JP")`);
    }
    checkTexts(problems, `${where}.name`, country.name, { required: true });
    if (!Array.isArray(country.lines) || country.lines.length === 0) {
      problems.push(`${where}.lines must be a non-empty list`);
      return;
    }
    country.lines.forEach((line, i) => {
      const at = `${where}.lines[${i}]`;
      if (!isObject(line)) {
        problems.push(`${at} must be an object`);
        return;
      }
      if (!isText(line.number) || !NUMBER.test(line.number)) {
        problems.push(`${at}.number must be a phone number (digits, #, +, -, spaces)`);
      }
      checkTexts(problems, `${at}.label`, line.label, { required: true });
      checkTexts(problems, `${at}.description`, line.description, { required: true });
    });
  });
}

function validateLocales(locales, problems) {
  if (!isObject(locales)) {
    problems.push('locales must be an object with one entry per language');
    return;
  }
  for (const lang of REQUIRED_LANGUAGES) {
    const entry = locales[lang];
    if (!isObject(entry)) {
      problems.push(`locales.${lang} is missing`);
      continue;
    }
    if (entry.note !== undefined && typeof entry.note !== 'string') {
      problems.push(`locales.${lang}.note must be a string`);
    }
    if (!Array.isArray(entry.items) || entry.items.length === 0) {
      problems.push(`locales.${lang}.items must be a non-empty list`);
      continue;
    }
    entry.items.forEach((item, i) => {
      const where = `locales.${lang}.items[${i}]`;
      if (!isObject(item)) {
        problems.push(`${where} must be an object`);
        return;
      }
      if (!isText(item.name)) problems.push(`${where}.name must be a non-empty string`);
      if (typeof item.number !== 'string' || !NUMBER.test(item.number)) {
        problems.push(`${where}.number must be a phone number (digits, #, +, -, spaces) or ""`);
      }
      if (item.note !== undefined && typeof item.note !== 'string') {
        problems.push(`${where}.note must be a string`);
      }
    });
  }
}

/** Problems with a parsed support.json, as a list of readable strings (empty: valid). */
export function validateSupportConfig(config) {
  const problems = [];
  if (!isObject(config)) return ['support.json must be a JSON object'];
  const exit = config.quick_exit_url;
  if (!(exit === 'about:blank' || (typeof exit === 'string' && /^https:\/\/[^\s]+$/.test(exit)))) {
    problems.push('quick_exit_url must be "about:blank" or an https:// address');
  }
  if (config.countries !== undefined || config.locales === undefined) {
    validateCountries(config.countries, problems);
  } else {
    validateLocales(config.locales, problems);
  }
  return problems;
}

/** The text for `lang`, else English (never a key, never "undefined"). */
export function textIn(texts, lang) {
  if (!isObject(texts)) return '';
  return isText(texts[lang]) ? texts[lang] : texts[FALLBACK_LANGUAGE] || '';
}

/**
 * What the page lists, in `lang`: [{ country, code, lines: [{ label, number, description }] }].
 * `country` is null for the older per-language form, which names no country.
 */
export function supportSections(config, lang) {
  if (!config) return [];
  if (Array.isArray(config.countries)) {
    return config.countries.map((country) => ({
      code: country.code,
      country: textIn(country.name, lang) || country.code,
      lines: country.lines.map((line) => ({
        label: textIn(line.label, lang),
        number: line.number,
        description: textIn(line.description, lang),
      })),
    }));
  }
  const entry = config.locales[lang] || config.locales[FALLBACK_LANGUAGE];
  return [{
    code: '',
    country: null,
    note: entry.note || '',
    lines: entry.items.map((item) => ({ label: item.name, number: item.number, description: item.note || '' })),
  }];
}

/** Every line whose text says it is a placeholder, named for the operator. */
export function placeholderLines(config) {
  const found = [];
  if (config && Array.isArray(config.countries)) {
    config.countries.forEach((country, c) => (country.lines || []).forEach((line, i) => {
      const texts = [...Object.values(line.label || {}), ...Object.values(line.description || {})];
      if (line.placeholder === true || texts.some((t) => PLACEHOLDER.test(String(t)))) {
        found.push(`countries[${c}].lines[${i}]`);
      }
    }));
  } else if (config && isObject(config.locales)) {
    for (const [lang, entry] of Object.entries(config.locales)) {
      (entry.items || []).forEach((item, i) => {
        if (PLACEHOLDER.test(`${item.name} ${item.note || ''}`)) found.push(`locales.${lang}.items[${i}]`);
      });
    }
  }
  return found;
}

/** A tel: link for a number as people write it ("#9110", "0120-279-338"). */
export function telHref(number) {
  return `tel:${number.replace(/[^0-9#+]/g, '').replace(/#/g, '%23')}`;
}

export async function loadSupportConfig() {
  const response = await fetch('support.json', { credentials: 'omit', cache: 'no-store' });
  if (!response.ok) throw new Error(`support.json: HTTP ${response.status}`);
  const config = await response.json();
  const problems = validateSupportConfig(config);
  if (problems.length) throw new Error(`support.json is invalid: ${problems.join('; ')}`);
  return config;
}
