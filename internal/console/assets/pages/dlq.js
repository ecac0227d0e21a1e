// Dead letters and parked events: the newest records of each aggregate
// type's dead-letter topic, read from Kafka (GET /v1/dlq/{type}), with the
// reason the processor gave; and the events each projection set aside
// (GET /v1/projections/{name}/parked), a page at a time.

import {api, path, aggregateTypes} from '../api.js';
import {h, hashFor, time, json, errorBox, number, plural} from '../dom.js';

const LIMIT = 50;

export async function renderDLQ(ctx) {
  const {main, signal} = ctx;
  main.append(h('h1', {tabindex: '-1'}, 'Dead letters and parked events'));
  const refresh = h('button', {type: 'button', id: 'dlq-refresh'}, 'Refresh');
  main.append(h('p', {class: 'muted'},
    'Commands Strata could not decode go to a dead-letter topic and their partition keeps flowing; events a projection could not apply are parked with the later events of their aggregate. ', refresh));
  const dlq = h('section', {id: 'dlq', 'aria-labelledby': 'dlq-title'}, h('h2', {id: 'dlq-title'}, 'Dead-letter topics'));
  const parked = h('section', {id: 'parked', 'aria-labelledby': 'parked-title'}, h('h2', {id: 'parked-title'}, 'Parked events'));
  main.append(dlq, parked);
  const types = await aggregateTypes();
  const views = (await api('/v1/views', {signal})).views.map((v) => v.name);

  async function load() {
    const dlqBoxes = types.map(() => h('div', {'aria-busy': 'true'}, 'Reading…'));
    dlq.replaceChildren(dlq.firstChild, ...dlqBoxes);
    const parkedBoxes = views.map(() => h('div', {'aria-busy': 'true'}, 'Reading…'));
    parked.replaceChildren(parked.firstChild, ...parkedBoxes);
    await Promise.all([
      ...types.map((t, i) => deadLetters(t, signal).then((el) => dlqBoxes[i].replaceWith(el))),
      ...views.map((v, i) => parkedEvents(v, signal).then((el) => parkedBoxes[i].replaceWith(el))),
    ]);
  }
  refresh.addEventListener('click', () => load().catch((e) => { if (e.name !== 'AbortError') dlq.append(errorBox(e)); }));
  await load();
}

async function deadLetters(type, signal) {
  const box = h('section', {class: 'dlq', dataset: {aggregate: type}, 'aria-label': `Dead letters of ${type}`});
  let r;
  try {
    r = await api(path('v1/dlq', type) + `?limit=${LIMIT}`, {signal});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    box.append(h('h3', {}, type), errorBox(e));
    return box;
  }
  box.append(h('h3', {}, type, ' ', h('span', {class: 'muted'}, r.topic)));
  if (!r.complete) box.append(h('p', {class: 'warn'}, 'Some partitions could not be read to their end in time: these are the newest of what was read.'));
  if (r.records.length === 0) {
    box.append(h('p', {class: 'muted empty'}, 'No dead letters.'));
    return box;
  }
  box.append(h('p', {class: 'muted'}, r.records.length === LIMIT ? `The newest ${LIMIT}, newest first.` : `${plural(r.records.length, 'record')}, newest first.`));
  box.append(h('div', {class: 'scroll'}, h('table', {class: 'list'},
    h('caption', {class: 'sr-only'}, `Dead letters of ${type}`),
    h('thead', {}, h('tr', {}, ['time', 'partition · offset', 'key', 'reason', 'from', 'value'].map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, r.records.map((d) => h('tr', {class: 'dead-letter'},
      h('td', {}, time(d.timestamp)),
      h('td', {class: 'num'}, `${d.partition} · ${d.offset}`),
      h('td', {class: 'key'}, d.key_base64 ? h('code', {title: 'not UTF-8: base64'}, d.key_base64) : d.key || h('span', {class: 'muted'}, '(none)')),
      h('td', {class: 'reason'}, d.reason),
      h('td', {class: 'muted'}, d.source || ''),
      h('td', {}, valueCell(d))))))));
  return box;
}

function valueCell(d) {
  const text = d.value_base64 ? d.value_base64 : d.value || '';
  const note = [];
  if (d.value_base64) note.push('not UTF-8: base64');
  if (text.length && d.value_bytes > (d.value || '').length && !d.value_base64) note.push(`first ${number(text.length)} of ${number(d.value_bytes)} bytes`);
  return [h('pre', {class: 'value'}, text || '(empty)'), note.length ? h('span', {class: 'muted'}, note.join(', ')) : null];
}

async function parkedEvents(view, signal) {
  const box = h('section', {class: 'parked', dataset: {projection: view}, 'aria-label': `Parked events of ${view}`});
  box.append(h('h3', {}, view));
  const body = h('tbody');
  const table = h('div', {class: 'scroll'}, h('table', {class: 'list'},
    h('caption', {class: 'sr-only'}, `Parked events of ${view}`),
    h('thead', {}, h('tr', {}, ['aggregate', 'version', 'event', 'partition · offset', 'time', 'reason', 'data'].map((c) => h('th', {scope: 'col'}, c)))),
    body));
  const more = h('button', {type: 'button', hidden: true}, 'More');
  let cursor = '';
  async function page() {
    const r = await api(path('v1/projections', view, 'parked') + `?limit=${LIMIT}` + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''), {signal});
    for (const e of r.events) {
      body.append(h('tr', {class: 'parked-event'},
        h('td', {}, h('a', {href: hashFor(['aggregates', e.aggregate, e.id], e.version ? {v: e.version} : {})}, `${e.aggregate} ${e.id}`)),
        h('td', {class: 'num'}, e.version ? String(e.version) : '—'),
        h('td', {}, e.type || h('span', {class: 'error'}, e.decode_error || '?')),
        h('td', {class: 'num'}, `${e.partition} · ${e.offset}`),
        h('td', {}, time(e.timestamp)),
        h('td', {class: 'reason'}, e.reason),
        h('td', {}, e.data ? json(e.data) : '')));
    }
    cursor = r.next || '';
    more.hidden = !cursor;
    return r.events.length;
  }
  try {
    if (await page() === 0) {
      box.append(h('p', {class: 'muted empty'}, 'Nothing parked.'));
      return box;
    }
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    box.append(errorBox(e));
    return box;
  }
  more.addEventListener('click', () => page().catch((e) => box.append(errorBox(e))));
  box.append(table, more,
    h('p', {class: 'muted'}, 'Replay them after a fix: ', h('code', {}, `strata projection retry ${view}`)));
  return box;
}
