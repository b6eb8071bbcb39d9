// The prescriber console: screens, routing (the URL fragment names the screen: #signin, #key,
// #issue, #print/ID, #practice, #detail/ID) and the forms. The service decides every rule; the
// console shows its answers, and its problem+json errors beside the fields they name.

import { Problem, bearer, call, claimsOf, json, setBearer } from './api.js';
import * as keys from './keys.js';
import { nhsNumberProblem } from './nhs.js';

const API = '/api/v1';
const SCREENS = ['signin', 'key', 'issue', 'print', 'practice', 'detail'];
const RECENT_KEY = 'prescrypt.recent';
const $ = (id) => document.getElementById(id);

const state = {
  claims: null,
  key: undefined,
  codes: { treatment_types: [], cancel_reasons: [], statuses: [] },
  objectUrls: [],
  // The practice list's filters as last searched, and the service's cursor to its next page.
  search: { query: null, cursor: null, asked: 0 },
};
const SEARCH_PAGE = 25;

// ---- messages -----------------------------------------------------------------------------

function messageOf(error) {
  if (error instanceof Problem && error.status === 401) {
    return 'The service refused your sign-in (expired or not trusted). Sign in again.';
  }
  return error.message || String(error);
}

/** Says something in the live region (screen readers announce it). */
function announce(text, isError = false) {
  const status = $('status');
  status.classList.toggle('error', isError);
  status.textContent = text;
}

function clearErrors(scope) {
  for (const element of scope.querySelectorAll('.field-error')) {
    element.textContent = '';
    element.classList.remove('ok');
  }
  for (const element of scope.querySelectorAll('[aria-invalid]')) element.removeAttribute('aria-invalid');
}

/** Shows `message` beside the control whose data-field is `field`; false when there is none. */
function showFieldError(scope, field, message) {
  const slot = scope.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
  if (!slot) return false;
  slot.classList.remove('ok');
  slot.textContent = message;
  const control = scope.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (control) control.setAttribute('aria-invalid', 'true');
  return true;
}

function focusField(scope, field) {
  const control = scope.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (control) control.focus();
}

// ---- routing ------------------------------------------------------------------------------

