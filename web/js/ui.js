// Small DOM helpers shared by the page's views: element lookup and creation, error lines, the
// readable text of an API failure, and times in the person's own time zone.
import * as i18n from './i18n.js';
import { ApiProblem } from './api.js';

export const $ = (id) => document.getElementById(id);

/** An element; `null`/`undefined` children are left out (appending one would print "null"). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'role') node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

/** `replaceChildren` without the nulls of optional parts. */
export function fill(container, ...children) {
  container.replaceChildren(...children.filter((child) => child != null));
}

export function setError(id, message) {
  const node = $(id);
  node.textContent = message || '';
  node.hidden = !message;
}

export function problemText(error) {
  const code = error instanceof ApiProblem ? error.code : 'network';
  const known = i18n.raw(`errors.${code}`);
  return typeof known === 'string' ? known : i18n.t('errors.generic', { code });
}

/** An API time (ISO 8601 with Z) in the browser's own time zone; '' if there is none. */
export function localTime(iso) {
  const date = typeof iso === 'string' ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(i18n.language(), { dateStyle: 'medium', timeStyle: 'short' });
}

/** A hash value as the person can read it: vPDQ (one line per second of video) as its count. */
export function shownValue(signal) {
  if (signal.signal_type === 'vpdq') {
    let frames = 0;
    try {
      frames = JSON.parse(signal.value).length;
    } catch {
      frames = 0;
    }
    return i18n.t('files.vpdq_frames', { frames });
  }
  return signal.value;
}
