// The console's shell: hash routes (so back, forward and deep links work),
// the ID search in the header, keyboard shortcuts and the node line.

import {api, path, ApiError, aggregateTypes} from './api.js';
import {h, hashFor, errorBox} from './dom.js';
import {renderAggregates} from './pages/aggregates.js';
import {renderTimeline} from './pages/timeline.js';
import {renderViews, renderView, renderRow} from './pages/views.js';
import {renderProjections} from './pages/projections.js';
import {renderDLQ} from './pages/dlq.js';

const main = document.getElementById('main');

// parseRoute reads location.hash: "#/aggregates/account/acc-1?v=2" is
// {parts: ['aggregates', 'account', 'acc-1'], params: {v: '2'}}.
function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const p = q < 0 ? raw : raw.slice(0, q);
  const parts = p.split('/').filter((s) => s !== '').map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  const params = Object.fromEntries(new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)));
  return {parts, params};
}

// The page on screen: an AbortController that ends its requests and
// timers when another page replaces it.
let current = null;

async function route() {
  if (current) current.abort();
  const page = new AbortController();
  current = page;
  const {parts, params} = parseRoute();
  const section = parts[0] || 'aggregates';
  for (const a of document.querySelectorAll('nav a[data-section]')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  main.setAttribute('aria-busy', 'true');
  const ctx = {signal: page.signal, params, main};
  try {
    switch (section) {
      case 'aggregates':
        if (parts.length >= 3) await renderTimeline(ctx, parts[1], parts.slice(2).join('/'));
        else await renderAggregates(ctx, parts[1]);
        break;
      case 'views':
        if (parts.length >= 3) await renderRow(ctx, parts[1], parts.slice(2).join('/'));
        else if (parts.length === 2) await renderView(ctx, parts[1]);
        else await renderViews(ctx);
        break;
      case 'projections':
        await renderProjections(ctx);
        break;
      case 'dlq':
        await renderDLQ(ctx);
        break;
      default:
        main.append(h('h1', {tabindex: '-1'}, 'Not found'),
          h('p', {}, 'No console page at ', h('code', {}, location.hash), '. ', h('a', {href: '#/aggregates'}, 'Go to the aggregates.')));
    }
  } catch (e) {
    if (e.name === 'AbortError' || page.signal.aborted) return;
    main.append(errorBox(e));
  } finally {
    if (current === page) main.removeAttribute('aria-busy');
  }
}

// focusHeading moves the focus to a new page's heading, so that keyboard
// and screen-reader users start there, unless the user is already typing
// somewhere on the page.
function focusHeading() {
  const a = document.activeElement;
  if (a && a !== document.body && main.contains(a)) return;
  if (a && a.closest && a.closest('header')) return;
  const h1 = main.querySelector('h1');
  if (h1) h1.focus({preventScroll: false});
}

// ---- the ID search: a combobox over GET /v1/aggregates/{type}?prefix= ----

const form = document.getElementById('search');
const input = document.getElementById('search-input');
const list = document.getElementById('search-list');
const typeSelect = document.getElementById('search-type');
let suggestTimer = 0;
let suggestCtl = null;
let active = -1;

function options() {
  return [...list.querySelectorAll('[role=option]')];
}

function setActive(i) {
  const opts = options();
  active = opts.length ? (i + opts.length) % opts.length : -1;
  opts.forEach((o, j) => o.setAttribute('aria-selected', j === active ? 'true' : 'false'));
  if (active >= 0) {
    input.setAttribute('aria-activedescendant', opts[active].id);
    opts[active].scrollIntoView({block: 'nearest'});
  } else {
    input.removeAttribute('aria-activedescendant');
  }
}

function closeList() {
  list.hidden = true;
  list.replaceChildren();
  input.setAttribute('aria-expanded', 'false');
  input.removeAttribute('aria-activedescendant');
  active = -1;
}

// openAggregate opens an aggregate's timeline and leaves the search empty,
// the focus going to the page that opens.
function openAggregate(type, id) {
  closeList();
  input.value = '';
  input.blur();
  location.hash = hashFor(['aggregates', type, id]);
}

async function suggest() {
  if (suggestCtl) suggestCtl.abort();
  const q = input.value;
  const type = typeSelect.value;
  if (!q || !type) {
    closeList();
    return;
  }
  suggestCtl = new AbortController();
  try {
    const r = await api(path('v1/aggregates', type) + '?limit=8&prefix=' + encodeURIComponent(q), {signal: suggestCtl.signal});
    if (input.value !== q) return;
    list.replaceChildren(...r.aggregates.map((a, i) =>
      h('li', {id: 'search-opt-' + i, role: 'option', 'aria-selected': 'false', dataset: {id: a.id},
        onmousedown: (e) => { e.preventDefault(); openAggregate(type, a.id); }},
      h('span', {class: 'id'}, a.id), h('span', {class: 'muted'}, ' v' + a.version))));
    if (r.aggregates.length === 0) {
      list.append(h('li', {class: 'muted', role: 'presentation'}, 'No ' + type + ' ID starts with “' + q + '”'));
    }
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    setActive(-1);
  } catch (e) {
    if (e.name !== 'AbortError') {
      list.replaceChildren(h('li', {class: 'error', role: 'presentation'}, e.message));
      list.hidden = false;
    }
  }
}

input.addEventListener('input', () => {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(suggest, 120);
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    if (list.hidden) {
      suggest();
      return;
    }
    setActive(active + (e.key === 'ArrowDown' ? 1 : -1));
  } else if (e.key === 'Escape') {
    if (!list.hidden) closeList();
    else input.blur();
  }
});
input.addEventListener('blur', () => setTimeout(closeList, 150));
typeSelect.addEventListener('change', () => {
  if (input.value) suggest();
});