async function route() {
  const [name, arg] = location.hash.slice(1).split('/');
  let screen = SCREENS.includes(name) ? name : state.claims ? 'issue' : 'signin';
  if (!state.claims) screen = 'signin';
  for (const each of SCREENS) $(`screen-${each}`).hidden = each !== screen;
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === screen) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${$(`h-${screen}`).textContent.trim()} — Prescrypt prescriber console`;
  $(`h-${screen}`).focus();
  try {
    // decodeURIComponent throws on a malformed address; that is announced like any failure.
    await RENDER[screen](arg === undefined ? undefined : decodeURIComponent(arg));
  } catch (error) {
    announce(messageOf(error), true);
  }
}

/** Shows the screen `hash` names (also when the address already says it). */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

const RENDER = {
  signin: renderSignin,
  key: renderKey,
  issue: async () => {},
  print: renderPrint,
  practice: renderPractice,
  detail: renderDetail,
};

// ---- sign in ------------------------------------------------------------------------------

function renderSignin() {
  const claims = state.claims;
  $('signin-form').hidden = Boolean(claims);
  $('signed-in').hidden = !claims;
  $('who').textContent = claims
    ? `Signed in: ${claims.sub} (${claims.role}), organisation ${claims.org}`
    : 'Not signed in';
  if (claims) {
    $('me-sub').textContent = claims.sub;
    $('me-role').textContent = claims.role;
    $('me-org').textContent = claims.org;
    $('me-exp').textContent = claims.exp ? new Date(claims.exp * 1000).toLocaleString('en-GB') : '—';
  }
}

async function signIn(event) {
  event.preventDefault();
  const form = $('signin-form');
  clearErrors(form);
  const token = $('token').value.trim();
  let claims;
  try {
    if (!token) throw new Error('Paste a bearer token');
    claims = claimsOf(token);
    if (claims.exp && claims.exp * 1000 < Date.now()) throw new Error('This token has expired');
  } catch (error) {
    showFieldError(form, 'token', error.message);
    $('token').focus();
    announce(`Not signed in: ${error.message}.`, true);
    return;
  }
  setBearer(token);
  try {
    // Any authenticated call proves the service accepts the token; this one also tells whether
    // this browser's key is enrolled.
    await call('GET', `${API}/prescriber-keys.json`);
  } catch (error) {
    setBearer(null);
    const message = error instanceof Problem && error.status === 401
      ? `The service refused this token: ${error.message}` : messageOf(error);
    showFieldError(form, 'token', message);
    $('token').focus();
    announce(`Not signed in: ${message}`, true);
    return;
  }
  state.claims = claims;
  $('token').value = '';
  await loadKey();
  renderSignin();
  announce(`Signed in as ${claims.sub} (${claims.role}) for organisation ${claims.org}.`);
  go(state.key && state.key.kid ? '#issue' : '#key');
}

function signOut() {
  setBearer(null);
  state.claims = null;
  state.key = undefined;
  sessionStorage.removeItem(RECENT_KEY);
  renderSignin();
  announce('Signed out.');
  go('#signin');
}

// ---- signing key --------------------------------------------------------------------------

async function loadKey() {
  state.key = keys.available() && state.claims ? await keys.load(state.claims) : undefined;
}

async function renderKey() {
  $('key-error').textContent = '';
  let enrolled = null;
  if (state.key && state.key.kid) {
    const set = await json('GET', `${API}/prescriber-keys.json`);
    enrolled = set.keys.find((key) => key.kid === state.key.kid) || null;
  }
  showKey(enrolled);
}

function showKey(enrolled) {
  const key = state.key;
  const revoked = enrolled && enrolled.revoked_at;
  let text = 'No key in this browser';
  if (!keys.available()) text = 'Unavailable: this page is not in a secure context';
  else if (key && revoked) text = `Revoked ${new Date(enrolled.revoked_at).toLocaleString('en-GB')}`;
  else if (key && key.kid && enrolled) text = 'Enrolled: prescriptions are signed with it';
  else if (key && key.kid) text = 'Not known to the service: create and enrol a new key';
  else if (key) text = 'Created in this browser, not yet enrolled';
  $('key-state').textContent = text;
  $('key-kid').textContent = key && key.kid ? key.kid : '—';
  $('key-created').textContent = enrolled ? new Date(enrolled.created_at).toLocaleString('en-GB') : '—';
  const usable = Boolean(key && key.kid && enrolled && !revoked);
  $('key-enrol').disabled = !keys.available() || usable;
  $('key-revoke').disabled = !usable;
}

async function enrol() {
  $('key-error').textContent = '';
  try {
    let record = state.key;
    if (!record || record.kid) {
      // A key the service no longer has (revoked, or never enrolled there) is replaced.
      record = await keys.generate();
      await keys.save(state.claims, record);
    }
    const enrolled = await json('POST', `${API}/prescriber-keys`, { body: { jwk: record.jwk } });
    record.kid = enrolled.kid;
    record.created_at = enrolled.created_at;
    await keys.save(state.claims, record);
    state.key = record;
    showKey(enrolled);
    announce(`Signing key enrolled. Key ID ${enrolled.kid}.`);
  } catch (error) {
    $('key-error').textContent = messageOf(error);
    announce(`The key was not enrolled: ${messageOf(error)}`, true);
  }
}

async function revoke() {
  $('key-error').textContent = '';
  const kid = state.key && state.key.kid;
  if (!kid) return;
  try {
    const revoked = await json('DELETE', `${API}/prescriber-keys/${encodeURIComponent(kid)}`);
    await keys.forget(state.claims);
    state.key = undefined;
    showKey(null);
    announce(`Key ${revoked.kid} revoked. Create and enrol a new key to sign again.`);
    $('key-enrol').focus();
  } catch (error) {
    $('key-error').textContent = messageOf(error);
    announce(`The key was not revoked: ${messageOf(error)}`, true);
  }
}

// ---- issue --------------------------------------------------------------------------------

const ITEM_FIELDS = ['code', 'display', 'quantity', 'unit', 'dosage'];

function addItem() {
  const fragment = $('item-template').content.cloneNode(true);
  const fieldset = fragment.querySelector('.item');
  fieldset.querySelector('.remove-item').addEventListener('click', () => {
    const list = $('items');
    const index = [...list.children].indexOf(fieldset);
    fieldset.remove();
    numberItems();
    const next = list.children[Math.min(index, list.children.length - 1)];
    (next ? next.querySelector('input') : $('add-item')).focus();
    announce(`Item ${index + 1} removed.`);
  });
  $('items').append(fragment);
  numberItems();
  return fieldset;
}

/** Gives every item's controls their ids, labels and API field names (`items[i].code`). */
function numberItems() {
  const items = [...$('items').children];
  items.forEach((fieldset, i) => {
    for (const number of fieldset.querySelectorAll('.item-number')) number.textContent = String(i + 1);
    for (const name of ITEM_FIELDS) {
      const id = `item-${i + 1}-${name}`;
      const input = fieldset.querySelector(`[data-name="${name}"]`);
      const label = fieldset.querySelector(`[data-for="${name}"]`);
      const error = fieldset.querySelector(`[data-error="${name}"]`);
      input.id = id;
      label.htmlFor = id;
      error.id = `${id}-error`;
      input.dataset.field = `items[${i}].${name}`;
      error.dataset.errorFor = `items[${i}].${name}`;
      input.setAttribute('aria-describedby', error.id);
    }
    fieldset.querySelector('.remove-item').disabled = items.length === 1;
  });
}

/** The NHS number checked as it is typed: an error once ten digits are in, or on leaving. */
function checkNhsNumber(final) {
  const input = $('nhs_number');
  const slot = $('nhs_number-error');
  const text = input.value.trim();
  const digits = text.replace(/\D/g, '').length;
  const problem = text ? nhsNumberProblem(text) : null;
  if (problem && (final || digits >= 10)) {
    slot.classList.remove('ok');
    slot.textContent = `Check the NHS number: ${problem}.`;
    input.setAttribute('aria-invalid', 'true');
  } else if (!problem && text) {
    slot.classList.add('ok');
    slot.textContent = 'Valid NHS number.';
    input.removeAttribute('aria-invalid');
  } else {
    slot.classList.remove('ok');
    slot.textContent = '';
    input.removeAttribute('aria-invalid');
  }
  return problem;
}

function issueBody() {
  const value = (id) => $(id).value.trim();
  const body = {
    patient: {
      nhs_number: value('nhs_number'),
      name: value('patient_name'),
      birth_date: value('birth_date'),
    },
    items: [...$('items').children].map((fieldset) => {
      const item = {};
      for (const name of ITEM_FIELDS) item[name] = fieldset.querySelector(`[data-name="${name}"]`).value.trim();
      return item;
    }),
    treatment_type: value('treatment_type'),
  };
  if (value('nominated_pharmacy')) body.nominated_pharmacy = value('nominated_pharmacy').toUpperCase();
  if (body.treatment_type !== '0001') body.issue_count = Number(value('issue_count'));
  if (value('controlled_drug_schedule')) body.controlled_drug_schedule = Number(value('controlled_drug_schedule'));
  return body;
}

function showSummary(message) {
  const summary = $('issue-summary');
  summary.textContent = message;
  summary.hidden = false;
}

async function issue(event) {
  event.preventDefault();
  const form = $('issue-form');
  clearErrors(form);
  $('issue-summary').hidden = true;
  if (checkNhsNumber(true)) {
    showSummary('The prescription was not issued: check the NHS number.');
    announce('The prescription was not issued: check the NHS number.', true);
    $('nhs_number').focus();
    return;
  }
  if (!keys.available() || !state.key || !state.key.kid) {
    showSummary('Enrol a signing key first (Signing key screen).');
    announce('The prescription was not issued: no enrolled signing key in this browser.', true);
    return;
  }
  const button = $('issue-submit');
  button.disabled = true;
  announce('Preparing the prescription…');
  try {
    const prepared = await json('POST', `${API}/prescriptions/prepare`, {
      body: { ...issueBody(), kid: state.key.kid },
    });
    announce('Signing in this browser…');
    const signature = await keys.sign(state.key.privateKey, prepared.signing_input);
    const view = await json('POST', `${API}/prescriptions`, {
      body: { prepared_id: prepared.prepared_id, signature },
    });
    remember(view);
    resetIssueForm();
    announce(`Prescription ${view.id} issued and signed.`);
    go(`#print/${view.id}`);
  } catch (error) {
    const message = messageOf(error);
    const placed = error instanceof Problem && error.field && showFieldError(form, error.field, message);
    showSummary(`The prescription was not issued: ${message}`);
    announce(`The prescription was not issued: ${message}`, true);
    if (placed) focusField(form, error.field);
  } finally {
    button.disabled = false;
  }
}

