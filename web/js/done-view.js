// The case's reference and secret token, shown once: the token whole in its box, copy, and a
// text file with a neutral name. Nothing here is stored anywhere but in the page's memory.
import * as i18n from './i18n.js';
import { tokenPieces } from './token.js';
import { $, el, fill } from './ui.js';

/** The token whole, in monospace, wrapping only between its groups on a narrow screen. */
export function showToken(token) {
  $('done-token').value = token;
  fill($('done-token-text'), ...(token ? tokenPieces(token).map((piece) => el('span', { text: piece })) : []));
}

/** A neutral name for the saved file: nothing in a phone's downloads says what it is about. */
function noteFileName() {
  const now = new Date();
  const date = [now.getFullYear(), now.getMonth() + 1, now.getDate()]
    .map((n) => String(n).padStart(2, '0')).join('-');
  return i18n.t('done.file_name', { date });
}

export async function copyField(id) {
  const input = $(id);
  let ok = false;
  try {
    await navigator.clipboard.writeText(input.value);
    ok = true;
  } catch {
    // Without clipboard access: select the text (the token's shown block), so copy works by hand.
    const shown = input.type === 'hidden' ? $(`${id}-text`) : null;
    if (shown) window.getSelection().selectAllChildren(shown);
    else input.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  $('done-copied').textContent = i18n.t(ok ? 'done.copied' : 'done.copy_failed');
}

export function saveAsFile(created) {
  if (!created) return;
  const text = i18n.t('done.file_text', {
    ref: created.case_ref,
    token: created.token,
    url: `${location.origin}${location.pathname}`,
  });
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
  const link = el('a', { href: url, download: noteFileName() });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

