// Views: their rows a page at a time, in key order or through one of
// their indexes (GET /v1/views/{view}?index=&eq=&order=&limit=&cursor=),
// and one row by key. The query lives in the address, so every page of
// results can be bookmarked and the back button goes to the previous one.

import {api, path} from '../api.js';
import {h, hashFor, json, scalar, errorBox, plural} from '../dom.js';

const PAGE = 50;
const MAX_COLUMNS = 10;

let viewsPromise = null;
function views() {
  if (!viewsPromise) {
    viewsPromise = api('/v1/views').then((r) => r.views);
    viewsPromise.catch(() => { viewsPromise = null; });
  }
  return viewsPromise;
}

export async function renderViews(ctx) {
  const {main} = ctx;
  const vs = await views();
  main.append(h('h1', {tabindex: '-1'}, 'Views'));
  if (vs.length === 0) {
    main.append(h('p', {}, 'This Strata runs no projections.'));
    return;
  }
  main.append(h('ul', {class: 'cards', id: 'view-list'}, vs.map((v) =>
    h('li', {class: 'card'},
      h('h2', {}, h('a', {href: hashFor(['views', v.name])}, v.name)),
      h('p', {}, 'from ', v.aggregates.length ? v.aggregates.join(', ') : '—', ' events'),
      h('p', {class: 'muted'}, v.indexes.length ? 'indexes: ' + v.indexes.join(', ') : 'no indexes')))));
}

export async function renderView(ctx, name) {
  const {main, signal, params} = ctx;
  const vs = await views();
  const v = vs.find((x) => x.name === name);
  main.append(
    h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: '#/views'}, 'Views'), ' / ', h('span', {'aria-current': 'page'}, name)),
    h('h1', {tabindex: '-1'}, h('span', {class: 'muted'}, 'view '), name));
  if (!v) {
    main.append(errorBox(new Error(`Unknown view “${name}”. Views: ${vs.map((x) => x.name).join(', ')}.`)));
    return;
  }

  // Query form: all rows by key, or an index's rows with a value.
  const index = h('select', {id: 'q-index'},
    h('option', {value: ''}, '— all rows, by key —'),
    v.indexes.map((ix) => h('option', {value: ix, selected: params.index === ix}, ix)));
  const eq = h('input', {id: 'q-eq', type: 'text', value: params.eq || '', spellcheck: 'false', autocomplete: 'off'});
  const order = h('select', {id: 'q-order'},
    h('option', {value: 'asc'}, 'ascending'),
    h('option', {value: 'desc', selected: params.order === 'desc'}, 'descending'));
  const syncEq = () => { eq.disabled = index.value === ''; };
  index.addEventListener('change', syncEq);
  syncEq();
  const rowKey = h('input', {id: 'q-key', type: 'text', spellcheck: 'false', autocomplete: 'off'});
  main.append(
    h('form', {class: 'query', id: 'view-query', 'aria-label': 'Query the view', onsubmit: (e) => {
      e.preventDefault();
      location.hash = hashFor(['views', name], index.value ? {index: index.value, eq: eq.value, order: order.value} : {order: order.value});
    }},
    h('label', {for: 'q-index'}, 'Index'), index,
    h('label', {for: 'q-eq'}, 'equals'), eq,
    h('label', {for: 'q-order'}, 'Order'), order,
    h('button', {type: 'submit'}, 'Query')),
    h('form', {class: 'query', 'aria-label': 'Open a row by key', onsubmit: (e) => {
      e.preventDefault();
      if (rowKey.value) location.hash = hashFor(['views', name, rowKey.value]);
    }},
    h('label', {for: 'q-key'}, 'Row key'), rowKey, h('button', {type: 'submit'}, 'Open row')));

  let q = `?limit=${PAGE}`;
  if (params.index) q += `&index=${encodeURIComponent(params.index)}&eq=${encodeURIComponent(params.eq || '')}`;
  if (params.order) q += `&order=${encodeURIComponent(params.order)}`;
  if (params.cursor) q += `&cursor=${encodeURIComponent(params.cursor)}`;
  const r = await api(path('v1/views', name) + q, {signal});
  const cond = params.index ? ` with ${params.index} = “${params.eq || ''}”` : '';
  main.append(h('p', {class: 'muted', id: 'rows-count', 'aria-live': 'polite'},
    r.rows.length ? `${plural(r.rows.length, 'row')}${cond}${params.cursor ? ' (a later page)' : ''}${r.next ? ', more on the next page' : ''}.` : `No rows${cond}.`));
  if (r.rows.length) main.append(rowsTable(name, r.rows));
  const nav = h('div', {class: 'pager'});
  if (params.cursor) nav.append(h('a', {href: hashFor(['views', name], {...params, cursor: ''})}, '« First page'));
  if (r.next) nav.append(h('a', {href: hashFor(['views', name], {...params, cursor: r.next}), id: 'next-page'}, 'Next page »'));
  main.append(nav);
}

// rowsTable lays rows out with a column per top-level field (the first
// MAX_COLUMNS seen), nested values as compact JSON.
function rowsTable(name, rows) {
  const cols = [];
  for (const row of rows) {
    if (row.row && typeof row.row === 'object' && !Array.isArray(row.row)) {
      for (const k of Object.keys(row.row)) if (!cols.includes(k) && cols.length < MAX_COLUMNS) cols.push(k);
    }
  }
  return h('div', {class: 'scroll'}, h('table', {class: 'list', id: 'rows'},
    h('caption', {class: 'sr-only'}, `Rows of view ${name}`),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'key'), cols.map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, rows.map((row) => h('tr', {dataset: {key: row.key}},
      h('th', {scope: 'row'}, h('a', {href: hashFor(['views', name, row.key])}, row.key)),
      cols.map((c) => h('td', {dataset: {field: c}}, scalar(row.row ? row.row[c] : undefined))))))));
}

export async function renderRow(ctx, name, key) {
  const {main, signal} = ctx;
  main.append(
    h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
      h('a', {href: '#/views'}, 'Views'), ' / ', h('a', {href: hashFor(['views', name])}, name), ' / ', h('span', {'aria-current': 'page'}, key)),
    h('h1', {tabindex: '-1'}, h('span', {class: 'muted'}, name + ' '), key));
  const row = await api(path('v1/views', name, key), {signal});
  main.append(json(row));
}
