// The operator's file web/support.json: where Quick exit goes and the support services per
// language. Validated before use, so a mistake in the file shows as one clear message instead of
// a page that silently lists nothing.
export const REQUIRED_LOCALES = ['ja', 'en'];

/** Problems with a parsed support.json, as a list of readable strings (empty: valid). */
export function validateSupportConfig(config) {
  const problems = [];
  const isText = (v) => typeof v === 'string' && v.trim().length > 0;
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    return ['support.json must be a JSON object'];
  }
  const exit = config.quick_exit_url;
  if (!(exit === 'about:blank' || (typeof exit === 'string' && /^https:\/\/[^\s]+$/.test(exit)))) {
    problems.push('quick_exit_url must be "about:blank" or an https:// address');
  }
  const locales = config.locales;
  if (!locales || typeof locales !== 'object') {
    problems.push('locales must be an object with one entry per language');
    return problems;
  }
  for (const lang of REQUIRED_LOCALES) {
    const entry = locales[lang];
    if (!entry || typeof entry !== 'object') {
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
      if (!item || typeof item !== 'object') {
        problems.push(`${where} must be an object`);
        return;
      }
      if (!isText(item.name)) problems.push(`${where}.name must be a non-empty string`);
      if (typeof item.number !== 'string' || !/^[0-9#+\-() ]*$/.test(item.number)) {
        problems.push(`${where}.number must be a phone number (digits, #, +, -, spaces) or ""`);
      }
      if (item.note !== undefined && typeof item.note !== 'string') {
        problems.push(`${where}.note must be a string`);
      }
    });
  }
  return problems;
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
