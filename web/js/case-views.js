// The views that open an existing case with its reference and token: status, withdraw, and the
// first step of adding files to a case. The token is read from the form, normalised (token.js),
// sent, and not kept beyond what the view needs.
import * as i18n from './i18n.js';
import { api } from './api.js';
import { normalizeToken } from './token.js';
import { $, el, fill, localTime, problemText, setError, shownValue } from './ui.js';

export function formValues(prefix) {
  const ref = $(`${prefix}-ref`).value.trim().toUpperCase();
  const token = normalizeToken($(`${prefix}-token`).value);
  return { ref, token };
}

function hashRows(data) {
  const reportKeys = ['pulled', 'matched', 'removed', 'blocked', 'not_violating'];
  return data.hashes.map((h) => {
    const reports = reportKeys.filter((k) => h.reports[k] > 0)
      .map((k) => `${i18n.t(`status.${k}`)}: ${h.reports[k]}`).join(', ');
    return el('tr', {},
      el('td', { text: i18n.t(`signal.${h.signal_type}`) }),
      el('td', {}, el('code', { text: shownValue(h), 'data-value': h.value })),
      el('td', { text: reports || i18n.t('status.no_reports') }));
  });
}

export function renderCase(container, data) {
  const facts = [
    ['common.case_ref', data.case_ref, { 'data-field': 'case_ref' }],
    ['status.state', i18n.t(`status.state_${data.status}`), { 'data-field': 'status', 'data-value': data.status }],
    ['status.pathway', i18n.t(`common.pathway_${data.pathway}`), {}],
    ['status.created', localTime(data.created), { 'data-field': 'created', 'data-value': data.created || '' }],
    ['status.updated', localTime(data.updated), { 'data-field': 'updated', 'data-value': data.updated || '' }],
  ].filter(([, value]) => value);
  fill(container,
    el('dl', { class: 'facts' }, ...facts.flatMap(([label, value, attrs]) => [
      el('dt', { text: i18n.t(label) }), el('dd', { text: value, ...attrs })])),
    data.hashes.length
      ? el('div', { class: 'table-wrap' }, el('table', {},
        el('caption', { text: i18n.t('status.hashes') }),
        el('thead', {}, el('tr', {},
          el('th', { scope: 'col', text: i18n.t('status.hash_type') }),
          el('th', { scope: 'col', text: i18n.t('status.hash_value') }),
          el('th', { scope: 'col', text: i18n.t('status.reports') }))),
        el('tbody', {}, ...hashRows(data))))
      : el('p', { class: 'help', text: i18n.t(`status.no_hashes_${data.status}`) }));
  container.hidden = false;
}

/** Check both fields are there; the error line says what is missing. */
function ready(prefix, values) {
  setError(`${prefix}-error`, null);
  if (!values.ref || !values.token) {
    setError(`${prefix}-error`, i18n.t('errors.required'));
    return false;
  }
  return true;
}

export async function checkStatus(event, { show }) {
  event.preventDefault();
  const values = formValues('status');
  if (!ready('status', values)) return;
  const { ref, token } = values;
  try {
    const data = await api('GET', `/v1/cases/${encodeURIComponent(ref)}`, { token });
    renderCase($('status-result'), data);
    if (data.status === 'active') {
      $('status-result').append(el('div', { class: 'actions' }, el('button', {
        type: 'button',
        text: i18n.t('status.withdraw_link'),
        onclick: () => {
          $('withdraw-ref').value = ref;
          $('withdraw-token').value = token;
          $('status-form').reset();
          $('status-result').hidden = true;
          show('withdraw');
        },
      })));
    }
  } catch (error) {
    $('status-result').hidden = true;
    setError('status-error', problemText(error));
  }
}

export async function withdraw(event) {
  event.preventDefault();
  const values = formValues('withdraw');
  if (!ready('withdraw', values)) return;
  if (!$('withdraw-confirm').checked) {
    setError('withdraw-error', i18n.t('withdraw.confirm_required'));
    return;
  }
  try {
    const data = await api('POST', `/v1/cases/${encodeURIComponent(values.ref)}/withdraw`, { token: values.token });
    const result = $('withdraw-result');
    renderCase(result, data);
    result.prepend(el('p', { class: 'success', text: i18n.t('withdraw.done', { ref: data.case_ref }) }));
    $('withdraw-token').value = '';
  } catch (error) {
    $('withdraw-result').hidden = true;
    setError('withdraw-error', problemText(error));
  }
}

/** Adding files, step 1: the case must open with this token and still be active. Resolves to
 * { ref, token, pathway } or null (the error line says why). */
export async function openCaseToAdd(event) {
  event.preventDefault();
  const values = formValues('add');
  if (!ready('add', values)) return null;
  try {
    const data = await api('GET', `/v1/cases/${encodeURIComponent(values.ref)}`, { token: values.token });
    if (data.status !== 'active') {
      setError('add-error', i18n.t('errors.case_withdrawn'));
      return null;
    }
    return { ref: data.case_ref, token: values.token, pathway: data.pathway, count: data.hashes.length };
  } catch (error) {
    setError('add-error', problemText(error));
    return null;
  }
}
