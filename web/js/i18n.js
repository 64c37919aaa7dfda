// Translations: every visible string lives in web/i18n/<lang>.json; nothing is baked into code.
// English is the reference text: a string a translation lacks is shown in English (marked
// lang="en" for screen readers), never as its key. How far each translation was checked is in
// web/i18n/status.json.
export const LANGUAGES = ['ja', 'en', 'zh-Hans', 'ko', 'vi', 'tl', 'pt-BR', 'ne'];
export const FALLBACK = 'en';

// Each language named in itself: a person who cannot read the current page still finds theirs.
export const NAMES = {
  ja: '日本語',
  en: 'English',
  'zh-Hans': '简体中文',
  ko: '한국어',
  vi: 'Tiếng Việt',
  tl: 'Tagalog',
  'pt-BR': 'Português (Brasil)',
  ne: 'नेपाली',
};

const cache = new Map();
let current = FALLBACK;
let strings = {};
let fallback = {};
let switcher = null;

/**
 * One of LANGUAGES for a BCP 47 tag as browsers send it, or null. Browsers spell the same
 * reader differently: zh, zh-CN, zh-SG and zh-Hans-* read Simplified Chinese (zh-TW/HK/MO and
 * zh-Hant read Traditional, which this page does not have, so their next preference decides);
 * every Portuguese tag gets the Brazilian text; Filipino (fil) is standardised Tagalog.
 */
export function match(tag) {
  const parts = String(tag || '').trim().replace(/_/g, '-').toLowerCase().split('-');
  const [base, ...rest] = parts;
  if (!base) return null;
  if (base === 'zh') {
    if (rest.includes('hant') || rest.some((p) => ['tw', 'hk', 'mo'].includes(p))) return null;
    return 'zh-Hans';
  }
  if (base === 'pt') return 'pt-BR';
  if (base === 'fil') return 'tl';
  return LANGUAGES.find((lang) => lang.toLowerCase() === base) || null;
}

/** The language to start in: the browser's preferences in order, else English. */
export function preferredLanguage(list = navigator.languages || [navigator.language]) {
  for (const tag of list) {
    const lang = match(tag);
    if (lang) return lang;
  }
  return FALLBACK;
}

/**
 * The language the person chose earlier in this tab (?lang= in the address, which the switcher
 * writes and a support worker's link may carry), else the browser's preference. The address is
 * the one place to keep it: it is visible to the person and dies with the tab, whereas the page
 * writes no cookie or storage at all (docs/web.md, privacy).
 */
export function chosenLanguage(search = location.search, list = undefined) {
  const asked = new URLSearchParams(search).get('lang');
  const exact = asked && LANGUAGES.find((lang) => lang.toLowerCase() === asked.toLowerCase());
  return exact || (asked && match(asked)) || preferredLanguage(list);
}

/** Keep the person's choice in this tab's address, without a new history entry. */
function remember(lang) {
  const url = new URL(location.href);
  url.searchParams.set('lang', lang);
  history.replaceState(history.state, '', url);
}

async function fetchStrings(lang) {
  if (!cache.has(lang)) {
    const response = await fetch(`i18n/${lang}.json`, { credentials: 'omit', cache: 'no-store' });
    if (!response.ok) throw new Error(`i18n ${lang}: ${response.status}`);
    cache.set(lang, await response.json());
  }
  return cache.get(lang);
}

/** Load `lang` (and English under it). A translation that cannot load leaves the page English. */
export async function load(lang) {
  fallback = await fetchStrings(FALLBACK);
  let chosen = LANGUAGES.includes(lang) ? lang : FALLBACK;
  try {
    strings = await fetchStrings(chosen);
  } catch (error) {
    console.error(String(error));
    chosen = FALLBACK;
    strings = fallback;
  }
  current = chosen;
  if (switcher) switcher.value = chosen;
  return strings;
}

export function language() {
  return current;
}

function lookup(table, key) {
  return key.split('.').reduce((node, part) => (node == null ? undefined : node[part]), table);
}

/** Whether `key` is shown in English because the current translation lacks it. */
export function isFallback(key) {
  return current !== FALLBACK && lookup(strings, key) === undefined
    && lookup(fallback, key) !== undefined;
}

/** The value at a dotted key (a string, or a list/object for structured entries), English if
 * the translation lacks it; undefined only if English lacks it too. */
export function raw(key) {
  const value = lookup(strings, key);
  return value === undefined ? lookup(fallback, key) : value;
}

/** The string at `key` with {name} placeholders filled from `vars`. A key missing everywhere is a
 * bug the tests catch; the person sees nothing rather than "files.pick". */
export function t(key, vars = {}) {
  const value = raw(key);
  if (typeof value !== 'string') {
    console.error(`i18n: no text for ${key}`);
    return '';
  }
  return value.replace(/\{(\w+)\}/g, (match, name) => (name in vars ? String(vars[name]) : match));
}

function markLanguage(el, key) {
  if (isFallback(key)) el.setAttribute('lang', FALLBACK);
  else el.removeAttribute('lang');
}

/** Fill [data-i18n] (text) and [data-i18n-attr="attr:key,attr:key"] under `root`. */
export function apply(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
    markLanguage(el, el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(',')) {
      const [attr, key] = pair.split(':');
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

/** Fill the <select> of languages (each named in itself) and call `choose(lang)` on a change. */
export function initSwitcher(select, choose) {
  switcher = select;
  select.replaceChildren(...LANGUAGES.map((lang) => {
    const option = document.createElement('option');
    option.value = lang;
    option.lang = lang;
    option.textContent = NAMES[lang];
    return option;
  }));
  select.value = current;
  select.addEventListener('change', () => {
    remember(select.value);
    choose(select.value);
  });
}
