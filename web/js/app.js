// The self-submission page: pathway question, local hashing, submit, show the secret once,
// status and withdraw. State lives in this module's memory only: nothing is written to
// localStorage, IndexedDB, cookies or the URL, and the token is dropped when the person finishes.
import * as i18n from './i18n.js';
import { api, ApiProblem, randomKey } from './api.js';
import { hashFile, stopAll, WorkerFailed } from './hash-workers.js';
import { withVpdq } from './video-hashes.js';
import { mediaKind, pdqProblem } from './media.js';
import { addBatches, chunks, learnFromRefusal, useLimits } from './submit.js';
import { loadSupportConfig, telHref } from './support.js';

const $ = (id) => document.getElementById(id);

const state = {
  view: 'ask',
  support: null, // web/support.json, once loaded and valid
  pathway: null,
  files: [], // { id, file, kind, status: 'hashing'|'ready'|'error'|'skipped', progress, signals, problem, url }
  nextId: 1,
  idempotencyKey: null,
  sending: false,
  created: null, // { case_ref, token } until the person finishes
  adding: null, // { left: batches not yet in the case, sent, total, running, error } for `created`
};

// ---------------------------------------------------------------- views

function show(view) {
  state.view = view;
  for (const section of document.querySelectorAll('.view')) {
    section.hidden = section.id !== `view-${view}`;
  }
  // The crisis view lists the support services itself; no need to say it twice.
  document.querySelector('.support').hidden = view === 'crisis';
  const heading = document.querySelector(`#view-${view} h1`);
  if (heading) heading.focus();
  window.scrollTo(0, 0);
}

function leaveCaseForms() {
  for (const id of ['status', 'withdraw']) {
    $(`${id}-form`).reset();
    $(`${id}-result`).hidden = true;
    $(`${id}-result`).replaceChildren();
    setError(`${id}-error`, null);
  }
}

function go(view) {
  if (view === 'home' || view === 'pathway') leaveCaseForms();
  show(view);
}

function setError(id, message) {
  const el = $(id);
  el.textContent = message || '';
  el.hidden = !message;
}

