// Translations: every visible string lives in web/i18n/<lang>.json; nothing is baked into code.
export const LANGUAGES = ['ja', 'en'];
const cache = new Map();
let current = 'en';
let strings = {};

/** The language to start in: the browser's preference if we have it, else English. */
export function preferredLanguage(list = navigator.languages || [navigator.language]) {
  for (const tag of list) {
    const base = String(tag || '').toLowerCase().split('-')[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return 'en';
}

export async function load(lang) {
  if (!cache.has(lang)) {
    const response = await fetch(`i18n/${lang}.json`, { credentials: 'omit', cache: 'no-store' });
    if (!response.ok) throw new Error(`i18n ${lang}: ${response.status}`);
    cache.set(lang, await response.json());
  }
  current = lang;
  strings = cache.get(lang);
  return strings;
}

export function language() {
  return current;
}

/** The value at a dotted key (a string, or a list/object for structured entries). */
export function raw(key) {
  return key.split('.').reduce((node, part) => (node == null ? undefined : node[part]), strings);
}

/** The string at `key` with {name} placeholders filled from `vars`; the key itself if missing. */
export function t(key, vars = {}) {
  const value = raw(key);
  if (typeof value !== 'string') return key;
  return value.replace(/\{(\w+)\}/g, (match, name) => (name in vars ? String(vars[name]) : match));
}

/** Fill [data-i18n] (text) and [data-i18n-attr="attr:key,attr:key"] under `root`. */
export function apply(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(',')) {
      const [attr, key] = pair.split(':');
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}