function resetIssueForm() {
  $('issue-form').reset();
  $('items').replaceChildren();
  addItem();
  showIssueCount();
  clearErrors($('issue-form'));
}

function showIssueCount() {
  $('issue-count-field').hidden = $('treatment_type').value === '0001';
}

// ---- print --------------------------------------------------------------------------------

function objectUrl(blob) {
  const url = URL.createObjectURL(blob);
  state.objectUrls.push(url);
  return url;
}

async function renderPrint(id) {
  if (!id) {
    location.hash = '#practice';
    return;
  }
  for (const url of state.objectUrls.splice(0)) URL.revokeObjectURL(url);
  const path = `${API}/prescriptions/${encodeURIComponent(id)}`;
  $('print-id').textContent = id;
  $('print-detail').href = `#detail/${encodeURIComponent(id)}`;
  $('print-patient').textContent = '…';
  const preview = $('print-preview');
  preview.alt = '';
  preview.removeAttribute('src');
  $('print-sheet').removeAttribute('src');
  const [view, png, pdf] = await Promise.all([
    json('GET', path),
    call('GET', `${path}/token.png?dpi=300`).then((r) => r.blob()),
    call('GET', `${path}/token.pdf`).then((r) => r.blob()),
  ]);
  $('print-patient').textContent = `${view.patient.name} (NHS number ${view.patient.nhs_number})`;
  preview.src = objectUrl(png);
  preview.alt = `Dispensing token of prescription ${id}: its ID as a Code 128 barcode and the signed prescription as a Data Matrix`;
  const pdfUrl = objectUrl(new Blob([pdf], { type: 'application/pdf' }));
  $('print-download').href = pdfUrl;
  $('print-download').download = `token-${id}.pdf`;
  $('print-open').dataset.url = pdfUrl;
  $('print-sheet').src = pdfUrl;
  announce(`Token of ${id} ready to print.`);
}

