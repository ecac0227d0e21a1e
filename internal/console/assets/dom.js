// DOM helpers. Every piece of data reaches the page as text (textContent,
// attribute values), never as markup: event payloads, IDs and dead letters
// are outside input.

// h builds an element: h('a', {href: '#/x', class: 'y'}, 'text', child).
// Attributes named on* that hold functions become listeners; a null or
// false attribute is left out; children may be strings, numbers, nodes,
// arrays of them, or null (skipped).
export function h(tag, attrs, ...children) {
  const el = tag.includes(':')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(tag.indexOf(':') + 1))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// svg builds an SVG element: svg('polyline', {points: '…'}).
export function svg(tag, attrs, ...children) {
  return h('svg:' + tag, attrs, ...children);
}

// hashFor builds a route: hashFor(['aggregates', 'account', id], {v: 3}).
// Parts are percent-encoded, so an ID with '?', '#' or spaces survives.
export function hashFor(parts, params) {
  let s = '#/' + parts.map(encodeURIComponent).join('/');
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const qs = q.toString();
  return qs ? s + '?' + qs : s;
}

// time renders an RFC 3339 time in the reader's time zone, with the exact
// UTC value in its datetime attribute and tooltip.
export function time(iso) {
  if (!iso) return h('span', {class: 'muted'}, '—');
  const d = new Date(iso);
  if (isNaN(d)) return h('span', {}, iso);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return h('time', {datetime: iso, title: iso}, text);
}

// json renders a value as indented JSON text.
export function json(v) {
  return h('pre', {class: 'json'}, JSON.stringify(v, null, 2));
}

// scalar renders one value of a row or a state: strings as they are,
// anything else as compact JSON.
export function scalar(v) {
  if (v === null || v === undefined) return h('span', {class: 'muted'}, 'null');
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return h('code', {}, JSON.stringify(v));
  return String(v);
}

// errorBox says what failed, for screen readers too.
export function errorBox(err) {
  return h('div', {class: 'error', role: 'alert'}, err && err.message ? err.message : String(err));
}

// number formats an integer with thousands separators.
export function number(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : String(n ?? '—');
}

// present drops the null, undefined and false of a list of children, for
// replaceChildren (which would show them as text).
export function present(...nodes) {
  return nodes.filter((n) => n !== null && n !== undefined && n !== false);
}

// plural says how many of a thing: plural(1, 'row') is "1 row",
// plural(3, 'row') "3 rows".
export function plural(n, noun) {
  return `${number(n)} ${noun}${n === 1 ? '' : 's'}`;
}
