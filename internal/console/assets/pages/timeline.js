// An aggregate's timeline: its events (type, version, schema version,
// partition and offset, time, data) and a version slider that shows the
// state at any point of its history (GET …?version=N: time travel).
// Events come a page at a time, the page that holds the slider's version,
// so an aggregate with a long history loads as fast as a short one.

import {api, path} from '../api.js';
import {h, hashFor, time, json, scalar, errorBox, number, present} from '../dom.js';

const PAGE = 100;

export async function renderTimeline(ctx, type, id) {
  const {main, signal, params} = ctx;
  const base = path('v1/aggregates', type, id);
  const head = await api(base, {signal});
  const latest = head.version;
  let version = Number.parseInt(params.v, 10);
  if (!(version >= 1 && version <= latest)) version = latest;

  main.append(
    h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
      h('a', {href: hashFor(['aggregates', type])}, type), ' / ', h('span', {'aria-current': 'page'}, id)),
    h('h1', {tabindex: '-1'}, h('span', {class: 'muted'}, type + ' '), id));

  const slider = h('input', {type: 'range', id: 'version', min: 1, max: latest, step: 1, value: version,
    'aria-label': 'Version'});
  const out = h('output', {for: 'version', id: 'version-out'});
  const stateTitle = h('h2', {id: 'state-title'});
  const stateWhen = h('p', {class: 'muted when'});
  const stateBox = h('div', {id: 'state', 'aria-live': 'polite', 'aria-labelledby': 'state-title'});
  const events = h('ol', {id: 'events', class: 'timeline', 'aria-label': 'Events'});
  const pager = h('div', {class: 'pager'});
  main.append(
    h('section', {class: 'travel', 'aria-label': 'Time travel'},
      h('div', {class: 'slider'},
        h('label', {for: 'version'}, 'Version'), slider, out),
      h('p', {class: 'muted hint'}, 'Arrow keys, Home and End move through the history; each step shows the state after that event.')),
    h('div', {class: 'split'},
      h('section', {class: 'state-panel'}, stateTitle, stateWhen, stateBox),
      h('section', {class: 'events-panel', 'aria-labelledby': 'events-title'},
        h('h2', {id: 'events-title'}, `Events (${number(latest)})`), events, pager)));

  // The page of events on screen: [from, from + PAGE).
  let pageFrom = 0;
  let pageCtl = null;
  async function loadEvents(v) {
    const from = Math.floor((v - 1) / PAGE) * PAGE + 1;
    if (from === pageFrom) return;
    if (pageCtl) pageCtl.abort();
    pageCtl = new AbortController();
    signal.addEventListener('abort', () => pageCtl.abort(), {once: true});
    const r = await api(`${base}/events?from=${from}&limit=${PAGE}`, {signal: pageCtl.signal});
    pageFrom = from;
    events.replaceChildren(...r.events.map(eventItem));
    pager.replaceChildren(...present(
      from > 1 ? h('button', {type: 'button', onclick: () => move(from - 1)}, `← Events ${number(Math.max(1, from - PAGE))}–${number(from - 1)}`) : null,
      r.next ? h('button', {type: 'button', onclick: () => move(r.next)}, `Events ${number(r.next)}–${number(Math.min(latest, r.next + PAGE - 1))} →`) : null));
  }

  function eventItem(e) {
    return h('li', {class: 'event', dataset: {version: e.version}},
      h('div', {class: 'event-head'},
        h('button', {type: 'button', class: 'step', title: `Show the state at version ${e.version}`,
          'aria-label': `Show the state at version ${e.version}, after ${e.type}`, onclick: () => move(e.version)},
        'v' + e.version),
        h('strong', {class: 'type'}, e.type),
        h('span', {class: 'meta'},
          h('span', {class: 'schema', title: 'the schema version it was written with'}, 'schema v' + e.schema_version),
          h('span', {class: 'offset', title: 'events topic partition and offset'}, `partition ${e.partition} · offset ${e.offset}`),
          time(e.timestamp),
          e.command_id ? h('span', {class: 'command', title: 'command ID'}, 'command ' + e.command_id) : null)),
      json(e.data));
  }

  function mark() {
    for (const li of events.children) {
      const v = Number(li.dataset.version);
      li.classList.toggle('future', v > version);
      if (v === version) li.setAttribute('aria-current', 'step');
      else li.removeAttribute('aria-current');
    }
  }

  let stateCtl = null;
  let stateTimer = 0;
  async function showState(v) {
    if (stateCtl) stateCtl.abort();
    stateCtl = new AbortController();
    signal.addEventListener('abort', () => stateCtl.abort(), {once: true});
    stateBox.setAttribute('aria-busy', 'true');
    try {
      const st = v === latest ? head : await api(`${base}?version=${v}`, {signal: stateCtl.signal});
      stateTitle.replaceChildren(`State at version ${st.version}`);
      stateWhen.replaceChildren('as of ', time(st.updated_at));
      stateBox.replaceChildren(stateTable(st.state));
      stateBox.dataset.version = st.version;
    } catch (e) {
      if (e.name === 'AbortError') return;
      stateBox.replaceChildren(errorBox(e));
    } finally {
      stateBox.removeAttribute('aria-busy');
    }
  }

  // move sets the version from anywhere (slider, event buttons, pager).
  function move(v) {
    v = Math.min(latest, Math.max(1, v));
    slider.value = v;
    update(v, true);
  }

  function update(v, now) {
    version = v;
    out.textContent = `${v} of ${latest}`;
    slider.setAttribute('aria-valuetext', `version ${v} of ${latest}`);
    history.replaceState(null, '', hashFor(['aggregates', type, id], v === latest ? {} : {v}));
    mark();
    loadEvents(v).then(mark).catch((e) => {
      if (e.name !== 'AbortError') pager.replaceChildren(errorBox(e));
    });
    clearTimeout(stateTimer);
    // Dragging the slider asks for the state once it rests a moment;
    // arrow keys and buttons ask at once.
    if (now) showState(v);
    else stateTimer = setTimeout(() => showState(v), 120);
  }

  slider.addEventListener('input', () => update(Number(slider.value), false));
  slider.addEventListener('keyup', () => { clearTimeout(stateTimer); showState(version); });
  signal.addEventListener('abort', () => clearTimeout(stateTimer));
  update(version, true);
  await loadEvents(version);
  mark();
}

// stateTable shows a state's top-level fields as rows, nested values as
// compact JSON.
function stateTable(state) {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) return json(state);
  return h('table', {class: 'fields'},
    h('tbody', {}, Object.entries(state).map(([k, v]) =>
      h('tr', {dataset: {field: k}}, h('th', {scope: 'row'}, k), h('td', {}, scalar(v))))));
}