// ---- practice and detail ------------------------------------------------------------------

function recentList() {
  try {
    return JSON.parse(sessionStorage.getItem(RECENT_KEY) || '[]');
  } catch {
    return [];
  }
}

function remember(view) {
  const list = recentList().filter((entry) => entry.id !== view.id);
  list.unshift({ id: view.id, patient: view.patient.name, created_at: view.created_at });
  sessionStorage.setItem(RECENT_KEY, JSON.stringify(list.slice(0, 50)));
}

function renderRecent() {
  const list = $('recent');
  list.replaceChildren();
  for (const entry of recentList()) {
    const item = document.createElement('li');
    const link = document.createElement('a');
    link.href = `#detail/${encodeURIComponent(entry.id)}`;
    link.textContent = `${entry.id} — ${entry.patient}`;
    item.append(link);
    list.append(item);
  }
  if (!list.children.length) {
    const item = document.createElement('li');
    item.textContent = 'None yet.';
    list.append(item);
  }
}

/** Shows the list afresh with the filters in the form (statuses change: never a stale list). */
async function renderPractice() {
  renderRecent();
  await search({ more: false, quiet: true });
}

/** The filters in the form as the search's query parameters (the service checks them). */
function searchFilters() {
  const filters = new URLSearchParams();
  for (const [name, id] of [['status', 'search-status'], ['from', 'search-from'], ['to', 'search-to'], ['nhs_number', 'search-nhs']]) {
    const value = $(id).value.trim();
    if (value) filters.set(name, value);
  }
  return filters;
}

function describeFilters(filters) {
  const parts = [];
  const status = filters.get('status');
  if (status) {
    const coded = state.codes.statuses.find((entry) => entry.code === status);
    parts.push(`status ${coded ? coded.display : status}`);
  }
  if (filters.get('from')) parts.push(`issued on or after ${filters.get('from')}`);
  if (filters.get('to')) parts.push(`issued on or before ${filters.get('to')}`);
  if (filters.get('nhs_number')) parts.push(`NHS number ${filters.get('nhs_number')}`);
  return parts.length ? `Prescriptions with ${parts.join(', ')}, newest first` : 'Prescriptions, newest first';
}