function el(tag, props = {}, ...children) {
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

// ---------------------------------------------------------------- hashing

function hashInWorker(item) {
  const onProgress = (progress) => {
    item.progress = progress;
    renderFiles();
  };
  const video = item.kind === 'video';
  // A video's digests (worker), then its vPDQ frames (video-hashes.js): half the bar each.
  hashFile(item.id, item.kind, item.file, video ? (p) => onProgress(p / 2) : onProgress)
    .then((data) => (video && data.ok ? withVpdq(item, data, (p) => onProgress(0.5 + p / 2)) : data))
    .then((data) => {
    if (data.ok) {
      item.status = 'ready';
      item.signals = data.signals;
      item.ms = data.ms;
      item.stages = data.stages || null;
      if (item.kind === 'image') item.problem = pdqProblem(data.signals[0]);
    } else {
      item.status = 'error';
      item.problem = data.problem || 'unreadable';
    }
  }, (error) => {
    if (!(error instanceof WorkerFailed)) console.error(error);
    item.status = 'error';
    item.problem = 'worker_failed';
  }).finally(() => {
    if (state.files.includes(item)) renderFiles(); // a removed file's late answer changes nothing
  });
}

function addFiles(fileList) {
  for (const file of fileList) {
    const kind = mediaKind(file);
    const item = { id: state.nextId++, file, kind, status: 'hashing', progress: 0, signals: [], problem: null, url: null };
    if (!kind) {
      item.status = 'skipped';
      item.problem = 'not_media';
    } else {
      if (kind === 'image') item.url = URL.createObjectURL(file); // a local preview only
      hashInWorker(item);
    }
    state.files.push(item);
  }
  state.idempotencyKey = null; // a different request from now on
  setError('files-error', null); // a failed send's message no longer describes these files
  renderFiles();
}

function removeFile(id) {
  const index = state.files.findIndex((item) => item.id === id);
  if (index < 0) return;
  const [item] = state.files.splice(index, 1);
  if (item.url) URL.revokeObjectURL(item.url);
  state.idempotencyKey = null;
  renderFiles();
  $('file-input').focus();
}

function clearFiles() {
  for (const item of state.files) if (item.url) URL.revokeObjectURL(item.url);
  state.files = [];
  $('file-input').value = '';
  renderFiles();
}

/** The hashes to send: usable ones, each (type, value) once, in the order the files were added. */
function hashesToSend() {
  const seen = new Set();
  const out = [];
  for (const item of state.files) {
    if (item.status !== 'ready' || item.problem) continue;
    for (const signal of item.signals) {
      const key = `${signal.signal_type}:${signal.value}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(signal.signal_type === 'pdq'
        ? { signal_type: 'pdq', value: signal.value, quality: signal.quality }
        : { signal_type: signal.signal_type, value: signal.value });
    }
  }
  return out;
}

function duplicates() {
  const seen = new Set();
  const dup = new Set();
  for (const item of state.files) {
    if (item.status !== 'ready' || item.problem) continue;
    const key = item.signals.map((s) => `${s.signal_type}:${s.value}`).join('|');
    if (seen.has(key)) dup.add(item.id);
    seen.add(key);
  }
  return dup;
}

function renderFiles() {
  const list = $('file-list');
  const dup = duplicates();
  list.replaceChildren(...state.files.map((item) => {
    const name = item.file.name;
    const preview = item.url
      ? el('img', { src: item.url, alt: i18n.t('files.thumbnail', { name }), class: 'thumb' })
      : el('span', { class: 'thumb thumb-video', text: item.kind === 'video' ? i18n.t('files.video') : '?' });
    let status;
    if (item.status === 'hashing') {
      status = item.kind === 'video' && item.progress > 0
        ? i18n.t('files.hashing_progress', { percent: Math.floor(item.progress * 100) })
        : i18n.t('files.hashing');
    } else if (item.problem) {
      status = i18n.t(`files.${item.problem}`);
    } else if (dup.has(item.id)) {
      status = i18n.t('files.duplicate');
    } else {
      status = i18n.t('files.ready');
    }
    const hashes = item.status === 'ready'
      ? el('ul', { class: 'hashes' }, ...item.signals.map((signal) => el('li', {},
        el('span', { class: 'signal', text: i18n.t(`signal.${signal.signal_type}`) }),
        signal.quality != null ? el('span', { class: 'quality', text: ` ${i18n.t('files.quality', { quality: signal.quality })}` }) : null,
        el('code', { text: signal.value, 'data-signal': signal.signal_type }))))
      : null;
    const pdq = item.signals.find((signal) => signal.signal_type === 'pdq');
    return el('li', {
      class: `file ${item.problem ? 'file-problem' : ''}`,
      'data-file': name,
      'data-status': item.problem ? 'problem' : item.status,
      'data-problem': item.problem || '',
      'data-quality': pdq ? String(pdq.quality) : '',
      'data-ms': item.ms != null ? String(Math.round(item.ms)) : '',
      'data-stages': item.stages ? JSON.stringify(item.stages) : '',
      'data-vpdq-problem': item.vpdqProblem || '',
    },
    preview,
    el('div', { class: 'file-body' },
      el('p', { class: 'file-name', text: name }),
      el('p', { class: 'file-status', text: status }),
      item.vpdqProblem ? el('p', { class: 'file-note', text: i18n.t(`files.vpdq_${item.vpdqProblem}`) }) : null,
      hashes),
    el('button', {
      type: 'button',
      class: 'remove',
      text: '×',
      'aria-label': i18n.t('files.remove', { name }),
      onclick: () => removeFile(item.id),
    }));
  }));

  const busy = state.files.filter((item) => item.status === 'hashing').length;
  const hashes = hashesToSend();
  $('files-summary').textContent = state.files.length === 0
    ? i18n.t('files.summary_none')
    : busy > 0
      ? i18n.t('files.summary_busy', { files: state.files.length, busy })
      : i18n.t('files.summary', { files: state.files.length, hashes: hashes.length });
  $('send').disabled = state.sending || busy > 0 || hashes.length === 0;
  $('send').textContent = i18n.t(state.sending ? 'files.sending' : 'files.send');
  $('payload-details').hidden = hashes.length === 0;
  $('payload').textContent = JSON.stringify({ pathway: state.pathway, hashes }, null, 2);
}

// ---------------------------------------------------------------- API

function problemText(error) {
  const code = error instanceof ApiProblem ? error.code : 'network';
  const known = i18n.raw(`errors.${code}`);
  return typeof known === 'string' ? known : i18n.t('errors.generic', { code });
}

/**
 * Create the case with the first batch of hashes, show its reference and token at once (as the
 * CLI prints them before adding the rest: they must not be lost if a later request fails), then
 * add the other batches to it.
 */
async function send() {
  const hashes = hashesToSend();
  if (!hashes.length || state.sending) return;
  state.sending = true;
  setError('files-error', null);
  renderFiles();
  // One key per distinct request: a retry after a lost answer gets the same case, not a second one.
  state.idempotencyKey = state.idempotencyKey || randomKey();
  try {
    let created;
    let rest;
    for (;;) {
      const [first, ...others] = chunks(hashes);
      try {
        created = await api('POST', '/v1/cases', {
          body: { pathway: state.pathway, hashes: first },
          headers: { 'Idempotency-Key': state.idempotencyKey },
        });
        rest = others;
        break;
      } catch (error) {
        if (!learnFromRefusal(error, first)) throw error;
        state.idempotencyKey = randomKey(); // a smaller first batch is a different request
      }
    }
    state.created = { case_ref: created.case_ref, token: created.token };
    const sent = hashes.length - rest.flat().length;
    state.adding = rest.length
      ? { left: rest, sent, total: hashes.length, running: false, error: null }
      : null;
    state.idempotencyKey = null;
    clearFiles();
    $('done-ref').value = created.case_ref;
    $('done-token').value = created.token;
    $('done-copied').textContent = '';
    renderAdding();
    show('done');
  } catch (error) {
    setError('files-error', problemText(error));
  } finally {
    state.sending = false;
    if (state.view === 'files') renderFiles();
  }
  await addRemaining();
}

/** Add the batches the case does not hold yet (after send, and from the Try again button). */
async function addRemaining() {
  const created = state.created;
  const job = state.adding;
  if (!created || !job || job.running || !job.left.length) return;
  job.running = true;
  job.error = null;
  renderAdding();
  const onAdded = (count) => {
    job.sent += count;
    renderAdding();
  };
  const { left, error } = await addBatches(api, created.case_ref, created.token, job.left, onAdded);
  job.left = left;
  job.error = error;
  job.running = false;
  renderAdding();
}

function renderAdding() {
  const job = state.adding;
  const progress = $('done-added');
  if (!job) {
    progress.textContent = '';
  } else if (job.running) {
    progress.textContent = i18n.t('done.adding', { sent: job.sent, total: job.total });
  } else {
    progress.textContent = job.left.length ? '' : i18n.t('done.added', { total: job.total });
  }
  progress.hidden = !progress.textContent;
  progress.dataset.state = !job ? '' : job.running ? 'adding' : job.left.length ? 'failed' : 'added';
  const missing = job ? job.total - job.sent : 0;
  setError('done-add-error', job && job.error
    ? i18n.t('done.add_failed', { missing, total: job.total, reason: problemText(job.error) })
    : null);
  $('done-retry-row').hidden = !(job && job.error && !job.running);
}

// ---------------------------------------------------------------- the secret, once

async function copyField(id) {
  const input = $(id);
  let ok = false;
  try {
    await navigator.clipboard.writeText(input.value);
    ok = true;
  } catch {
    input.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  $('done-copied').textContent = i18n.t(ok ? 'done.copied' : 'done.copy_failed');
}

function saveAsFile() {
  if (!state.created) return;
  const text = i18n.t('done.file_text', {
    ref: state.created.case_ref,
    token: state.created.token,
    url: `${location.origin}${location.pathname}`,
  });
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
  const link = el('a', { href: url, download: i18n.t('done.file_name') });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function finish() {
  if (!window.confirm(i18n.t('done.confirm_finish'))) return;
  state.created = null;
  state.adding = null;
  renderAdding();
  $('done-ref').value = '';
  $('done-token').value = '';
  state.pathway = null;
  $('pathway-form').reset();
  show('home');
}

// ---------------------------------------------------------------- status and withdraw

function formValues(prefix) {
  const ref = $(`${prefix}-ref`).value.trim().toUpperCase();
  const token = $(`${prefix}-token`).value.trim();
  return { ref, token };
}

function renderCase(container, data) {
  const when = (iso) => new Date(iso).toLocaleString(i18n.language(), { dateStyle: 'medium', timeStyle: 'short' });
  const reportKeys = ['pulled', 'matched', 'removed', 'blocked', 'not_violating'];
  const rows = data.hashes.map((h) => {
    const reports = reportKeys.filter((k) => h.reports[k] > 0)
      .map((k) => `${i18n.t(`status.${k}`)}: ${h.reports[k]}`).join(', ');
    return el('tr', {},
      el('td', { text: i18n.t(`signal.${h.signal_type}`) }),
      el('td', {}, el('code', { text: h.value })),
      el('td', { text: reports || i18n.t('status.no_reports') }));
  });
  container.replaceChildren(
    el('dl', { class: 'facts' },
      el('dt', { text: i18n.t('common.case_ref') }), el('dd', { text: data.case_ref, 'data-field': 'case_ref' }),
      el('dt', { text: i18n.t('status.state') }),
      el('dd', { text: i18n.t(`status.state_${data.status}`), 'data-field': 'status', 'data-value': data.status }),
      el('dt', { text: i18n.t('status.pathway') }), el('dd', { text: i18n.t(`common.pathway_${data.pathway}`) }),
      el('dt', { text: i18n.t('status.created') }), el('dd', { text: when(data.created) }),
      el('dt', { text: i18n.t('status.updated') }), el('dd', { text: when(data.updated) })),
    data.hashes.length
      ? el('div', { class: 'table-wrap' }, el('table', {},
        el('caption', { text: i18n.t('status.hashes') }),
        el('thead', {}, el('tr', {},
          el('th', { scope: 'col', text: i18n.t('status.hash_type') }),
          el('th', { scope: 'col', text: i18n.t('status.hash_value') }),
          el('th', { scope: 'col', text: i18n.t('status.reports') }))),
        el('tbody', {}, ...rows)))
      : null,
  );
  container.hidden = false;
}

async function checkStatus(event) {
  event.preventDefault();
  const { ref, token } = formValues('status');
  setError('status-error', null);
  if (!ref || !token) {
    setError('status-error', i18n.t('errors.required'));
    return;
  }
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

async function withdraw(event) {
  event.preventDefault();
  const { ref, token } = formValues('withdraw');
  setError('withdraw-error', null);
  if (!ref || !token) {
    setError('withdraw-error', i18n.t('errors.required'));
    return;
  }
  if (!$('withdraw-confirm').checked) {
    setError('withdraw-error', i18n.t('withdraw.confirm_required'));
    return;
  }
  try {
    const data = await api('POST', `/v1/cases/${encodeURIComponent(ref)}/withdraw`, { token });
    const result = $('withdraw-result');
    renderCase(result, data);
    result.prepend(el('p', { class: 'success', text: i18n.t('withdraw.done', { ref: data.case_ref }) }));
    $('withdraw-token').value = '';
  } catch (error) {
    $('withdraw-result').hidden = true;
    setError('withdraw-error', problemText(error));
  }
}

// ---------------------------------------------------------------- language, support list

function supportItems(list) {
  return list.map((item) => el('li', {},
    el('span', { class: 'support-name', text: item.name }),
    item.number ? el('a', { class: 'support-number', href: telHref(item.number), text: item.number }) : null,
    item.note ? el('span', { class: 'support-note', text: item.note }) : null));
}

function renderSupport() {
  // A language without its own lines (support.json) shows the English ones.
  const locales = state.support ? state.support.locales : {};
  const entry = locales[i18n.language()] || locales.en;
  const items = entry ? entry.items : [];
  $('support-list').replaceChildren(...supportItems(items));
  $('crisis-support-list').replaceChildren(...supportItems(items));
  $('support-note').textContent = entry && entry.note ? entry.note : '';
  $('support-note').hidden = !$('support-note').textContent;
  setError('support-error', state.support ? null : i18n.t('support.config_error'));
}

// ---------------------------------------------------------------- quick exit

/** Leave at once: forget everything, and replace this page in the history (Back skips it). */
function quickExit() {
  state.created = null;
  state.adding = null;
  for (const item of state.files) if (item.url) URL.revokeObjectURL(item.url);
  state.files = [];
  stopAll();
  document.body.replaceChildren();
  const target = (state.support && state.support.quick_exit_url) || 'about:blank';
  window.location.replace(target);
}

async function setLanguage(lang) {
  await i18n.load(lang);
  document.documentElement.lang = i18n.language();
  document.title = i18n.t('app.title');
  i18n.apply();
  renderSupport();
  renderFiles();
  renderAdding();
  // Re-render a shown case so its labels follow the language.
  if (state.view === 'status' && !$('status-result').hidden) $('status-form').requestSubmit();
}

// ---------------------------------------------------------------- wiring

function wire() {
  document.addEventListener('click', (event) => {
    const target = event.target.closest('[data-go]');
    if (target) go(target.dataset.go);
    const copy = event.target.closest('[data-copy]');
    if (copy) copyField(copy.dataset.copy);
  });

  $('pathway-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = new FormData(event.target).get('pathway');
    if (!chosen) {
      setError('pathway-error', i18n.t('pathway.required'));
      return;
    }
    setError('pathway-error', null);
    if (state.pathway !== chosen) state.idempotencyKey = null;
    state.pathway = chosen;
    renderFiles();
    show('files');
  });

  $('file-input').addEventListener('change', (event) => {
    addFiles(event.target.files);
    event.target.value = ''; // the same file can be picked again after removing it
  });
  const zone = $('dropzone');
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add('dragging');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    zone.addEventListener(type, () => zone.classList.remove('dragging'));
  }
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
  });
  // A file dropped outside the zone must not make the browser navigate away to it.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());

  $('quick-exit').addEventListener('click', quickExit);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') quickExit();
  });

  $('send').addEventListener('click', send);
  $('save-file').addEventListener('click', saveAsFile);
  $('done-retry').addEventListener('click', addRemaining);
  $('done-finish').addEventListener('click', finish);
  $('status-form').addEventListener('submit', checkStatus);
  $('withdraw-form').addEventListener('submit', withdraw);
}

async function start() {
  wire();
  try {
    state.support = await loadSupportConfig();
  } catch (error) {
    console.error(String(error)); // the operator's mistake, spelled out; the page says it plainly
    state.support = null;
  }
  // Not awaited: the first view never waits for it, and until it answers the default holds.
  api('GET', '/v1/limits').then(useLimits, () => {});
  i18n.initSwitcher($('language-select'), setLanguage);
  await setLanguage(i18n.chosenLanguage());
  // Deep links (#status, #withdraw) are read once; views never add history entries. Everyone
  // else first meets the one question: is someone threatening you right now?
  const initial = location.hash.replace('#', '');
  show(['status', 'withdraw'].includes(initial) ? initial : 'ask');
  document.body.dataset.ready = 'true';
}

start();
