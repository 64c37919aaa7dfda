// The self-submission page: pathway question, local hashing, submit, show the secret once,
// status and withdraw. State lives in this module's memory only: nothing is written to
// localStorage, IndexedDB, cookies or the URL, and the token is dropped when the person finishes.
import * as i18n from './i18n.js';
import { api, randomKey } from './api.js';
import { hashFile, stopAll, WorkerFailed } from './hash-workers.js';
import { withVpdq } from './video-hashes.js';
import { mediaKind, pdqProblem } from './media.js';
import { addBatches, chunks, learnFromRefusal, useLimits } from './submit.js';
import { loadSupportConfig } from './support.js';
import { renderSupport } from './support-view.js';
import { copyField, saveAsFile, showToken } from './done-view.js';
import { checkStatus, openCaseToAdd, withdraw } from './case-views.js';
import { $, el, problemText, setError, shownValue } from './ui.js';

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
  target: null, // { ref, token, pathway, count } while adding files to an existing case
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
  state.target = null; // the token of the case being added to is dropped with its form
  for (const id of ['status', 'withdraw', 'add']) {
    $(`${id}-form`).reset();
    if ($(`${id}-result`)) {
      $(`${id}-result`).hidden = true;
      $(`${id}-result`).replaceChildren();
    }
    setError(`${id}-error`, null);
  }
}

function go(view) {
  if (view === 'home' || view === 'pathway') leaveCaseForms();
  if (view === 'files-back') view = state.target ? 'add' : 'pathway';
  show(view);
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
        el('code', { text: shownValue(signal), 'data-signal': signal.signal_type, 'data-value': signal.value }))))
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

  // The browser's own picker text says "No file chosen" once it is cleared for the next pick.
  $('file-count').textContent = state.files.length
    ? i18n.t('files.picked', { files: state.files.length })
    : i18n.t('files.summary_none');
  $('files-target').textContent = state.target ? i18n.t('add.target', { ref: state.target.ref }) : '';
  $('files-target').hidden = !state.target;

  const busy = state.files.filter((item) => item.status === 'hashing').length;
  const hashes = hashesToSend();
  $('files-summary').textContent = state.files.length === 0
    ? i18n.t('files.summary_none')
    : busy > 0
      ? i18n.t('files.summary_busy', { files: state.files.length, busy })
      : i18n.t('files.summary', { files: state.files.length, hashes: hashes.length });
  $('send').disabled = state.sending || busy > 0 || hashes.length === 0;
  $('send').textContent = i18n.t(state.sending ? 'files.sending' : state.target ? 'add.send' : 'files.send');
  $('payload-details').hidden = hashes.length === 0;
  $('payload').textContent = JSON.stringify(state.target ? { hashes } : { pathway: state.pathway, hashes }, null, 2);
}

// ---------------------------------------------------------------- API

/**
 * Create the case with the first batch of hashes, show its reference and token at once (as the
 * CLI prints them before adding the rest: they must not be lost if a later request fails), then
 * add the other batches to it.
 */
async function send() {
  if (state.target) {
    await sendToCase();
    return;
  }
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
    showToken(created.token);
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

/** Adding files to an existing case: the hashes go to POST /v1/cases/{ref}/hashes in batches.
 * A failure keeps the files, so the same press sends again (a hash the case has is not doubled). */
async function sendToCase() {
  const target = state.target;
  const hashes = hashesToSend();
  if (!target || !hashes.length || state.sending) return;
  state.sending = true;
  setError('files-error', null);
  renderFiles();
  let added = 0;
  const { error } = await addBatches(api, target.ref, target.token, chunks(hashes), (n) => { added += n; });
  state.sending = false;
  if (error) {
    setError('files-error', i18n.t('add.failed', { missing: hashes.length - added, total: hashes.length, reason: problemText(error) }));
    renderFiles();
    return;
  }
  state.target = null; // done with this case: its token is dropped
  clearFiles();
  $('added-message').textContent = i18n.t('add.done', { sent: hashes.length, ref: target.ref });
  show('added');
}

async function startAdding(event) {
  const target = await openCaseToAdd(event);
  if (!target) return;
  $('add-form').reset();
  state.target = target;
  state.pathway = target.pathway;
  clearFiles();
  show('files');
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
function finish() {
  if (!window.confirm(i18n.t('done.confirm_finish'))) return;
  state.created = null;
  state.adding = null;
  renderAdding();
  $('done-ref').value = '';
  showToken('');
  state.pathway = null;
  $('pathway-form').reset();
  show('home');
}

// ---------------------------------------------------------------- language, support list
// ---------------------------------------------------------------- quick exit

/** Leave at once: forget everything, and replace this page in the history (Back skips it). */
function quickExit() {
  state.created = null;
  state.adding = null;
  state.target = null;
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
  renderSupport(state.support);
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
  $('save-file').addEventListener('click', () => saveAsFile(state.created));
  $('done-retry').addEventListener('click', addRemaining);
  $('done-finish').addEventListener('click', finish);
  $('status-form').addEventListener('submit', (event) => checkStatus(event, { show }));
  $('withdraw-form').addEventListener('submit', withdraw);
  $('add-form').addEventListener('submit', startAdding);
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
  show(['status', 'withdraw', 'add'].includes(initial) ? initial : 'ask');
  document.body.dataset.ready = 'true';
}

start();