function resultRow(view) {
  const row = document.createElement('tr');
  row.dataset.id = view.id;
  cell(row, when(view.created_at));
  const idCell = document.createElement('td');
  const link = document.createElement('a');
  link.href = `#detail/${encodeURIComponent(view.id)}`;
  link.textContent = view.id;
  idCell.append(link);
  row.append(idCell);
  cell(row, view.patient.name);
  cell(row, view.patient.nhs_number);
  cell(row, view.pending_cancellation ? `${view.status.display} (pending cancellation)` : view.status.display);
  return row;
}

/**
 * Runs the practice search: a first page with the form's filters, or (`more`) the next page of
 * the last search. Errors the service names a field for are shown beside it.
 */
async function search({ more, quiet = false }) {
  const form = $('search-form');
  clearErrors(form);
  const filters = more ? new URLSearchParams(state.search.query) : searchFilters();
  const query = new URLSearchParams(filters);
  query.set('limit', String(SEARCH_PAGE));
  if (more && state.search.cursor) query.set('cursor', state.search.cursor);
  const button = more ? $('results-more') : $('search-submit');
  button.disabled = true;
  // Only the latest search is shown (one started on opening the screen may answer late).
  const asked = ++state.search.asked;
  let page;
  try {
    page = await json('GET', `${API}/prescriptions?${query}`);
    if (asked !== state.search.asked) return;
  } catch (error) {
    if (asked !== state.search.asked) return;
    const message = messageOf(error);
    const placed = error instanceof Problem && error.field && showFieldError(form, error.field, message);
    if (!placed) $('search-error').textContent = message;
    announce(`The search failed: ${message}`, true);
    if (placed) focusField(form, error.field);
    return;
  } finally {
    button.disabled = false;
  }
  const results = $('results');
  if (!more) {
    results.replaceChildren();
    state.search.query = filters.toString();
    $('results-caption').textContent = describeFilters(filters);
  }
  const rows = page.prescriptions.map(resultRow);
  results.append(...rows);
  state.search.cursor = page.next_cursor;
  $('results-more').hidden = !page.next_cursor;
  $('results-empty').hidden = results.children.length > 0;
  const total = results.children.length;
  if (more) {
    announce(`${rows.length} more prescriptions shown (${total} in all).`);
    // Focus stays on More while there are more; else it goes to the first row just shown.
    if (!page.next_cursor && rows.length) rows[0].querySelector('a').focus();
  } else if (!quiet) {
    announce(total ? `${total} prescriptions shown${page.next_cursor ? ', more available' : ''}.`
      : 'No prescriptions match these filters.');
  }
}

function clearFilters() {
  for (const id of ['search-status', 'search-from', 'search-to', 'search-nhs']) $(id).value = '';
  search({ more: false });
}

function lookup(event) {
  event.preventDefault();
  const form = $('lookup-form');
  clearErrors(form);
  const id = $('lookup-id').value.trim();
  if (!id) {
    showFieldError(form, 'id', 'Enter a prescription ID');
    $('lookup-id').focus();
    return;
  }
  go(`#detail/${encodeURIComponent(id)}`);
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.append(td);
}

function fillRows(tbody, rows) {
  tbody.replaceChildren();
  for (const values of rows) {
    const row = document.createElement('tr');
    for (const value of values) cell(row, value);
    tbody.append(row);
  }
}

const when = (text) => new Date(text).toLocaleString('en-GB');

async function renderDetail(id) {
  if (!id) {
    location.hash = '#practice';
    return;
  }
  $('cancel-outcome').textContent = '';
  clearErrors($('cancel-form'));
  const path = `${API}/prescriptions/${encodeURIComponent(id)}`;
  $('detail-id').textContent = id;
  $('detail-body').hidden = true;
  const [view, history] = await Promise.all([json('GET', path), json('GET', `${path}/history`)]);
  showDetail(view, history);
}

