// Aggregates: the types, and a type's IDs by prefix, a page at a time
// (GET /v1/aggregates/{type}?prefix=&limit=&cursor=): however many
// aggregates there are, the page never asks for more than it shows.

import {api, path, aggregateTypes} from '../api.js';
import {h, hashFor, time, number, errorBox} from '../dom.js';

const PAGE = 50;

export async function renderAggregates(ctx, type) {
  const {main, signal, params} = ctx;
  const types = await aggregateTypes();
  if (!type) type = types[0];
  if (!types.includes(type)) {
    main.append(h('h1', {tabindex: '-1'}, 'Aggregates'),
      errorBox(new Error(`Unknown aggregate type “${type}”. Types: ${types.join(', ')}.`)));
    return;
  }
  main.append(
    h('h1', {tabindex: '-1'}, 'Aggregates'),
    h('nav', {class: 'tabs', 'aria-label': 'Aggregate types'},
      types.map((t) => h('a', {href: hashFor(['aggregates', t]), 'aria-current': t === type ? 'page' : null}, t))));

  const input = h('input', {id: 'prefix', type: 'search', value: params.prefix || '', spellcheck: 'false',
    autocomplete: 'off', placeholder: 'acc-', 'aria-describedby': 'prefix-hint'});
  const count = h('p', {class: 'muted', id: 'ids-count', 'aria-live': 'polite'});
  const body = h('tbody');
  const more = h('button', {type: 'button', hidden: true}, 'More');
  const table = h('table', {class: 'list', id: 'ids'},
    h('caption', {class: 'sr-only'}, `${type} aggregates`),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'ID'), h('th', {scope: 'col', class: 'num'}, 'Version'), h('th', {scope: 'col'}, 'Last event'))),
    body);
  main.append(
    h('form', {class: 'filter', role: 'search', onsubmit: (e) => e.preventDefault()},
      h('label', {for: 'prefix'}, `${type} IDs starting with`), ' ', input,
      h('span', {id: 'prefix-hint', class: 'muted'}, ' (empty: all, in ID order)')),
    count, table, more);

  let cursor = '';
  let shown = 0;
  let ctl = null;
  async function load(reset) {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    signal.addEventListener('abort', () => ctl.abort(), {once: true});
    const prefix = input.value;
    if (reset) {
      cursor = '';
      shown = 0;
    }
    let q = `?limit=${PAGE}&prefix=${encodeURIComponent(prefix)}`;
    if (cursor) q += '&cursor=' + encodeURIComponent(cursor);
    let r;
    try {
      r = await api(path('v1/aggregates', type) + q, {signal: ctl.signal});
    } catch (e) {
      if (e.name === 'AbortError') return;
      count.replaceChildren(errorBox(e));
      return;
    }
    if (reset) body.replaceChildren();
    for (const a of r.aggregates) {
      body.append(h('tr', {},
        h('td', {}, h('a', {href: hashFor(['aggregates', type, a.id])}, a.id)),
        h('td', {class: 'num'}, number(a.version)),
        h('td', {}, time(a.updated_at))));
    }
    shown += r.aggregates.length;
    cursor = r.next || '';
    more.hidden = !cursor;
    count.textContent = shown === 0
      ? (prefix ? `No ${type} ID starts with “${prefix}”.` : `No ${type} aggregates yet.`)
      : `${number(shown)} shown${cursor ? ', more after them' : ''}.`;
  }
  let timer = 0;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      // Keep the prefix in the address, without a history entry per key.
      history.replaceState(null, '', hashFor(['aggregates', type], {prefix: input.value}));
      load(true);
    }, 150);
  });
  more.addEventListener('click', () => load(false));
  await load(true);
}
