// The support lines on the page: the service's country (or countries) in the page's language,
// then what to do anywhere else (support.js reads and checks the operator's file).
import * as i18n from './i18n.js';
import { supportSections, telHref } from './support.js';
import { $, el, setError } from './ui.js';

/** The lines of the service's country (or countries) in the page's language, then what to do
 * anywhere else: they follow where the person is, not the language they read. */
function supportItems(sections) {
  const items = [];
  for (const section of sections) {
    if (section.country) {
      items.push(el('li', { class: 'support-where', text: i18n.t('support.in_country', { country: section.country }) }));
    }
    for (const line of section.lines) {
      items.push(el('li', {},
        el('span', { class: 'support-name', text: line.label }),
        line.number ? el('a', { class: 'support-number', href: telHref(line.number), text: line.number }) : null,
        line.description ? el('span', { class: 'support-note', text: line.description }) : null));
    }
  }
  items.push(el('li', { class: 'support-elsewhere' },
    el('span', { class: 'support-name', text: i18n.t('support.elsewhere_title') }),
    el('span', { class: 'support-note', text: i18n.t('support.elsewhere') })));
  return items;
}

export function renderSupport(config) {
  const sections = supportSections(config, i18n.language());
  $('support-list').replaceChildren(...supportItems(sections));
  $('crisis-support-list').replaceChildren(...supportItems(sections));
  const note = sections.map((section) => section.note).filter(Boolean).join(' ');
  $('support-note').textContent = note;
  $('support-note').hidden = !note;
  setError('support-error', config ? null : i18n.t('support.config_error'));
}