function showDetail(view, history) {
  $('detail-id').textContent = view.id;
  $('detail-status').textContent = view.status.display;
  $('detail-pending').hidden = !view.pending_cancellation;
  $('detail-patient').textContent = `${view.patient.name}, born ${view.patient.birth_date}`;
  $('detail-nhs').textContent = view.patient.nhs_number;
  const treatment = view.treatment_type.code === '0001'
    ? view.treatment_type.display
    : `${view.treatment_type.display}, issue ${view.issue_number} of ${view.issue_count}`;
  $('detail-treatment').textContent = view.controlled_drug_schedule
    ? `${treatment}; controlled drug schedule ${view.controlled_drug_schedule}` : treatment;
  $('detail-nominated').textContent = view.nominated_pharmacy || 'None';
  $('detail-dispenser').textContent = view.dispenser || 'None';
  $('detail-created').textContent = when(view.created_at);
  $('detail-expires').textContent = when(view.expires_at);
  $('detail-signed').textContent = view.prescriber_jws ? 'Signed by the prescriber' : 'None (issued without one)';
  fillRows($('detail-items'), view.items.map((item) => [
    String(item.line), `${item.display} (${item.code})`, `${item.quantity} ${item.unit}`,
    item.dosage, item.status.display,
  ]));
  fillRows($('detail-history'), history.events.map((event) => [
    when(event.at), event.action, `${event.actor} (${event.role})`, event.org,
  ]));
  $('detail-print').href = `#print/${encodeURIComponent(view.id)}`;
  $('cancel-form').dataset.id = view.id;
  $('detail-body').hidden = false;
}

async function cancel(event) {
  event.preventDefault();
  const form = $('cancel-form');
  clearErrors(form);
  const id = form.dataset.id;
  const path = `${API}/prescriptions/${encodeURIComponent(id)}`;
  const button = $('cancel-submit');
  button.disabled = true;
  try {
    const result = await json('POST', `${path}/cancel`, { body: { reason: $('cancel-reason').value } });
    const history = await json('GET', `${path}/history`);
    showDetail(result.prescription, history);
    const outcome = result.response
      ? `${result.response.code}: ${result.response.display}`
      : 'Cancelled.';
    $('cancel-outcome').textContent = outcome;
    announce(`Prescription ${id}: ${outcome}`);
  } catch (error) {
    const message = messageOf(error);
    if (!(error instanceof Problem && error.field && showFieldError(form, error.field, message))) {
      $('cancel-outcome').textContent = message;
    }
    announce(`Not cancelled: ${message}`, true);
  } finally {
    button.disabled = false;
  }
}

// ---- start --------------------------------------------------------------------------------

function fillSelect(select, entries) {
  select.replaceChildren(...entries.map(({ code, display }) => new Option(`${code} ${display}`, code)));
}

async function start() {
  if (!keys.available()) $('insecure').hidden = false;
  try {
    const response = await fetch('codes.json', { cache: 'no-store' });
    state.codes = await response.json();
  } catch (error) {
    announce(`The console could not load its code tables: ${error.message}`, true);
  }
  fillSelect($('treatment_type'), state.codes.treatment_types);
  fillSelect($('cancel-reason'), state.codes.cancel_reasons);
  $('search-status').append(...state.codes.statuses.map(({ code, display }) => new Option(`${code} ${display}`, code)));
  addItem();
  showIssueCount();

  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('key-enrol').addEventListener('click', enrol);
  $('key-revoke').addEventListener('click', revoke);
  $('add-item').addEventListener('click', () => {
    addItem().querySelector('input').focus();
    announce(`Item ${$('items').children.length} added.`);
  });
  $('nhs_number').addEventListener('input', () => checkNhsNumber(false));
  $('nhs_number').addEventListener('blur', () => checkNhsNumber(true));
  $('treatment_type').addEventListener('change', showIssueCount);
  $('issue-form').addEventListener('submit', issue);
  $('print-open').addEventListener('click', () => {
    const url = $('print-open').dataset.url;
    if (url) window.open(url, '_blank', 'noopener');
  });
  $('lookup-form').addEventListener('submit', lookup);
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    search({ more: false });
  });
  $('search-clear').addEventListener('click', clearFilters);
  $('results-more').addEventListener('click', () => search({ more: true }));
  $('cancel-form').addEventListener('submit', cancel);
  window.addEventListener('hashchange', route);

  const token = bearer();
  if (token) {
    try {
      state.claims = claimsOf(token);
      await loadKey();
    } catch {
      setBearer(null);
    }
  }
  renderSignin();
  document.body.dataset.ready = 'true';
  await route();
}

start();