// Enter: the highlighted match; else the ID typed when it exists; else the
// list of IDs that start with it.
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const type = typeSelect.value;
  const q = input.value.trim();
  if (!type || !q) return;
  const opts = options();
  if (active >= 0 && opts[active]) {
    openAggregate(type, opts[active].dataset.id);
    return;
  }
  clearTimeout(suggestTimer);
  if (suggestCtl) suggestCtl.abort();
  try {
    const r = await api(path('v1/aggregates', type) + '?limit=1&prefix=' + encodeURIComponent(q));
    if (r.aggregates.length && r.aggregates[0].id === q) {
      openAggregate(type, q);
      return;
    }
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
  }
  closeList();
  input.blur();
  location.hash = hashFor(['aggregates', type], {prefix: q});
});

async function loadTypes() {
  try {
    const types = await aggregateTypes();
    typeSelect.replaceChildren(...types.map((t) => h('option', {value: t}, t)));
  } catch (e) {
    typeSelect.replaceChildren(h('option', {value: ''}, '—'));
  }
}

async function loadNode() {
  try {
    const st = await api('/v1/status');
    document.getElementById('node').textContent = `namespace ${st.namespace} · instance ${st.instance}`;
  } catch {
    // The pages say what failed; the header line stays empty.
  }
}

// ---- keyboard ----

const help = document.getElementById('help-dialog');
document.getElementById('help-button').addEventListener('click', () => help.showModal());
document.getElementById('help-close').addEventListener('click', () => help.close());

let pendingG = 0;
const goto = {a: '#/aggregates', v: '#/views', p: '#/projections', d: '#/dlq'};

document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
  const t = e.target;
  const typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) && t.type !== 'range';
  if (typing || document.querySelector('dialog[open]')) return;
  if (e.key === '/') {
    e.preventDefault();
    // Some key sources (remote control, a few IMEs) deliver the character
    // apart from the keydown, so preventing the keydown does not keep the
    // '/' out of the field that now has the focus: drop it until the key
    // is released. No ID holds a '/', so nothing is lost.
    const drop = (k) => { if (k.key === '/') k.preventDefault(); };
    document.addEventListener('keypress', drop, true);
    document.addEventListener('keyup', () => document.removeEventListener('keypress', drop, true), {once: true, capture: true});
    input.focus();
    input.select();
  } else if (e.key === '?') {
    e.preventDefault();
    help.showModal();
  } else if (pendingG && goto[e.key]) {
    e.preventDefault();
    pendingG = 0;
    location.hash = goto[e.key];
  } else if (e.key === 'g') {
    pendingG = setTimeout(() => { pendingG = 0; }, 1200);
  }
});

window.addEventListener('hashchange', () => route().then(focusHeading));
if (!location.hash || location.hash === '#' || location.hash === '#/') {
  history.replaceState(null, '', '#/aggregates');
}
// Types first: the search and the first page both need them, and a token
// prompt, if one is needed, then comes once.
loadTypes().then(() => {
  loadNode();
  route();
});
